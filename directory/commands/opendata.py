"""`atvira export` and `atvira snapshots ...`: the same core functions the downloads and the
/changes page call."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import changes, exports, snapshots
from ..config import Settings
from ..errors import BadRequest
from ..interpret import interpret
from ..query import parse_query
from ..store import connect
from .base import pass_settings

FILTERS = ("bbox", "category", "municipality", "eldership", "features", "q", "status")


@click.command()
@click.argument("fmt", metavar="FORMAT", type=click.Choice(list(exports.FORMATS)))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write (written whole; a .sqlite copy is renamed into place when complete).")
@click.option("--bbox", help="west,south,east,north")
@click.option("--category", help="comma-separated category slugs")
@click.option("--municipality", help="municipality code")
@click.option("--eldership", help="eldership code")
@click.option("--features", help="comma-separated features that must be yes or limited")
@click.option("--q", help="text search (diacritics ignored)")
@click.option("--status", help="comma-separated statuses (default active,closed,unknown)")
@pass_settings
def export(cfg: Settings, fmt: str, out: Path, **filters: str | None) -> None:
    """Write the facilities (all, or the filtered slice) as csv, geojson, gpkg or sqlite."""
    args = {k: v for k, v in filters.items() if v}
    try:
        query = parse_query(args)
    except BadRequest as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.where}") from None
    conn = exports.export_connection(cfg.db)  # not memory-mapped: the RSS stays flat
    query, understood = interpret(conn, query)  # the same reading of --q as the API's
    if understood is not None:
        place = understood["place"]["name"] if understood["place"] else "-"
        click.echo(f"--q understood as: categories {','.join(understood['categories']) or '-'};"
                   f" features {','.join(understood['features']) or '-'}; place {place};"
                   f" name words {understood['words'] or '-'}", err=True)
    n = exports.write_file(conn, query, fmt, out)
    click.echo(f"wrote {out} ({out.stat().st_size:,} bytes" + (f", {n:,} facilities)" if n is not None else ")"))


@click.group("snapshots")
def snapshots_cli() -> None:
    """Dated copies of the store (made after every ingest run that changes something) and what changed."""


@snapshots_cli.command("list")
@pass_settings
def snapshots_list(cfg: Settings) -> None:
    """Every snapshot, newest first."""
    for s in snapshots.list_snapshots(connect(cfg.db, readonly=True)):
        where = cfg.snapshot_dir() / s["file"] if s["file"] else f"pruned {s['pruned_at']}"
        click.echo(f"{s['id']:>5}  {s['created_at']}  run {s['run_id']}  changes ≤ {s['last_seq']}  "
                   f"{s['counts'].get('facilities', '?')} facilities  {where}")


@snapshots_cli.command("create")
@pass_settings
def snapshots_create(cfg: Settings) -> None:
    """Take a snapshot now (ingest runs do this by themselves when they change something)."""
    snap = snapshots.create_snapshot(connect(cfg.db), cfg)
    click.echo(f"snapshot {snap['id']}: {cfg.snapshot_dir() / snap['file']}")


@snapshots_cli.command("prune")
@pass_settings
def snapshots_prune(cfg: Settings) -> None:
    """Delete snapshot files beyond ATVIRA_SNAPSHOT_RETENTION (their change log stays)."""
    pruned = snapshots.prune_snapshots(connect(cfg.db), cfg)
    click.echo(f"pruned {len(pruned)} snapshot file(s)")


@snapshots_cli.command("changes")
@click.option("--since", help="snapshot id or ISO date (default: the beginning)")
@click.option("--until", help="snapshot id or ISO date (default: now)")
@click.option("--json", "as_json", is_flag=True, help="print the JSON the API returns")
@pass_settings
def snapshots_changes(cfg: Settings, since: str | None, until: str | None, as_json: bool) -> None:
    """What was added, changed (field by field) and removed between two snapshots or dates."""
    conn = connect(cfg.db, readonly=True)
    after = None
    while True:
        page = changes.list_changes(conn, since=since, until=until, limit=1000, after=after)
        for c in page["changes"]:
            if as_json:
                click.echo(json.dumps(c, ensure_ascii=False))
                continue
            by = f"  [{c['actor']}]" if c.get("actor") else ""
            click.echo(f"{c['kind']:<8} {c['facility_id']}  {c['name'] or ''}{by}")
            if c["kind"] != "added":
                for name, v in c["fields"].items():
                    click.echo(f"           {name}: {v['old']!r} -> {v['new']!r}")
        after = page["next_after"]
        if after is None:
            return
