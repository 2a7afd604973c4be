"""Running facility queries: one keyset page of GeoJSON features, every matching row for an
export, and nearest-first from a point.

The query itself is a value (`query.FacilityQuery`, compiled by `query.compile_where`); the
features are built by SQLite (`features.feature_sql`); the plan (R*Tree or table walk) is chosen
by `planner.prefer_scan` from the map grid's estimate. Nothing here loads the whole table: every
query is bounded by `limit` and resumes after the last row it returned.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

from . import clock, open_now, storememo
from .clusters import estimate_rows
from .features import MAP_PROPERTIES, feature_sql, page_feature_sql
from .hours import STATES as OPEN_STATES
from .model import STATUSES
from .planner import BOX_SCAN_ADVANTAGE, SCAN_ADVANTAGE, prefer_scan
from .query import NEAR_MAX_M, FacilityQuery, compile_where, ordered_where, register_hours, with_changes
from .store import MAP_BAND_LAT, MAP_BAND_SQL, MAP_CELL_LAT, MAP_CELL_LON, MAP_CELL_ROWS, MAP_CELL_SQL

MAP_FEATURE_SQL = feature_sql(MAP_PROPERTIES)
_PAGE_FEATURE_SQL = page_feature_sql(MAP_FEATURE_SQL)


def plan_scan(conn: sqlite3.Connection, query: FacilityQuery, *, rows: int) -> bool:
    """Whether to walk the table (True) or use the R*Tree for a page of `rows` (see planner)."""
    if query.bbox is None or query.q:
        return False
    return prefer_scan(conn, query, rows=rows, estimate=estimate_rows(conn, query))


EARTH_RADIUS_M = 6_371_008.8
# Haversine on the stored doubles; parameters: lat, lat, lon (the point's).
_DISTANCE_SQL = (
    f"(2 * {EARTH_RADIUS_M} * asin(sqrt(pow(sin(radians(f.lat - ?) / 2), 2)"
    " + cos(radians(?)) * cos(radians(f.lat)) * pow(sin(radians(f.lon - ?) / 2), 2))))"
)
NEAR_START_M = 1000.0


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
            source, where, params, _key = compile_where(with_changes(query, bbox=box, after=None))
            sql = (
                f"SELECT json_set({MAP_FEATURE_SQL}, '$.properties.distance_m', round(d)) AS feature, d"
                f" FROM (SELECT f.*, {_DISTANCE_SQL} AS d FROM {source} WHERE {where}) AS f"
                " WHERE d <= ? ORDER BY d, f.rid LIMIT ?"
            )
            rows = conn.execute(sql, (lat, lat, lon, *params, radius, query.limit + 1)).fetchall()
        # done when enough rows are inside the circle, or the circle cannot grow or find more
        done = len(rows) > query.limit or radius >= limit_r or _circle_covers(lon, lat, radius, query.bbox)
        if done:
            return [r[0] for r in rows[: query.limit]], len(rows) > query.limit
        radius = min(radius * 4, limit_r)


ANSWER_MAX_BYTES = 8_000_000  # a page ends early (its next link resumes) beyond this many bytes of features


def query_features(conn: sqlite3.Connection, query: FacilityQuery, *,
                   max_bytes: int = ANSWER_MAX_BYTES) -> tuple[list[str], int | None]:
    """GeoJSON Feature strings for one page, and the cursor for the next page (None at the end).

    A page holds at most `query.limit` rows and about `max_bytes` of features: rows with long
    texts end it early, and its cursor resumes after the last row it holds."""
    register_hours(conn, query)
    source, where, params = ordered_where(query, scan=plan_scan(conn, query, rows=query.limit + 1))
    sql = f"SELECT {MAP_FEATURE_SQL} AS feature, f.rid AS rid FROM {source} WHERE {where} LIMIT ?"
    rows = conn.execute(sql, (*params, query.limit + 1)).fetchall()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    size = 0
    for i, row in enumerate(rows):
        size += len(row[0])
        if size > max_bytes and i > 0:  # always at least one row, so paging moves on
            rows, more = rows[:i], True
            break
    next_after = rows[-1][1] if more and rows else None
    return [r[0] for r in rows], next_after


class Page(NamedTuple):
    text: bytes  # the page's features joined with ',', as UTF-8 (SQLite's own bytes: no decode)
    count: int
    next_after: int | None  # the cursor of the next page (None at the end)
    # Unix time until which every open_state in the page holds (None: no row has hours); an
    # answer may be cached that long. A row whose state came from the per-row fallback makes it
    # "now + FALLBACK_FRESH".
    fresh_until: float | None


FALLBACK_FRESH = 60.0

# A page's freshness in one aggregate: the earliest `until` of its rows with hours, a row whose
# hours the state table lacks (the per-row fallback) counting as "now + FALLBACK_FRESH" (the
# parameter `{soon}`). One aggregate step a row instead of two (min until, max fallback): each
# costs ~300 instructions a row, ~3% of a 500-row page.
_FRESH_SQL = "min(CASE WHEN f.opening_hours IS NOT NULL THEN coalesce(s.until, {soon}) END)"

# A page's rows joined into one text, with what the answer's headers need. `{page}` is the
# statement choosing the page's rids in order (limit + 1 of them, to know whether more follow).
_PAGE_SQL = (
    "WITH page AS MATERIALIZED ({page})"
    f" SELECT (SELECT count(*) FROM page), CAST(group_concat({_PAGE_FEATURE_SQL}, ',') AS BLOB), max(p.rid),"
    f" {_FRESH_SQL.format(soon='?')}"
    f" FROM (SELECT rid FROM page LIMIT ?) AS p CROSS JOIN facilities f ON f.rid = p.rid"
    f" LEFT JOIN {open_now.TABLE} s ON s.hours = f.opening_hours"
)

# The rids of a plain bbox page from the R*Tree alone (see _box_page). ?1..?4: west, east,
# south, north; ?5: after; ?6: the highest rid to consider; ?7: limit + 1. A facility whose
# float32 box lies inside the query box is inside it (the R*Tree rounds outward); only the few
# on the box's edge are checked against the stored doubles. "removed" rows come from a
# partial index holding only them (facilities_removed).
_BOX_RIDS_SQL = (
    "SELECT r.rid AS rid FROM facilities_rtree r"
    " WHERE r.max_lon >= ?1 AND r.min_lon <= ?2 AND r.max_lat >= ?3 AND r.min_lat <= ?4"
    " AND r.rid > ?5 AND r.rid <= ?6"
    " AND ((r.min_lon >= ?1 AND r.max_lon <= ?2 AND r.min_lat >= ?3 AND r.max_lat <= ?4)"
    " OR (SELECT f.lon BETWEEN ?1 AND ?2 AND f.lat BETWEEN ?3 AND ?4 FROM facilities f WHERE f.rid = r.rid))"
    "{removed} ORDER BY r.rid LIMIT ?7"
)
_NOT_REMOVED = " AND r.rid NOT IN (SELECT rid FROM facilities WHERE status = 'removed')"
_ALL_STATUSES = frozenset(STATUSES)
_NOT_REMOVED_STATUSES = frozenset(STATUSES) - {"removed"}

_BOX_PAGE_SQL = {every: _PAGE_SQL.format(page=_BOX_RIDS_SQL.format(removed="" if every else _NOT_REMOVED))
                 for every in (False, True)}


def _rid_bound(conn: sqlite3.Connection, estimate: tuple[int, int] | None, *, after: int, want: int) -> int | None:
    """The rid below which a box's first `want` rows after `after` are predicted to lie (from
    the grid's estimate: rows in the box, rows anywhere), or None when no bound helps."""
    if estimate is None or estimate[0] <= 2 * want or estimate[1] <= 0:
        return None
    # the highest rid, kept by a reader until the store changes (storememo)
    last = storememo.kept(conn, "max_rid", lambda: conn.execute("SELECT max(rid) FROM facilities").fetchone()[0] or 0)
    bound = after + RID_REACH * want * max(last, 1) // estimate[0] + 1
    return bound if bound < last else None


# A bbox page's R*Tree answer must be sorted by rid before LIMIT: 8,575 rows in a dense box at
# 1M facilities, most of the page's cost. The rows of a box are spread over the rid range, so
# the first `limit + 1` of them lie below a rid that the map grid's estimate predicts; filtering
# by it first sorts a few hundred rows. Reach this many times further than the estimate needs.
RID_REACH = 3


def _plain_box(query: FacilityQuery) -> bool:
    """A bbox page with no other filter than the default statuses (the map's request)."""
    return (query.bbox is not None and not query.q and not query.categories and not query.features
            and query.within is None and not query.municipality and not query.eldership and not query.sectors
            and (not query.open_states or set(query.open_states) == set(OPEN_STATES))
            and set(query.statuses) in (_ALL_STATUSES, _NOT_REMOVED_STATUSES))


def _box_page(conn: sqlite3.Connection, query: FacilityQuery, estimate: tuple[int, int] | None, soon: float) -> tuple:
    """The page row of _PAGE_SQL for a plain bbox query, its rids read from the R*Tree alone.

    The same rows as the general statement (a test compares them): first only the rids up to a
    bound predicted from `estimate` (rows in the box, rows anywhere); when fewer than limit + 1
    fall below it, again without the bound."""
    assert query.bbox is not None
    west, south, east, north = query.bbox
    after = query.after if query.after is not None else -1
    sql = _BOX_PAGE_SQL[set(query.statuses) == _ALL_STATUSES]
    want = query.limit + 1
    top = 2**63 - 1
    if (bound := _rid_bound(conn, estimate, after=after, want=want)) is not None:
        row = conn.execute(sql, (west, east, south, north, after, bound, want, soon, query.limit)).fetchone()
        if row[0] >= want:
            return row
    return conn.execute(sql, (west, east, south, north, after, top, want, soon, query.limit)).fetchone()


# A plain bbox page from the map-cell index (store.MAP_CELL_SQL) when the box spans at most this
# many cells (a 10 x 10 km box in Lithuania); a larger box goes to the R*Tree (_box_page).
MAX_CELLS = 400
_CELL = MAP_CELL_SQL.format(t="c.")
# The rids of a plain bbox page (rid order) from facilities_map_cell: each cell's rows from a rid
# on, checked on the exact doubles the index holds. ?1: the cells (JSON); ?2, ?3: after, the
# highest rid to consider; ?4..?7: west, east, south, north. `{removed}`: the status filter.
_CELL_RIDS_SQL = (
    "SELECT c.rid AS rid FROM facilities c INDEXED BY facilities_map_cell"
    f" WHERE {_CELL} IN (SELECT value FROM json_each(?1)) AND c.rid > ?2 AND c.rid <= ?3"
    " AND c.lon BETWEEN ?4 AND ?5 AND c.lat BETWEEN ?6 AND ?7{removed}"
)
# One page (?8 rows at most) joined into one text, as _PAGE_SQL, without materializing its rids
# (?9: "now + FALLBACK_FRESH"): whether more rows follow is asked afterwards (_CELL_MORE_SQL),
# only when the page is full.
def _joined_page_sql(rids_sql: str) -> str:
    """The page statement over a rids statement (the cell or the band one): its rows joined as _PAGE_SQL joins them."""
    return (
        f"SELECT count(*), CAST(group_concat({_PAGE_FEATURE_SQL}, ',') AS BLOB), max(p.rid),"
        f" {_FRESH_SQL.format(soon='?9')}"
        f" FROM ({rids_sql} ORDER BY c.rid LIMIT ?8) AS p CROSS JOIN facilities f ON f.rid = p.rid"
        f" LEFT JOIN {open_now.TABLE} s ON s.hours = f.opening_hours"
    )


_CELL_PAGE_SQL = _joined_page_sql(_CELL_RIDS_SQL)
_CELL_MORE_SQL = f"SELECT EXISTS ({_CELL_RIDS_SQL})"
_CELL_NOT_REMOVED = " AND c.status <> 'removed'"
# The same page from facilities_map_band (store.MAP_BAND_SQL): each band's rows in the box's lon
# range, the lat and rid conditions checked on the index's doubles. ?1: the bands (JSON); the
# other parameters as _CELL_PAGE_SQL's, ?3 unused (it is read without a rid bound). Neither
# statement restates the partial indexes' "lon/lat IS NOT NULL": the BETWEENs imply it (SQLite
# sees that, and the two checks cost ~0.1M instructions a sparse page).
_BAND = MAP_BAND_SQL.format(t="c.")
_BAND_PAGE_SQL = _joined_page_sql(
    "SELECT c.rid AS rid FROM facilities c INDEXED BY facilities_map_band"
    f" WHERE {_BAND} IN (SELECT value FROM json_each(?1)) AND c.lon BETWEEN ?4 AND ?5"
    " AND c.lat BETWEEN ?6 AND ?7 AND c.rid > ?2{removed}")
# The three statements formatted once, by whether every status is asked for (False: the removed
# left out): a page's SQL is ~3 KB of text, which sqlite3's statement cache hashes and compares
# on every execute unless it is the same str object.
_CELL_SQL = {every: tuple(sql.format(removed="" if every else _CELL_NOT_REMOVED)
                          for sql in (_CELL_PAGE_SQL, _CELL_MORE_SQL, _BAND_PAGE_SQL)) for every in (False, True)}
# A seek into either index costs about as much as reading this many of its entries (callgrind at
# 1M: ~5,000 instructions a seek, 1,000-1,200 an entry): _bands_cheaper's weight.
SEEK_ENTRIES = 4


def map_cells(bbox: tuple[float, float, float, float]) -> list[int] | None:
    """The map cells (store.MAP_CELL_SQL) a box spans, or None when more than MAX_CELLS."""
    west, south, east, north = bbox
    x0, x1 = int((west + 180.0) * MAP_CELL_LON), int((east + 180.0) * MAP_CELL_LON)
    y0, y1 = int((south + 90.0) * MAP_CELL_LAT), int((north + 90.0) * MAP_CELL_LAT)
    if (x1 - x0 + 1) * (y1 - y0 + 1) > MAX_CELLS:
        return None
    return [x * MAP_CELL_ROWS + y for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def map_bands(bbox: tuple[float, float, float, float]) -> range:
    """The map bands (store.MAP_BAND_SQL) a box spans."""
    return range(int((bbox[1] + 90.0) * MAP_BAND_LAT), int((bbox[3] + 90.0) * MAP_BAND_LAT) + 1)


def _bands_cheaper(bbox: tuple[float, float, float, float], cells: list[int], bands: range, rows: int) -> bool:
    """Whether the box's rows cost less to read by band (a seek per band, the rows of its top and
    bottom bands outside the box) than by cell (a seek per cell, the rows of its edge cells
    outside the box), the `rows` in the box taken as spread evenly over it."""
    west, south, east, north = bbox
    width, height = max(east - west, 1e-9), max(north - south, 1e-9)
    cell_area = len(cells) / (MAP_CELL_LON * MAP_CELL_LAT)  # map_cells: every cell of the box's range
    by_cell = len(cells) * SEEK_ENTRIES + rows * min(cell_area / (width * height), 1e6)
    by_band = len(bands) * SEEK_ENTRIES + rows * min(len(bands) / MAP_BAND_LAT / height, 1e6)
    return by_band < by_cell


def _cell_page(conn: sqlite3.Connection, query: FacilityQuery, estimate: tuple[int, int] | None,
               cells: list[int], soon: float) -> tuple:
    """_box_page's row for a box of at most MAX_CELLS cells, from the map-cell index, or from
    the map-band index when no rid bound applies (every row in the box is read) and its bands
    cost less to read than its cells (_bands_cheaper).

    The same rid bound first (its first `limit` rows are the page when that many fall below
    it), then without it; a full page asks whether any row follows its last rid (by cell: each
    cell's rows from that rid on)."""
    assert query.bbox is not None
    west, south, east, north = query.bbox
    after = query.after if query.after is not None else -1
    page_sql, more_sql, band_sql = _CELL_SQL[set(query.statuses) == _ALL_STATUSES]
    keys = json.dumps(cells)
    top = 2**63 - 1
    row = None
    if (bound := _rid_bound(conn, estimate, after=after, want=query.limit + 1)) is not None:
        row = conn.execute(page_sql, (keys, after, bound, west, east, south, north, query.limit, soon)).fetchone()
        if row[0] < query.limit:
            row = None
    elif estimate is not None and _bands_cheaper(query.bbox, cells, bands := map_bands(query.bbox), estimate[0]):
        row = conn.execute(band_sql,
                           (json.dumps(list(bands)), after, top, west, east, south, north, query.limit, soon)).fetchone()
    if row is None:
        row = conn.execute(page_sql, (keys, after, top, west, east, south, north, query.limit, soon)).fetchone()
    found, text, last_rid, until = row
    if found == query.limit and found and conn.execute(
            more_sql, (keys, last_rid, top, west, east, south, north)).fetchone()[0]:
        found += 1
    return found, text, last_rid, until


def query_page(conn: sqlite3.Connection, query: FacilityQuery) -> Page:
    """One page as text: the page's features joined with ',', how many, and the next cursor.

    The same answer as query_features, assembled inside SQLite from each facility's ready
    feature text (features.refresh_ready) and the per-connection open-state table (open_now):
    Python handles one string per page, never a row, and gets it as bytes (what the answer
    sends). The rids are chosen first (the R*Tree answer is sorted before LIMIT, so building
    text there would build it for every row in the box), then only the page's rows are read and
    joined, in rid order (CROSS JOIN keeps the page as the outer loop, so group_concat sees the
    rows in that order).
    """
    register_hours(conn, query)
    open_now.prepare(conn, query.now)
    # the one clock (whole seconds), as the answer's max-age is counted from: see _FRESH_SQL
    soon = (query.now or clock.now()).timestamp() + FALLBACK_FRESH
    plain = _plain_box(query)
    if query.bbox is not None and not query.q:
        estimate = estimate_rows(conn, query)
        scan = prefer_scan(conn, query, rows=query.limit + 1, estimate=estimate,
                           advantage=BOX_SCAN_ADVANTAGE if plain else SCAN_ADVANTAGE)
    else:
        estimate, scan = None, False
    cells = map_cells(query.bbox) if plain and not scan and query.bbox is not None else None
    if cells is not None:
        found, text, last, until = _cell_page(conn, query, estimate, cells, soon)
    elif not scan and plain:
        found, text, last, until = _box_page(conn, query, estimate, soon)
    else:
        source, where, params = ordered_where(query, scan=scan)
        found, text, last, until = conn.execute(
            _PAGE_SQL.format(page=f"SELECT f.rid AS rid FROM {source} WHERE {where} LIMIT ?"),
            (*params, query.limit + 1, soon, query.limit)).fetchone()
    shown = min(found, query.limit)
    return Page(text or b"", shown, (last if found > query.limit and shown else None), until)


def iter_rows(
    conn: sqlite3.Connection, query: FacilityQuery, *, batch: int = 5000, select: str = "f.*"
) -> Iterator[sqlite3.Row]:
    """Every matching facilities row, page by page (for exports): memory stays flat.

    `select` lets an export have SQLite build its columns (it must include `f.rid` last, the cursor).
    """
    after = query.after
    if query.open_states:
        register_hours(conn, query)
    scan = plan_scan(conn, query, rows=batch)
    while True:
        source, where, params = ordered_where(with_changes(query, after=after), scan=scan)
        rows = conn.execute(f"SELECT {select} FROM {source} WHERE {where} LIMIT ?", (*params, batch)).fetchall()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1][-1] if select != "f.*" else rows[-1]["rid"]
