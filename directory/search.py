"""Facility queries: bbox (R*Tree), category, features, diacritic-free text, keyset paging,
open now (three states), and nearest-first from a point.

The GeoJSON for each row is assembled by SQLite's JSON functions, so answering a request costs
little more than the R*Tree query itself; Python only joins the strings. Nothing here loads the
whole table: every query is bounded by `limit` and resumes after the last row it returned.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from .errors import BadRequest
from .hours import STATES as OPEN_STATES, HoursEvaluator
from .model import CATEGORIES, FEATURES, STATUSES

DEFAULT_STATUSES = ("active", "closed", "unknown")  # "removed" only when asked for


@dataclass(frozen=True, slots=True, kw_only=True)
class FacilityQuery:
    bbox: tuple[float, float, float, float] | None = None  # west, south, east, north
    categories: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    q: str | None = None
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    municipality: str | None = None
    eldership: str | None = None
    limit: int = 500
    after: int | None = None
    near: tuple[float, float] | None = None  # lon, lat: order by distance, add distance_m
    radius_m: float | None = None  # with near: only within this distance
    open_states: tuple[str, ...] = ()  # open / closed / unknown ("open now" is ("open",))
    now: datetime | None = None  # the instant "open now" is evaluated at (default: the request's)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_bbox(value: str, *, param: str = "bbox") -> tuple[float, float, float, float]:
    parts = value.split(",")
    if len(parts) != 4:
        raise BadRequest(f"expected four numbers west,south,east,north, got {value[:80]!r}", where=param)
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise BadRequest(f"expected four numbers west,south,east,north, got {value[:80]!r}", where=param) from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
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
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError:
        raise BadRequest(f"expected two numbers lon,lat, got {value[:80]!r}", where=param) from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadRequest("expected lon within -180..180 and lat within -90..90", where=param)
    return lon, lat


def parse_query(args: Mapping[str, str], *, default_limit: int = 500, max_limit: int = 5000) -> FacilityQuery:
    """Turn request parameters into a FacilityQuery; a BadRequest names the parameter at fault."""
    known = {"bbox", "category", "feature", "features", "q", "status", "municipality", "eldership", "limit", "after",
             "near", "radius", "open", "open_now"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise BadRequest(f"unknown parameter; known are {', '.join(sorted(known))}", where=unknown[0])
    bbox = parse_bbox(args["bbox"]) if args.get("bbox") else None
    categories = _split(args.get("category"))
    for c in categories:
        if c not in CATEGORIES:
            raise BadRequest(f"unknown category {c[:40]!r}; known are {', '.join(CATEGORIES)}", where="category")
    features = _split(args.get("features")) + _split(args.get("feature"))
    for f in features:
        if f not in FEATURES:
            raise BadRequest(f"unknown feature {f[:40]!r}; known are {', '.join(FEATURES)}", where="features")
    statuses = _split(args.get("status")) or list(DEFAULT_STATUSES)
    for s in statuses:
        if s not in STATUSES:
            raise BadRequest(f"unknown status {s[:40]!r}; known are {', '.join(STATUSES)}", where="status")
    limit = _int_param(args, "limit", default_limit, low=1, high=max_limit)
    after = _int_param(args, "after", None, low=0, high=2**62)
    q = (args.get("q") or "").strip() or None
    if q is not None and len(q) > 200:
        raise BadRequest("search text is longer than 200 characters", where="q")
    near = parse_near(args["near"]) if args.get("near") else None
    radius = _int_param(args, "radius", None, low=1, high=20_000_000)
    if radius is not None and near is None:
        raise BadRequest("radius needs near=lon,lat", where="radius")
    if near is not None and after is not None:
        raise BadRequest("near= results are ordered by distance and not paged; raise limit instead", where="after")
    open_states = _split(args.get("open"))
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
        limit=limit,
        after=after,
    )


def _int_param(args: Mapping[str, str], name: str, default: int | None, *, low: int, high: int) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,19}", raw.strip()):  # ASCII digits only: "５" is not a limit
        raise BadRequest(f"expected a whole number, got {raw[:40]!r}", where=name)
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"must be between {low} and {high}, got {value}", where=name)
    return value


_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_expression(text: str) -> str | None:
    """A safe FTS5 query: every word a quoted prefix term, all required (no FTS syntax leaks)."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return None
    return " AND ".join(f'"{t}"*' for t in tokens[:12])


# A facility's RFC 7946 geometry (lon, lat), or null for a place without a map position;
# shared by the API and the exports so both write points the same way.
GEOMETRY_SQL = """CASE WHEN f.lon IS NULL THEN NULL
                     ELSE json_object('type', 'Point', 'coordinates', json_array(f.lon, f.lat)) END"""

# The properties every list row carries; the detail view adds sources and extra.
_FEATURE_SQL = f"""json_object(
    'type', 'Feature',
    'id', f.id,
    'geometry', {GEOMETRY_SQL},
    'properties', json_object(
        'id', f.id,
        'name', f.name,
        'categories', json(f.categories),
        'features', json(f.features),
        'address', f.address,
        'opening_hours', f.opening_hours,
        'operator', f.operator,
        'sector', f.sector,
        'status', f.status,
        'municipality_code', f.municipality_code,
        'eldership_code', f.eldership_code,
        'last_verified', f.last_verified,
        'source', f.source,
        'licence', f.licence,
        'fetched_at', f.fetched_at
    )
)"""


def _where(query: FacilityQuery, *, scan: bool = False) -> tuple[str, str, list[object]]:
    """FROM clause, WHERE clause (ordered by the paging key) and parameters for a query."""
    source, where, params, key = _clauses(query, scan=scan)
    return source, f"{where} ORDER BY {key}", params


def _clauses(query: FacilityQuery, *, scan: bool = False) -> tuple[str, str, list[object], str]:
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
    if query.municipality:
        clauses.append("f.municipality_code = ?")
        params.append(query.municipality)
    if query.eldership:
        clauses.append("f.eldership_code = ?")
        params.append(query.eldership)
    if query.q and expr is None:  # text with no word in it matches nothing
        clauses.append("0")
    if query.open_states and set(query.open_states) != set(OPEN_STATES):
        clauses.append(f"atvira_open_state(f.opening_hours) IN ({','.join('?' * len(query.open_states))})")
        params += list(query.open_states)
    where = " AND ".join(clauses) if clauses else "1"
    return source, where, params, key


def register_hours(conn: sqlite3.Connection, query: FacilityQuery) -> HoursEvaluator:
    """Give `conn` the SQL function atvira_open_state(hours) for this query's instant."""
    evaluator = HoursEvaluator(query.now)
    conn.create_function("atvira_open_state", 1, evaluator.state_name)
    return evaluator


# Features as the map and list want them: the list row plus its open state (and distance).
_MAP_FEATURE_SQL = _FEATURE_SQL.replace(
    "'opening_hours', f.opening_hours,",
    "'opening_hours', f.opening_hours,\n        'open_state', atvira_open_state(f.opening_hours),",
)
assert _MAP_FEATURE_SQL != _FEATURE_SQL

EARTH_RADIUS_M = 6_371_008.8
# Haversine on the stored doubles; parameters: lat, lat, lon (the point's).
_DISTANCE_SQL = (
    f"(2 * {EARTH_RADIUS_M} * asin(sqrt(pow(sin(radians(f.lat - ?) / 2), 2)"
    " + cos(radians(?)) * cos(radians(f.lat)) * pow(sin(radians(f.lon - ?) / 2), 2))))"
)
NEAR_START_M = 1000.0
NEAR_MAX_M = 20_100_000.0  # half the Earth's circumference: everything


def _box_around(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """The lon/lat box that holds a circle (whole-longitude when it reaches a pole or 180°)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    south, north = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    coslat = math.cos(math.radians(max(abs(south), abs(north))))
    if coslat < 1e-6 or radius_m >= EARTH_RADIUS_M * math.pi / 2:
        return -180.0, south, 180.0, north
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * coslat))
    west, east = lon - dlon, lon + dlon
    if west < -180 or east > 180:
        return -180.0, south, 180.0, north
    return west, south, east, north


def _intersect(a: tuple[float, float, float, float], b: tuple[float, float, float, float] | None):
    if b is None:
        return a
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] <= box[2] and box[1] <= box[3] else None


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _circle_covers(lon: float, lat: float, radius_m: float, bbox: tuple[float, float, float, float] | None) -> bool:
    """Whether the circle holds the whole box (its farthest corner), so growing finds nothing new."""
    if bbox is None:
        return radius_m >= NEAR_MAX_M
    west, south, east, north = bbox
    far = max(_metres(lon, lat, x, y) for x in (west, east) for y in (south, north))
    return radius_m >= far * 1.001


def query_near(conn: sqlite3.Connection, query: FacilityQuery) -> tuple[list[str], bool]:
    """The `limit` nearest matching facilities to query.near (within query.bbox and radius_m),
    nearest first, each with properties.distance_m; and whether more matched.

    The search box grows from 1 km (x4 a step) until it holds enough rows, so near-me in a city
    of a million points reads a few hundred R*Tree entries, not the whole view. Only rows
    inside the circle count, so the order is exact, not "nearest within a box".
    """
    assert query.near is not None
    register_hours(conn, query)
    lon, lat = query.near
    limit_r = min(query.radius_m or NEAR_MAX_M, NEAR_MAX_M)
    radius = min(NEAR_START_M, limit_r)
    while True:
        box = _intersect(_box_around(lon, lat, radius), query.bbox)
        rows: list = []
        if box is not None:
            source, where, params, _key = _clauses(replace(query, bbox=box, after=None))
            sql = (
                f"SELECT json_set({_MAP_FEATURE_SQL}, '$.properties.distance_m', round(d)) AS feature, d"
                f" FROM (SELECT f.*, {_DISTANCE_SQL} AS d FROM {source} WHERE {where}) AS f"
                " WHERE d <= ? ORDER BY d, f.rid LIMIT ?"
            )
            rows = conn.execute(sql, (lat, lat, lon, *params, radius, query.limit + 1)).fetchall()
        # done when enough rows are inside the circle, or the circle cannot grow or find more
        done = len(rows) > query.limit or radius >= limit_r or _circle_covers(lon, lat, radius, query.bbox)
        if done:
            return [r[0] for r in rows[: query.limit]], len(rows) > query.limit
        radius = min(radius * 4, limit_r)


def bbox_is_dense(conn: sqlite3.Connection, bbox: tuple[float, float, float, float], *, limit: int) -> bool:
    """Whether a box holds so many facilities that scanning in id order beats the R*Tree.

    The R*Tree answer must be sorted by id for keyset paging, which costs every facility in
    the box: a country-wide box at 1M facilities took 5 s for one page of 500. Scanning the
    table in id order with the box as a filter costs about limit * total / in_box rows instead.
    The two break even near in_box = sqrt(limit * total), so count at most that many (cheap,
    bounded) and pick the plan.
    """
    total = conn.execute("SELECT max(rid) FROM facilities").fetchone()[0] or 0
    cap = int(math.sqrt(max(limit, 1) * total)) + 1
    west, south, east, north = bbox
    (n,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM facilities_rtree"
        " WHERE max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ? LIMIT ?)",
        (west, east, south, north, cap),
    ).fetchone()
    return n >= cap


# Walking the table costs about a fifth of an R*Tree row (which must also be sorted by rid).
SCAN_ADVANTAGE = 5


def prefer_scan(conn: sqlite3.Connection, query: FacilityQuery, *, rows: int) -> bool:
    """Whether a page of `rows` in rid order is cheaper to find by walking the table than
    through the R*Tree.

    The R*Tree must return *every* row in the box to sort it by rid before the first page, so a
    country-wide box at 1M facilities costs seconds; walking the table in rid order stops after
    `rows` matches, which for a box holding a share p of the rows takes about rows/p steps. The
    map's cluster grid estimates p (nothing is estimated, and the R*Tree is used, without it or
    for filters it does not carry). The rows and their order are the same either way.
    """
    if query.bbox is None or query.q:
        return False
    from .clusters import estimate_rows  # clusters builds on this module

    estimate = estimate_rows(conn, query)
    if estimate is None:  # no grid, or filters it does not carry: count (bounded) instead
        return bbox_is_dense(conn, query.bbox, limit=rows)
    in_box, total = estimate
    if in_box <= 0 or total <= 0:
        return False
    return rows * total / in_box < SCAN_ADVANTAGE * in_box


def query_features(conn: sqlite3.Connection, query: FacilityQuery) -> tuple[list[str], int | None]:
    """GeoJSON Feature strings for one page, and the cursor for the next page (None at the end)."""
    register_hours(conn, query)
    source, where, params = _where(query, scan=prefer_scan(conn, query, rows=query.limit + 1))
    sql = f"SELECT {_MAP_FEATURE_SQL} AS feature, f.rid AS rid FROM {source} WHERE {where} LIMIT ?"
    rows = conn.execute(sql, (*params, query.limit + 1)).fetchall()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_after = rows[-1][1] if more and rows else None
    return [r[0] for r in rows], next_after


def iter_rows(
    conn: sqlite3.Connection, query: FacilityQuery, *, batch: int = 5000, select: str = "f.*"
) -> Iterator[sqlite3.Row]:
    """Every matching facilities row, page by page (for exports): memory stays flat.

    `select` lets an export have SQLite build its columns (it must include `f.rid` last, the cursor).
    """
    after = query.after
    if query.open_states:
        register_hours(conn, query)
    scan = prefer_scan(conn, query, rows=batch)
    while True:
        source, where, params = _where(_with(query, after=after), scan=scan)
        rows = conn.execute(f"SELECT {select} FROM {source} WHERE {where} LIMIT ?", (*params, batch)).fetchall()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1][-1] if select != "f.*" else rows[-1]["rid"]


def _with(query: FacilityQuery, **changes: object) -> FacilityQuery:
    return replace(query, **changes)  # type: ignore[arg-type]


def feature_collection(features: list[str], *, next_url: str | None, truncated: bool | None = None) -> str:
    """Join pre-rendered features into an RFC 7946 FeatureCollection (no CRS member).

    `truncated` says more rows matched than were returned (with or without a `next` link)."""
    links = f',"links":[{{"rel":"next","href":{_json_str(next_url)}}}]' if next_url else ',"links":[]'
    nxt = f',"next":{_json_str(next_url)}' if next_url else ',"next":null'
    return (
        '{"type":"FeatureCollection","numberReturned":'
        + str(len(features))
        + nxt
        + f',"truncated":{"true" if (truncated if truncated is not None else bool(next_url)) else "false"}'
        + links
        + ',"features":['
        + ",".join(features)
        + "]}"
    )


def _json_str(value: str) -> str:
    return json.dumps(value)
