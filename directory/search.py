"""Facility queries: bbox (R*Tree), category, features, diacritic-free text, keyset paging.

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

from .errors import BadRequest
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


def parse_query(args: Mapping[str, str], *, default_limit: int = 500, max_limit: int = 5000) -> FacilityQuery:
    """Turn request parameters into a FacilityQuery; a BadRequest names the parameter at fault."""
    known = {"bbox", "category", "feature", "features", "q", "status", "municipality", "eldership", "limit", "after"}
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
    return FacilityQuery(
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


# The properties every list row carries; the detail view adds sources and extra.
_FEATURE_SQL = """json_object(
    'type', 'Feature',
    'id', f.id,
    'geometry', CASE WHEN f.lon IS NULL THEN NULL
                     ELSE json_object('type', 'Point', 'coordinates', json_array(f.lon, f.lat)) END,
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


def _where(query: FacilityQuery, *, dense_bbox: bool = False) -> tuple[str, str, list[object]]:
    """FROM clause, WHERE clause and parameters for a query (dense_bbox: see bbox_is_dense)."""
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
    elif query.bbox is not None and dense_bbox:
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
    where = " AND ".join(clauses) if clauses else "1"
    return f"{source}", f"{where} ORDER BY {key}", params


def query_features(conn: sqlite3.Connection, query: FacilityQuery) -> tuple[list[str], int | None]:
    """GeoJSON Feature strings for one page, and the cursor for the next page (None at the end)."""
    dense = query.bbox is not None and not query.q and bbox_is_dense(conn, query.bbox, limit=query.limit)
    source, where, params = _where(query, dense_bbox=dense)
    sql = f"SELECT {_FEATURE_SQL} AS feature, f.rid AS rid FROM {source} WHERE {where} LIMIT ?"
    rows = conn.execute(sql, (*params, query.limit + 1)).fetchall()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_after = rows[-1][1] if more and rows else None
    return [r[0] for r in rows], next_after


def iter_rows(conn: sqlite3.Connection, query: FacilityQuery, *, batch: int = 5000) -> Iterator[sqlite3.Row]:
    """Every matching facilities row, page by page (for exports): memory stays flat."""
    after = query.after
    dense = query.bbox is not None and not query.q and bbox_is_dense(conn, query.bbox, limit=batch)
    while True:
        source, where, params = _where(_with(query, after=after), dense_bbox=dense)
        rows = conn.execute(f"SELECT f.* FROM {source} WHERE {where} LIMIT ?", (*params, batch)).fetchall()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1]["rid"]


def _with(query: FacilityQuery, **changes: object) -> FacilityQuery:
    return replace(query, **changes)  # type: ignore[arg-type]


def feature_collection(features: list[str], *, next_url: str | None) -> str:
    """Join pre-rendered features into an RFC 7946 FeatureCollection (no CRS member)."""
    links = f',"links":[{{"rel":"next","href":{_json_str(next_url)}}}]' if next_url else ',"links":[]'
    nxt = f',"next":{_json_str(next_url)}' if next_url else ',"next":null'
    return (
        '{"type":"FeatureCollection","numberReturned":'
        + str(len(features))
        + nxt
        + links
        + ',"features":['
        + ",".join(features)
        + "]}"
    )


def _json_str(value: str) -> str:
    return json.dumps(value)
