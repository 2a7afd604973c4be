"""`atvira ingest ...` and `atvira areas ...`: read a source, hand its records to directory.sync."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from directory import areas_store, audit
from directory.config import Settings
from directory.errors import BadRequest, FetchError
from directory.model import Facility
from directory.search import parse_bbox
from directory.snapshots import snapshot_after_run
from directory.store import connect
from directory.sync import IngestReport, apply_records, print_progress, record_failed_run

from directory.conflate import make_matcher, thresholds_from

from . import http, osm, overpass
from .areas import fetch_areas, read_areas
from .mapping import load_mapping
from .registry import run_registry


def _settings(ctx: click.Context) -> Settings:
    return ctx.find_root().obj


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def echo_report(report: IngestReport, *, max_rejections: int = 50) -> None:
    click.echo(report.summary())
    for rej in report.rejected[:max_rejections]:
        click.echo(f"  rejected {rej}", err=True)
    if len(report.rejected) > max_rejections:
        click.echo(f"  ... and {len(report.rejected) - max_rejections} more rejections (see `atvira status`)", err=True)


def finish_run(conn, report: IngestReport, settings: Settings) -> None:
    """Everything that follows a committed ingest run, for every source adapter.

    The one place to hang post-ingest work (snapshots, precomputed indicators ...), so each
    adapter's command ends with the same call.
    """
    echo_report(report)
    changed = bool(report.added or report.updated or report.removed)
    if changed or not audit.is_current(conn):
        _recompute_audit(conn)
    snap = snapshot_after_run(conn, run_id=report.run_id, changed=changed, settings=settings)
    if snap is not None:
        click.echo(f"snapshot {snap['id']}: {settings.snapshot_dir() / snap['file']}")


def _recompute_audit(conn) -> None:
    """The audit's stored indicators follow every change of facilities or areas."""
    summary = audit.recompute(conn)
    click.echo(f"audit recomputed in {summary['seconds']:.1f}s", err=True)


@click.group()
def ingest() -> None:
    """Load facilities from a source into the store."""


@ingest.command("osm")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--area", default=None, help="Live Overpass fetch for an area: LT (default when no FILE), or a loaded municipality's name or code.")
@click.option("--bbox", default=None, help="Live Overpass fetch for west,south,east,north.")
@click.option("--scope", default=None, help="What this run fully covers (default: the file name or area). Records of an earlier run of the same scope that are missing now are marked removed.")
@click.option("--offline", is_flag=True, default=None, help="Use only the on-disk cache for live fetches.")
@click.pass_context
def ingest_osm(ctx: click.Context, files: tuple[Path, ...], area: str | None, bbox: str | None,
               scope: str | None, offline: bool | None) -> None:
    """OpenStreetMap: .osm.pbf, .osm/.osm.bz2 or Overpass .json/.json.gz FILEs, or a live Overpass fetch."""
    cfg = _settings(ctx)
    conn = connect(cfg.db)
    locator = areas_store.load_locator(conn)
    fetched_at = _now()
    if files and (area or bbox):
        raise click.UsageError("give FILEs or --area/--bbox, not both")
    if files:
        for path in files:
            records = (
                osm.element_to_facility(el, fetched_at=fetched_at)
                for el in osm.read_elements(path, keep=osm.is_of_interest)
            )
            report = apply_records(conn, (r for r in records if r is not None), source="osm",
                                   scope=scope or path.name, locator=locator, progress=print_progress,
                                   matcher=make_matcher(thresholds_from(cfg)))
            finish_run(conn, report, cfg)
        return
    box = None
    label = area or "LT"
    if bbox:
        try:
            box = parse_bbox(bbox, param="--bbox")
        except BadRequest as exc:
            raise click.BadParameter(exc.message, param_hint="--bbox") from None
        label = f"bbox:{bbox}"
    elif area and area.upper() != "LT":
        found = areas_store.find_area(conn, area)
        if found is None:
            raise click.BadParameter(f"no loaded area named {area!r}; run `atvira areas load` or use --bbox", param_hint="--area")
        box = (found["min_lon"], found["min_lat"], found["max_lon"], found["max_lat"])
        label = found["name"]
    query = overpass.build_query(area=None if box else "LT", bbox=box)
    try:
        with http.session_for(cfg) as session:
            payload = overpass.fetch(
                query, session=session, endpoint=cfg.overpass_url, cache_dir=cfg.cache_dir / "overpass",
                offline=cfg.offline if offline is None else offline,
            )
    except FetchError as exc:  # the previous data keeps serving; the source is now stale
        record_failed_run(conn, source="osm", scope=scope or label, message=str(exc))
        raise
    records = (osm.element_to_facility(el, fetched_at=fetched_at)
               for el in osm.parse_overpass_json(payload, where=f"overpass:{label}", keep=osm.is_of_interest))
    report = apply_records(conn, (r for r in records if r is not None), source="osm",
                           scope=scope or label, locator=locator, progress=print_progress,
                           matcher=make_matcher(thresholds_from(cfg)))
    finish_run(conn, report, cfg)


@ingest.command("registry")
@click.argument("source")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scope", default=None, help="What this run fully covers (default: full). Records of an earlier run of the same scope that are missing now are marked removed.")
@click.pass_context
def ingest_registry(ctx: click.Context, source: str, files: tuple[Path, ...], scope: str | None) -> None:
    """A registry export or municipal upload: SOURCE is a mapping name (see `atvira sources`) or a
    path to a mapping .toml; FILEs are read together as one run, or fetched live (data.gov.lt) when none."""
    cfg = _settings(ctx)
    mapping = load_mapping(source)
    conn = connect(cfg.db)
    locator = areas_store.load_locator(conn)
    if locator.is_empty:
        click.echo("note: no areas loaded, so points are not checked against them (`atvira areas load`)", err=True)
    with http.session_for(cfg) as session:
        report, conv = run_registry(conn, mapping, list(files), settings=cfg, locator=locator, fetched_at=_now(),
                                    scope=scope, session=session)
    if conv.skipped:
        click.echo(f"  {conv.skipped} rows skipped (types this mapping does not list)")
    if conv.unnamed:
        click.echo(f"  {conv.unnamed} places had no name in the source and were named from name_default", err=True)
    finish_run(conn, report, cfg)
    unplaced = [r for r in conv.records if isinstance(r, Facility) and r.lon is None]
    for rec in unplaced:
        click.echo(f"  without a map position (kept and listed): {rec.source_id} {rec.name}")


@click.group()
def areas() -> None:
    """Municipalities and elderships with their population (needed for the audit and for placing facilities)."""


@areas.command("load")
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Read the boundary files from DIR (e.g. ../shared/data/govlt-powerbi-map-lt) instead of fetching them.")
@click.pass_context
def areas_load(ctx: click.Context, from_dir: Path | None) -> None:
    """Load the 60 municipalities and 554 elderships with their 2021 census population."""
    cfg = _settings(ctx)
    if from_dir is None:
        with http.session_for(cfg) as session:
            from_dir = fetch_areas(session=session, dest=cfg.cache_dir / "areas")
    loaded = read_areas(from_dir)
    conn = connect(cfg.db)
    n = areas_store.save_areas(conn, loaded)
    muni = sum(1 for a in loaded if a.level == "municipality")
    population = sum(a.population or 0 for a in loaded if a.level == "municipality")
    click.echo(f"loaded {n} areas: {muni} municipalities, {n - muni} elderships, population {population:,}")
    _recompute_audit(conn)
    outside = conn.execute(
        "SELECT count(*) FROM facilities WHERE lon IS NOT NULL AND municipality_code IS NULL AND status != 'removed'"
    ).fetchone()[0]
    if outside:
        click.echo(f"note: {outside} stored facilities lie outside every loaded area (kept, with no area)", err=True)


@areas.command("list")
@click.option("--level", type=click.Choice(["municipality", "eldership"]), default="municipality")
@click.pass_context
def areas_list(ctx: click.Context, level: str) -> None:
    """List loaded areas with population and facility counts."""
    conn = connect(_settings(ctx).db, readonly=True)
    for a in areas_store.list_areas(conn, level=level):
        click.echo(f"{a['code']:>6}  {a['name']:<40} {a['population'] or 0:>9,}  {a['facilities']:>6}")


@click.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """List sources (declared mappings and whatever the store holds) with licence, last fetch,
    counts, and STALE when the source's last ingest run failed."""
    import json as _json

    from directory.sources import list_sources

    from .mapping import list_mappings

    cfg = _settings(ctx)
    stored = {s["source"]: s for s in list_sources(connect(cfg.db))}
    rows = []
    for m in list_mappings():
        entry = stored.pop(m.name, None) or {"source": m.name, "records": 0, "facilities": 0, "merged": 0,
                                            "last_fetch": None, "licences": [], "stale": False, "last_run": None}
        rows.append({**entry, "title": m.title, "licences": entry["licences"] or [m.licence],
                     "live": bool(m.url)})
    rows += [{**s, "title": "OpenStreetMap" if s["source"] == "osm" else s["source"], "live": s["source"] == "osm"}
             for s in stored.values()]
    rows.sort(key=lambda r: r["source"])
    if as_json:
        click.echo(_json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        state = "STALE (last run failed)" if r["stale"] else ("never fetched" if not r["last_fetch"] else "ok")
        click.echo(f"{r['source']:<20} {r['records']:>7} records {r['facilities']:>7} facilities"
                   f" {r['merged']:>6} merged  last fetch {r['last_fetch'] or '-':<20} {state}")
        click.echo(f"{'':<20} {r['title']} — licence: {'; '.join(r['licences']) or '-'}")
