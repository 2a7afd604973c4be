"""`atvira ingest ...`, `atvira areas ...` and `atvira sources`: thin shells that call one run
function in `ingest.runs` each and print its report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from directory import areas_store
from directory.config import Settings
from directory.derived import DerivedReport
from directory.errors import BadRequest, InputError
from directory.query import parse_bbox
from directory.sources import list_sources
from directory.store import connect
from directory.sync import IngestReport, print_progress
from ingest import runs
from ingest.mapping import list_mappings, load_mapping

from .base import pass_settings


def echo_report(report: IngestReport, *, max_rejections: int = 50) -> None:
    click.echo(report.summary())
    for rej in report.rejected[:max_rejections]:
        click.echo(f"  rejected {rej}", err=True)
    if len(report.rejected) > max_rejections:
        click.echo(f"  ... and {len(report.rejected) - max_rejections} more rejections (see `atvira status`)", err=True)


def echo_derived(derived: DerivedReport | None, settings: Settings) -> None:
    if derived is None:
        return
    if derived.done:
        click.echo(derived.describe(), err=True)
    if derived.snapshot is not None:
        click.echo(f"snapshot {derived.snapshot['id']}: {settings.snapshot_dir() / derived.snapshot['file']}")


def echo_run(result: runs.RunResult, settings: Settings) -> None:
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for report in result.reports:
        echo_report(report)
    echo_derived(result.derived, settings)


@click.group()
def ingest() -> None:
    """Load facilities from a source into the store."""


@ingest.command("osm")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--area", default=None, help="Live Overpass fetch for an area: LT (default when no FILE), or a loaded municipality's name or code.")
@click.option("--bbox", default=None, help="Live Overpass fetch for west,south,east,north.")
@click.option("--scope", default=None, help="What this run fully covers (default: the file name or area). Records of an earlier run of the same scope that are missing now are marked removed.")
@click.option("--offline", is_flag=True, default=None, help="Use only the on-disk cache for live fetches.")
@pass_settings
def ingest_osm(cfg: Settings, files: tuple[Path, ...], area: str | None, bbox: str | None,
               scope: str | None, offline: bool | None) -> None:
    """OpenStreetMap: .osm.pbf, .osm/.osm.bz2 or Overpass .json/.json.gz FILEs, or a live Overpass fetch."""
    if files and (area or bbox):
        raise click.UsageError("give FILEs or --area/--bbox, not both")
    box = None
    if bbox:
        try:
            box = parse_bbox(bbox, param="--bbox")
        except BadRequest as exc:
            raise click.BadParameter(exc.message, param_hint="--bbox") from None
    conn = connect(cfg.db)
    try:
        result = runs.run_osm(conn, settings=cfg, files=files, area=area, bbox=box, scope=scope, offline=offline,
                              progress=print_progress)
    except InputError as exc:
        if exc.where == "--area":
            raise click.BadParameter(exc.message, param_hint="--area") from None
        raise
    echo_run(result, cfg)


@ingest.command("registry")
@click.argument("source")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scope", default=None, help="What this run fully covers (default: full). Records of an earlier run of the same scope that are missing now are marked removed.")
@pass_settings
def ingest_registry(cfg: Settings, source: str, files: tuple[Path, ...], scope: str | None) -> None:
    """A registry export or municipal upload: SOURCE is a mapping name (see `atvira sources`) or a
    path to a mapping .toml; FILEs are read together as one run, or fetched live (data.gov.lt) when none."""
    mapping = load_mapping(source)
    conn = connect(cfg.db)
    result = runs.run_registry_files(conn, mapping, files, settings=cfg, scope=scope)
    conv = result.conversion
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if conv is not None and conv.skipped:
        click.echo(f"  {conv.skipped} rows skipped (types this mapping does not list)")
    if conv is not None and conv.unnamed:
        click.echo(f"  {conv.unnamed} places had no name in the source and were named from name_default", err=True)
    for report in result.reports:
        echo_report(report)
    echo_derived(result.derived, cfg)
    for rec in runs.unplaced(result):
        click.echo(f"  without a map position (kept and listed): {rec.source_id} {rec.name}")


@ingest.command("places")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--offline", is_flag=True, default=None, help="Use only the on-disk cache for the live fetch.")
@pass_settings
def ingest_places(cfg: Settings, files: tuple[Path, ...], offline: bool | None) -> None:
    """The gazetteer for place search: named OSM place nodes (cities, towns, villages, suburbs) from
    FILEs (Overpass .json/.json.gz, .osm, .pbf), or with none from the Overpass API (all of Lithuania)."""
    conn = connect(cfg.db)
    n = runs.load_places(conn, settings=cfg, files=files, offline=offline)
    click.echo(f"gazetteer: {n:,} named places")


@click.group()
def areas() -> None:
    """Municipalities and elderships with their population (needed for the audit and for placing facilities)."""


@areas.command("load")
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Read the boundary files from DIR (e.g. ../shared/data/govlt-powerbi-map-lt) instead of fetching them.")
@pass_settings
def areas_load(cfg: Settings, from_dir: Path | None) -> None:
    """Load the 60 municipalities and 554 elderships with their 2021 census population."""
    conn = connect(cfg.db)
    result = runs.load_areas(conn, settings=cfg, from_dir=from_dir)
    click.echo(f"loaded {result.loaded} areas: {result.municipalities} municipalities,"
               f" {result.loaded - result.municipalities} elderships, population {result.population:,}")
    echo_derived(result.derived, cfg)
    if result.outside:
        click.echo(f"note: {result.outside} stored facilities lie outside every loaded area (kept, with no area)",
                   err=True)


@areas.command("list")
@click.option("--level", type=click.Choice(["municipality", "eldership"]), default="municipality")
@pass_settings
def areas_list(cfg: Settings, level: str) -> None:
    """List loaded areas with population and facility counts."""
    conn = connect(cfg.db, readonly=True)
    for a in areas_store.list_areas(conn, level=level):
        click.echo(f"{a['code']:>6}  {a['name']:<40} {a['population'] or 0:>9,}  {a['facilities']:>6}")


@click.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_settings
def sources(cfg: Settings, as_json: bool) -> None:
    """List sources (declared mappings and whatever the store holds) with licence, last fetch,
    counts, and STALE when the source's last ingest run failed."""
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
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        state = "STALE (last run failed)" if r["stale"] else ("never fetched" if not r["last_fetch"] else "ok")
        click.echo(f"{r['source']:<20} {r['records']:>7} records {r['facilities']:>7} facilities"
                   f" {r['merged']:>6} merged  last fetch {r['last_fetch'] or '-':<20} {state}")
        click.echo(f"{'':<20} {r['title']} — licence: {'; '.join(r['licences']) or '-'}")
