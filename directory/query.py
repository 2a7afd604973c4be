"""Facility queries as values: parse request parameters into a `FacilityQuery`, and compile one
into SQL (`compile_where`). Shared by the API, the map's clusters, the exports and the CLI.

Every parameter goes through one of the parsers here, so a bad value gets the same clear 400
naming the parameter wherever it was given.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from .errors import BadRequest
from .hours import STATES as OPEN_STATES
from .hours import HoursEvaluator
from .model import CATEGORIES, FEATURES, STATUSES
from .sectors import DETAILS as SECTOR_DETAILS

DEFAULT_STATUSES = ("active", "closed", "unknown")  # "removed" only when asked for
# The farthest a near= search looks (bounded cost: growing to the whole Earth took 3.3 s for a
# point with nothing around it); Lithuania is 370 km wide, "near me" means a walk or a short drive.
NEAR_MAX_M = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class FacilityQuery:
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    categories: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    q: str | None = None
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    municipality: str | None = None
    eldership: str | None = None
    # (issue 15) public / private / civic / unknown, or a finer value (government, religious ...)
    sectors: tuple[str, ...] = ()
    limit: int = 500
    after: int | None = None
    near: tuple[float, float] | None = None  # lon, lat: order by distance, add distance_m
    radius_m: float | None = None  # with near: only within this distance
    open_states: tuple[str, ...] = ()  # open / closed / unknown ("open now" is ("open",))
    now: datetime | None = None  # the instant "open now" is evaluated at (default: the request's)
    # A place's box from the search text ("darželis Dusetos": directory.interpret), on top of bbox.
    within: tuple[float, float, float, float] | None = None


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_bbox(value: str, *, param: str = "bbox") -> tuple[float, float, float, float]:
    parts = value.split(",")
    if len(parts) != 4 or not all(_DECIMAL.fullmatch(p.strip()) for p in parts):
        raise BadRequest(f"expected four numbers west,south,east,north (coordinates must be finite numbers in ASCII digits), got {value[:80]!r}",
                         where=param)
    west, south, east, north = (float(p) for p in parts)
    if not all(math.isfinite(v) for v in (west, south, east, north)):  # 1e999
        raise BadRequest("coordinates must be finite numbers", where=param)
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise BadRequest("longitudes must be within -180..180", where=param)
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise BadRequest("latitudes must be within -90..90", where=param)
    if west > east:
        raise BadRequest(f"west ({west:g}) is greater than east ({east:g}); boxes across 180° are not supported", where=param)
    if south > north:
        raise BadRequest(f"south ({south:g}) is greater than north ({north:g}); the order is west,south,east,north", where=param)
    return west, south, east, north


def parse_near(value: str, *, param: str = "near") -> tuple[float, float]:
    parts = value.split(",")
    if len(parts) != 2 or not all(_DECIMAL.fullmatch(p.strip()) for p in parts):
        raise BadRequest(f"expected two numbers lon,lat (coordinates must be finite numbers in ASCII digits), got {value[:80]!r}", where=param)
    lon, lat = (float(p) for p in parts)
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadRequest("expected lon within -180..180 and lat within -90..90", where=param)
    if looks_swapped(lon, lat):
        raise BadRequest(f"{lon:g},{lat:g} looks like lat,lon for a place in Lithuania; near= is lon,lat"
                         f" (x first, as in GeoJSON): did you mean near={lat:g},{lon:g}?", where=param)
    return lon, lat


# Lithuania with a margin (lon 20.9..26.9, lat 53.8..56.5). A near= whose two numbers only fit it
# the other way round is refused rather than silently searched in the Arabian Peninsula: the
# project is Lithuania first, and the map page's own ll= is lat,lon, so the slip is an easy one.
LT_LON = (20.9, 26.9)
LT_LAT = (53.8, 56.5)


def looks_swapped(lon: float, lat: float) -> bool:
    """True when (lon, lat) lies outside Lithuania but (lat, lon) inside it."""
    inside = LT_LON[0] <= lon <= LT_LON[1] and LT_LAT[0] <= lat <= LT_LAT[1]
    swapped = LT_LON[0] <= lat <= LT_LON[1] and LT_LAT[0] <= lon <= LT_LAT[1]
    return swapped and not inside


def parse_query(args: Mapping[str, str], *, default_limit: int = 500, max_limit: int = 5000) -> FacilityQuery:
    """Turn request parameters into a FacilityQuery; a BadRequest names the parameter at fault."""
    known = {"bbox", "category", "feature", "features", "q", "status", "municipality", "eldership", "limit", "after",
             "near", "radius", "open", "open_now", "sector", "lang"}  # lang: the UI language, accepted everywhere
    unknown = sorted(set(args) - known)
    if unknown:
        raise BadRequest(f"unknown parameter; known are {', '.join(sorted(known))}", where=unknown[0])
    bbox = parse_bbox(args["bbox"]) if args.get("bbox") else None
    categories = split_list(args.get("category"))
    for c in categories:
        if c not in CATEGORIES:
            raise BadRequest(f"unknown category {c[:40]!r}; known are {', '.join(CATEGORIES)}", where="category")
    features = split_list(args.get("features")) + split_list(args.get("feature"))
    for f in features:
        if f not in FEATURES:
            raise BadRequest(f"unknown feature {f[:40]!r}; known are {', '.join(FEATURES)}", where="features")
    statuses = split_list(args.get("status")) or list(DEFAULT_STATUSES)
    for s in statuses:
        if s not in STATUSES:
            raise BadRequest(f"unknown status {s[:40]!r}; known are {', '.join(STATUSES)}", where="status")
    sectors = split_list(args.get("sector"))
    for s in sectors:
        if s not in SECTOR_DETAILS:
            raise BadRequest(f"unknown sector {s[:40]!r}; known are {', '.join(SECTOR_DETAILS)}", where="sector")
    limit = parse_int(args, "limit", default_limit, low=1, high=max_limit)
    after = parse_int(args, "after", None, low=0, high=2**62)
    q = (args.get("q") or "").strip() or None
    if q is not None and len(q) > 200:
        raise BadRequest("search text is longer than 200 characters", where="q")
    near = parse_near(args["near"]) if args.get("near") else None
    radius = parse_int(args, "radius", None, low=1, high=NEAR_MAX_M)
    if radius is not None and near is None:
        raise BadRequest("radius needs near=lon,lat", where="radius")
    if near is not None and after is not None:
        raise BadRequest("near= results are ordered by distance and not paged; raise limit instead", where="after")
    open_states = split_list(args.get("open"))
    for o in open_states:
        if o not in OPEN_STATES:
            raise BadRequest(f"unknown opening state {o[:40]!r}; known are {', '.join(OPEN_STATES)}", where="open")
    open_now = (args.get("open_now") or "").strip().lower()
    if open_now not in ("", "0", "1", "true", "false", "yes", "no"):
        raise BadRequest(f"expected 1 or 0, got {open_now[:20]!r}", where="open_now")
    if open_now in ("1", "true", "yes") and "open" not in open_states:
        open_states.append("open")
    return FacilityQuery(
        near=near,
        radius_m=float(radius) if radius is not None else None,
        open_states=tuple(dict.fromkeys(open_states)),
        bbox=bbox,
        categories=tuple(categories),
        features=tuple(dict.fromkeys(features)),
        q=q,
        statuses=tuple(statuses),
        municipality=args.get("municipality") or None,
        eldership=args.get("eldership") or None,
        sectors=tuple(dict.fromkeys(sectors)),
        limit=limit,
        after=after,
    )


# The one number grammar for every parameter: ASCII digits only (float() and int() also take
# "５", "1_000", " inf", "nan" and 4,000-digit integers), a bounded length, then a range check.
_WHOLE = re.compile(r"[0-9]{1,19}")
_DECIMAL = re.compile(r"[+-]?([0-9]{1,12}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][+-]?[0-9]{1,3})?")


def parse_whole(raw: str | None, *, where: str, low: int, high: int) -> int:
    """A whole number in low..high written with ASCII digits; a BadRequest naming `where` otherwise."""
    text = (raw or "").strip()
    if not _WHOLE.fullmatch(text):
        raise BadRequest(f"expected a whole number {low}..{high}, got {(raw or '')[:40]!r}", where=where)
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"must be between {low} and {high}, got {text[:40]}", where=where)
    return value


def parse_decimal(raw: str | None, *, where: str, low: float, high: float) -> float:
    """A decimal number in low..high written with ASCII digits (no exponent, inf or nan)."""
    text = (raw or "").strip()
    if not _DECIMAL.fullmatch(text):
        raise BadRequest(f"expected a number {low:g}..{high:g}, got {(raw or '')[:40]!r}", where=where)
    value = float(text)
    if not (math.isfinite(value) and low <= value <= high):
        raise BadRequest(f"must be between {low:g} and {high:g}, got {text[:40]}", where=where)
    return value


def parse_int(args: Mapping[str, str], name: str, default: int | None, *, low: int, high: int) -> int | None:
    """Parameter `name` of `args` through `parse_whole` (`default` when absent or empty)."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    return parse_whole(raw, where=name, low=low, high=high)


_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_expression(text: str) -> str | None:
    """A safe FTS5 query: every word a quoted prefix term, all required (no FTS syntax leaks)."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return None
    return " AND ".join(f'"{t}"*' for t in tokens[:12])


def ordered_where(query: FacilityQuery, *, scan: bool = False) -> tuple[str, str, list[object]]:
    """FROM clause, WHERE clause (ordered by the paging key) and parameters for a query."""
    source, where, params, key = compile_where(query, scan=scan)
    return source, f"{where} ORDER BY {key}", params


def compile_where(query: FacilityQuery, *, scan: bool = False) -> tuple[str, str, list[object], str]:
    """FROM clause, WHERE clause, parameters and the keyset column, unordered.

    scan=True reads a bbox by walking the table in rid order instead of through the R*Tree (see
    `prefer_scan`). The open-state filter calls the SQL function `atvira_open_state`: run the
    SQL only on a connection `register_hours` has prepared.
    """
    clauses: list[str] = []
    params: list[object] = []
    expr = fts_expression(query.q) if query.q else None
    if expr is not None:
        # Text search drives: FTS5 yields matching rowids in ascending order, so the page stops
        # after `limit` matches; "rid IN (all matches)" built the whole match set first (66k
        # rowids for a common word at 1M facilities: 10-100x slower; see bench/fts.py).
        source = "facilities_fts JOIN facilities f ON f.rid = facilities_fts.rowid"
        clauses.append("facilities_fts MATCH ?")
        params.append(expr)
        key = "facilities_fts.rowid"
        if query.bbox is not None:
            west, south, east, north = query.bbox
            clauses.append("f.lon BETWEEN ? AND ? AND f.lat BETWEEN ? AND ?")
            params += [west, east, south, north]
    elif query.bbox is not None and scan:
        west, south, east, north = query.bbox
        source = "facilities f"
        clauses.append("f.lon BETWEEN ? AND ? AND f.lat BETWEEN ? AND ?")
        params += [west, east, south, north]
        key = "f.rid"
    elif query.bbox is not None:
        west, south, east, north = query.bbox
        source = "facilities_rtree r JOIN facilities f ON f.rid = r.rid"
        # Overlap test on the float32 R*Tree, then the exact recheck on the stored doubles.
        clauses.append("r.max_lon >= ? AND r.min_lon <= ? AND r.max_lat >= ? AND r.min_lat <= ?")
        params += [west, east, south, north]
        clauses.append("f.lon BETWEEN ? AND ? AND f.lat BETWEEN ? AND ?")
        params += [west, east, south, north]
        key = "r.rid"
    else:
        source = "facilities f"
        key = "f.rid"
    if query.after is not None:
        clauses.append(f"{key} > ?")
        params.append(query.after)
    if query.categories:
        clauses.append(
            f"EXISTS (SELECT 1 FROM json_each(f.categories) c WHERE c.value IN ({','.join('?' * len(query.categories))}))"
        )
        params += list(query.categories)
    for feature in query.features:
        clauses.append("json_extract(f.features, ?) IN ('yes', 'limited')")
        params.append(f"$.{feature}")
    if query.statuses and set(query.statuses) != set(STATUSES):
        clauses.append(f"f.status IN ({','.join('?' * len(query.statuses))})")
        params += list(query.statuses)
    if query.within is not None:
        west, south, east, north = query.within
        clauses.append("f.lon BETWEEN ? AND ? AND f.lat BETWEEN ? AND ?")
        params += [west, east, south, north]
    if query.municipality:
        clauses.append("f.municipality_code = ?")
        params.append(query.municipality)
    if query.eldership:
        clauses.append("f.eldership_code = ?")
        params.append(query.eldership)
    if query.sectors:
        # A sector (public ...) is the column; a finer value (religious ...) is the one kept in
        # extra, and also matches where it is the sector's own name (public, private, civic).
        coarse = [s for s in query.sectors if s in ("public", "private", "civic", "unknown")]
        fine = [s for s in query.sectors if s not in coarse]
        parts = []
        if coarse:
            parts.append(f"f.sector IN ({','.join('?' * len(coarse))})")
            params += coarse
        if fine:
            parts.append(f"json_extract(f.extra, '$.sector_detail') IN ({','.join('?' * len(fine))})")
            params += fine
        clauses.append("(" + " OR ".join(parts) + ")")
    if query.q and expr is None:  # text with no word in it matches nothing
        clauses.append("0")
    if query.open_states and set(query.open_states) != set(OPEN_STATES):
        clauses.append(f"atvira_open_state(f.opening_hours) IN ({','.join('?' * len(query.open_states))})")
        params += list(query.open_states)
    where = " AND ".join(clauses) if clauses else "1"
    return source, where, params, key


# Registering a SQL function expires every statement the connection has prepared, so SQLite
# parses each again on its next run (a fifth of a map page's instructions went to re-parsing its
# statements). Each connection gets atvira_open_state once; the function calls the evaluator of
# the connection's latest query. Keyed by id(conn) (a connection takes no attributes and no weak
# references), holding the connection so its id is not reused while it is listed.
_HOURS_FUNCTIONS: dict[int, tuple[sqlite3.Connection, list[HoursEvaluator]]] = {}


def register_hours(conn: sqlite3.Connection, query: FacilityQuery) -> HoursEvaluator:
    """Give `conn` the SQL function atvira_open_state(hours) for this query's instant."""
    evaluator = HoursEvaluator(query.now)
    entry = _HOURS_FUNCTIONS.get(id(conn))
    if entry is not None and entry[0] is conn:
        entry[1][0] = evaluator
        return evaluator
    if len(_HOURS_FUNCTIONS) > 256:  # connections come and go in tests; servers keep a few
        _HOURS_FUNCTIONS.clear()
    current = [evaluator]
    conn.create_function("atvira_open_state", 1, lambda hours: current[0].state_name(hours))
    _HOURS_FUNCTIONS[id(conn)] = (conn, current)
    return evaluator


def with_changes(query: FacilityQuery, **changes: object) -> FacilityQuery:
    """A copy of `query` with some fields replaced (keyset paging moves `after`)."""
    return replace(query, **changes)  # type: ignore[arg-type]
