"""`atvira ingest ...` and `atvira areas ...`: read a source, hand its records to directory.sync."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import click
import requests

from directory import areas_store
from directory.config import Settings
from directory.errors import BadRequest, FetchError
from directory.search import parse_bbox
from directory.store import connect
from directory.sync import IngestReport, apply_records, print_progress, record_failed_run

from . import osm, overpass
from .areas import fetch_areas, read_areas


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
                                   scope=scope or path.name, locator=locator, progress=print_progress)
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
        with requests.Session() as session:
            payload = overpass.fetch(
                query, session=session, endpoint=cfg.overpass_url, cache_dir=cfg.cache_dir / "overpass",
                offline=cfg.offline if offline is None else offline, max_retries=cfg.http_retries,
                timeout=cfg.http_timeout,
            )
    except FetchError as exc:  # the previous data keeps serving; the source is now stale
        record_failed_run(conn, source="osm", scope=scope or label, message=str(exc))
        raise
    records = (osm.element_to_facility(el, fetched_at=fetched_at)
               for el in osm.parse_overpass_json(payload, where=f"overpass:{label}", keep=osm.is_of_interest))
    report = apply_records(conn, (r for r in records if r is not None), source="osm",
                           scope=scope or label, locator=locator, progress=print_progress)
    finish_run(conn, report, cfg)


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
        with requests.Session() as session:
            from_dir = fetch_areas(session=session, dest=cfg.cache_dir / "areas")
    loaded = read_areas(from_dir)
    conn = connect(cfg.db)
    n = areas_store.save_areas(conn, loaded)
    muni = sum(1 for a in loaded if a.level == "municipality")
    population = sum(a.population or 0 for a in loaded if a.level == "municipality")
    click.echo(f"loaded {n} areas: {muni} municipalities, {n - muni} elderships, population {population:,}")
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
