"""One core function per kind of run: read a source, apply its records, refresh what derives.

`run_osm` and `run_registry_files` (beside `registry.run_registry`) and `load_areas` are what
the CLI calls and prints; tests, bench and any other Python caller call the same functions, so
every caller gets the same store. Each run ends with `directory.derived.refresh_derived` unless
the caller asks otherwise (`derive=False`, e.g. to batch several runs and refresh once).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from directory import areas_store, clock, places
from directory.config import Settings
from directory.conflate import make_matcher, thresholds_from
from directory.derived import DerivedReport, refresh_derived
from directory.errors import FetchError, InputError
from directory.model import Facility
from directory.store import transaction
from directory.sync import IngestReport, Raw, StoredKeys, apply_records, record_failed_run, stored_raw_hashes

from . import http, osm, overpass
from . import places as place_files
from .areas import fetch_areas, read_areas, read_outline
from .mapping import Mapping, load_mapping
from .registry import Conversion, UploadRefused, check_municipality, run_registry


@dataclass
class RunResult:
    """What a run did: one ingest report per input (a file, or the live fetch), and the refresh."""

    reports: list[IngestReport] = field(default_factory=list)
    derived: DerivedReport | None = None
    conversion: Conversion | None = None  # registry runs: skipped rows, unnamed places, records
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(r.added or r.updated or r.removed for r in self.reports)


def _finish(conn: sqlite3.Connection, result: RunResult, settings: Settings, derive: bool) -> RunResult:
    if derive:
        result.derived = refresh_derived(conn, settings)
    return result


def osm_live_box(conn: sqlite3.Connection, *, area: str | None, bbox: tuple[float, float, float, float] | None
                 ) -> tuple[tuple[float, float, float, float] | None, str]:
    """The box and label of a live Overpass fetch: all of Lithuania, a loaded area, or a bbox."""
    if bbox is not None:
        return bbox, "bbox:" + ",".join(f"{v:g}" for v in bbox)
    if area and area.upper() != "LT":
        found = areas_store.find_area(conn, area)
        if found is None:
            raise InputError(f"no loaded area named {area!r}; run `atvira areas load` or use --bbox", where="--area")
        return (found["min_lon"], found["min_lat"], found["max_lon"], found["max_lat"]), found["name"]
    return None, "LT"


def _osm_raw(elements: Iterable[osm.HashedElement]) -> Iterator[Raw]:
    """Each (key, raw hash, maker of the mapped record[, stored[, run]]) as a Raw record:
    apply_records maps only those whose raw hash changed (starmap: no Python frame per element)."""
    return itertools.starmap(Raw, elements)


def _osm_context(conn: sqlite3.Connection, settings: Settings) -> bytes:
    """The raw hashes' context: element_to_facility's source and licence, and the areas and
    border rule that place the records (osm.raw_context)."""
    placement = f"{areas_store.areas_fingerprint(conn)}:{settings.border_tolerance_m!r}"
    return osm.raw_context(source="osm", licence=osm.OSM_LICENCE, placement=placement)


def run_osm(
    conn: sqlite3.Connection,
    *,
    settings: Settings,
    files: Sequence[Path] = (),
    area: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    scope: str | None = None,
    offline: bool | None = None,
    session: requests.Session | None = None,
    progress: Callable[[int], None] | None = None,
    derive: bool = True,
) -> RunResult:
    """OpenStreetMap: each of `files` (.osm.pbf, .osm, .osm.bz2, Overpass .json/.json.gz) as a run
    of its own scope (default: the file name), or one live Overpass fetch for `area` / `bbox`.

    A failed fetch is recorded as a failed run (the source shows STALE, its data keeps serving)
    and re-raised.
    """
    if files and (area or bbox):
        raise InputError("give files or an area/bbox, not both", where="--area")
    locator = areas_store.load_locator(conn, border_tolerance_m=settings.border_tolerance_m)
    matcher = make_matcher(thresholds_from(settings))
    fetched_at = clock.stamp()
    context = _osm_context(conn, settings)
    mapping = functools.partial(osm.element_to_facility, fetched_at=fetched_at)
    result = RunResult()
    if files:
        for path in files:
            # known: a PBF element whose raw hash is stored is skipped before its tags are read;
            # stored: a JSON element whose text's raw hash is stored in this scope, before it is decoded
            known = functools.partial(stored_raw_hashes, conn, source="osm")
            stored = StoredKeys(conn, source="osm", scope=scope or path.name)
            records = _osm_raw(osm.read_hashed(path, keep=osm.is_of_interest, context=context, then=mapping,
                                               known=known, stored=stored))
            result.reports.append(apply_records(
                conn, records, source="osm", scope=scope or path.name,
                locator=locator, progress=progress, matcher=matcher, stored_keys=stored))
        return _finish(conn, result, settings, derive)
    box, label = osm_live_box(conn, area=area, bbox=bbox)
    query = overpass.build_query(area=None if box else "LT", bbox=box)
    try:
        with ExitStack() as stack:
            client = session or stack.enter_context(http.session_for(settings))
            payload = overpass.fetch(
                query, session=client, endpoint=settings.overpass_url, cache_dir=settings.cache_dir / "overpass",
                offline=settings.offline if offline is None else offline,
            )
    except FetchError as exc:  # the previous data keeps serving; the source is now stale
        record_failed_run(conn, source="osm", scope=scope or label, message=str(exc))
        raise
    stored = StoredKeys(conn, source="osm", scope=scope or label)
    records = _osm_raw(osm.parse_overpass_hashed(payload, where=f"overpass:{label}", keep=osm.is_of_interest,
                                                 context=context, then=mapping, stored=stored))
    result.reports.append(apply_records(
        conn, records, source="osm", scope=scope or label, locator=locator,
        progress=progress, matcher=matcher, stored_keys=stored))
    return _finish(conn, result, settings, derive)


def run_registry_files(
    conn: sqlite3.Connection,
    mapping: Mapping,
    files: Sequence[Path] = (),
    *,
    settings: Settings,
    scope: str | None = None,
    session: requests.Session | None = None,
    derive: bool = True,
) -> RunResult:
    """A registry export or municipal upload (`files`, read together as one run), or with no
    files a live data.gov.lt fetch: `registry.run_registry`, then the derived refresh."""
    locator = areas_store.load_locator(conn)
    with ExitStack() as stack:
        client = session or stack.enter_context(http.session_for(settings))
        report, conv = run_registry(conn, mapping, list(files), settings=settings, locator=locator,
                                    fetched_at=clock.stamp(), scope=scope, session=client)
    result = RunResult(reports=[report], conversion=conv)
    if locator.is_empty:
        result.notes.append("no areas loaded, so points are not checked against them (`atvira areas load`)")
    return _finish(conn, result, settings, derive)


def run_municipal_upload(conn: sqlite3.Connection, path: Path, *, settings: Settings, municipality: str,
                         actor: str, derive: bool = True) -> RunResult:
    """An editor's upload of the municipal template through the web, for one municipality.

    The same strict validation as `atvira ingest registry municipal-upload`, and every row must lie
    in `municipality`; every problem is listed (UploadRefused) before anything is written. The run's
    scope is the municipality, so a later upload replaces that municipality's earlier one only.
    The web layer receives this function from app.py (directory never imports ingest).
    """
    mapping = load_mapping("municipal-upload")
    locator = areas_store.load_locator(conn)
    problems = check_municipality([path], mapping, locator=locator, codes=[municipality],
                                  limit=settings.max_upload_bytes)
    if problems:
        raise UploadRefused(problems, where=path.name)
    report, conv = run_registry(conn, mapping, [path], settings=settings, locator=locator,
                                fetched_at=clock.stamp(), scope=f"municipality:{municipality}", actor=actor)
    return _finish(conn, RunResult(reports=[report], conversion=conv), settings, derive)


@dataclass
class AreasResult:
    loaded: int
    municipalities: int
    population: int
    outside: int  # stored facilities that now lie outside every area
    derived: DerivedReport | None = None


OUTLINE_URL = "https://raw.githubusercontent.com/mledoze/countries/master/data/ltu.geo.json"
# Beside a local copy of the boundary files, where ../shared/data keeps the country outline.
OUTLINE_BESIDE = Path("mledoze-countries") / "ltu.geo.json"


def find_outline(from_dir: Path | None) -> Path | None:
    """The country outline next to a local copy of the boundary files, if there is one."""
    if from_dir is None:
        return None
    candidate = Path(from_dir).resolve().parent / OUTLINE_BESIDE
    return candidate if candidate.is_file() else None


def fetch_outline(*, session: requests.Session, dest: Path) -> Path:
    """Download the country outline into `dest` (read back before it replaces an older copy)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    body = bytes(http.request(session, "GET", OUTLINE_URL).content or b"")
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(body)
    try:
        read_outline(tmp)
    except InputError as exc:
        tmp.unlink(missing_ok=True)
        raise FetchError(f"downloaded outline does not read: {exc}", where=OUTLINE_URL) from exc
    tmp.replace(dest)
    return dest


def load_areas(conn: sqlite3.Connection, *, settings: Settings, from_dir: Path | None = None,
               outline_file: Path | None = None, session: requests.Session | None = None,
               derive: bool = True) -> AreasResult:
    """Load the municipalities and elderships (from `from_dir`, or fetched) and the country
    outline (`outline_file`; else the one beside `from_dir`, or fetched), re-place the stored
    facilities and gazetteer places in the same transaction, then refresh the derived data."""
    live = from_dir is None
    if live:
        with ExitStack() as stack:
            client = session or stack.enter_context(http.session_for(settings))
            from_dir = fetch_areas(session=client, dest=settings.cache_dir / "areas")
            if outline_file is None:
                try:
                    outline_file = fetch_outline(session=client, dest=settings.cache_dir / "areas" / "ltu.geo.json")
                except FetchError:  # the border rule is a refinement: areas load without it
                    outline_file = None
    loaded = read_areas(from_dir)
    outline_path = outline_file or find_outline(from_dir)
    outline = read_outline(outline_path) if outline_path is not None else None
    n = areas_store.save_areas(conn, loaded, outline=outline, border_tolerance_m=settings.border_tolerance_m)
    outside = conn.execute(
        "SELECT count(*) FROM facilities WHERE lon IS NOT NULL AND municipality_code IS NULL AND status != 'removed'"
    ).fetchone()[0]
    result = AreasResult(
        loaded=n,
        municipalities=sum(1 for a in loaded if a.level == "municipality"),
        population=sum(a.population or 0 for a in loaded if a.level == "municipality"),
        outside=outside,
    )
    if derive:
        result.derived = refresh_derived(conn, settings)
    return result


def unplaced(result: RunResult) -> list[Any]:
    """The registry records kept without a map position (listed by the CLI)."""
    if result.conversion is None:
        return []
    return [r for r in result.conversion.records if isinstance(r, Facility) and r.lon is None]


def load_places(conn: sqlite3.Connection, *, settings: Settings, files: Sequence[Path] = (),
                session: requests.Session | None = None, offline: bool | None = None) -> int:
    """The gazetteer's named places (cities, towns, villages, suburbs) from OSM `files`, or with
    none the same from the Overpass API (cached); replaces the places loaded before. The areas
    are in the gazetteer already (`load_areas`). Returns how many places were stored."""
    if files:
        entries = [e for path in files for e in place_files.read_places(path)]
    else:
        query = place_files.overpass_query(area="LT")
        with ExitStack() as stack:
            client = session or stack.enter_context(http.session_for(settings))
            payload = overpass.fetch(query, session=client, endpoint=settings.overpass_url,
                                     cache_dir=settings.cache_dir / "overpass",
                                     offline=settings.offline if offline is None else offline)
        entries = place_files.parse_places(payload, where="overpass:places LT")
    locator = areas_store.load_locator(conn, border_tolerance_m=settings.border_tolerance_m)
    with transaction(conn):
        return places.save_places(conn, entries, locator=locator, source="osm")


# The Lithuanian start, offline: what `atvira setup lithuania --from DIR` reads inside DIR
# (a copy of ../shared/data; see its SOURCES.md).
LT_AREAS = Path("govlt-powerbi-map-lt")
LT_OUTLINE = OUTLINE_BESIDE
LT_OSM = Path("geodata-lt-osm-nodes") / "lithuania-2019-amenity-leisure.json.gz"
LT_PLACES = Path("geodata-lt-osm-nodes") / "lithuania-2019-places.json.gz"
LT_REGISTRY = ("vilnius-darzeliai", Path("vilnius-darzeliai") / "darzeliai_grupes.csv")


@dataclass
class SetupResult:
    """What setting up a country did, step by step (the CLI prints each)."""

    areas: AreasResult | None = None
    places: int = 0
    runs: list[tuple[str, RunResult]] = field(default_factory=list)
    derived: DerivedReport | None = None


def setup_lithuania(conn: sqlite3.Connection, *, settings: Settings, from_dir: Path | None = None,
                    session: requests.Session | None = None,
                    step: Callable[[str], None] | None = None) -> SetupResult:
    """Lithuania from nothing: the 60 municipalities and 554 elderships with the country outline,
    the gazetteer, the OSM facilities and the Vilnius kindergarten register; then one derived
    refresh. From `from_dir` (a copy of ../shared/data: the country OSM sample) or live (areas
    and outline fetched, OSM and places from Overpass, the register from data.gov.lt).
    Running it again changes nothing that did not change at the sources."""
    def say(text: str) -> None:
        if step is not None:
            step(text)

    if from_dir is not None:
        missing = [str(from_dir / p) for p in (LT_AREAS, LT_OSM, LT_PLACES, LT_REGISTRY[1]) if not (from_dir / p).exists()]
        if missing:
            raise InputError(f"not found: {', '.join(missing)}", where="--from")
    result = SetupResult()
    say("areas")
    result.areas = load_areas(conn, settings=settings, from_dir=from_dir / LT_AREAS if from_dir else None,
                              outline_file=from_dir / LT_OUTLINE if from_dir and (from_dir / LT_OUTLINE).is_file()
                              else None, session=session, derive=False)
    say("places")
    result.places = load_places(conn, settings=settings, files=[from_dir / LT_PLACES] if from_dir else (),
                                session=session)
    say("osm")
    result.runs.append(("osm", run_osm(conn, settings=settings, files=[from_dir / LT_OSM] if from_dir else (),
                                       area=None if from_dir else "LT", session=session, derive=False)))
    say("registry")
    source, rel = LT_REGISTRY
    result.runs.append((source, run_registry_files(conn, load_mapping(source), [from_dir / rel] if from_dir else [],
                                                   settings=settings, session=session, derive=False)))
    say("derived")
    result.derived = refresh_derived(conn, settings)
    return result
