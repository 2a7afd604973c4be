"""Counts on a grid, for the map's low zooms where a view holds more points than a browser can draw.

At a million facilities, grouping the R*Tree rows of a country-wide view on the fly takes most of
a second (two with a category join), so the grid is precomputed after every ingest into
`map_grid`: per zoom level, per cell, per category (and '*' for all, and 'feature:<name>' for
the places with one feature, and 'hours:<opening_hours>' per distinct hours string), a count and the sums of
the positions (cluster bubbles sit on their points' mean, not on the cell's corner). The finest
level is grouped from the facilities once; each coarser level is summed from the one below
(cells nest exactly: a cell of level z is four cells of level z+1).

Cells are 1/4 of a 256-px Web Mercator tile (64 px on screen), so a view of ~1200x800 px holds
about 250 cells whatever its zoom. Filters the grid does not carry (features, text, open now,
area, status, or two of category / feature / open now together) are answered by the same
grouping on the fly: correct, slower.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import replace

from . import storememo
from .errors import BadRequest
from .hours import HoursEvaluator
from .query import DEFAULT_STATUSES, FacilityQuery, compile_where, register_hours
from .store import get_meta, set_meta

GRID_MIN_ZOOM = 0
MAX_ZOOM = 30  # the deepest map zoom a cluster request may name
GRID_MAX_ZOOM = 13  # above this a view is small enough to group on the fly
CELLS_PER_TILE = 4
# Bounded cost (issue 14): a view of at most this many cells (a 4K screen holds ~2,000; the whole
# world at zoom 5 is 16,384), and a live grouping reads at most LIVE_ROW_CEILING rows (the answer
# then says "truncated": the counts are a lower bound; zoom in or filter less).
MAX_CELLS = 16_384
LIVE_ROW_CEILING = 200_000
EXPENSIVE_LIVE_ROWS = 20_000  # a live grouping over more rows than this takes an expensive slot

# The table is created by a migration in store.MIGRATIONS ("map_grid").


def cell_deg(zoom: int) -> float:
    return 360.0 / (2**zoom) / CELLS_PER_TILE


def merc_y_deg(lat: float) -> float:
    """Web Mercator y in degree units (-180..180 over the map's latitude range)."""
    lat = max(-85.05112878, min(85.05112878, lat))
    return math.degrees(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))


# The same in SQL (SQLite's math functions), clamped like the Python version.
_MERC_SQL = "degrees(ln(tan(pi() / 4 + radians(max(-85.05112878, min(85.05112878, {lat}))) / 2)))"


def refresh_map_data(conn: sqlite3.Connection) -> int:
    """Everything the map derives from the facilities after an ingest: the grid and the list of
    sources to credit (meta "map_sources"). Call inside the writer's transaction."""
    sources = [list(r) for r in conn.execute(
        "SELECT DISTINCT source, licence FROM source_records WHERE removed_at IS NULL ORDER BY source, licence")]
    if not sources:
        sources = [list(r) for r in conn.execute("SELECT DISTINCT source, licence FROM facilities ORDER BY 1, 2")]
    set_meta(conn, "map_sources", sources)
    return rebuild_grid(conn)


def rebuild_grid(conn: sqlite3.Connection) -> int:
    """Recompute map_grid from the facilities (call inside the writer's transaction).

    Counts the facilities a map shows by default (every status but removed). Returns the rows written.

    Each level is summed into a temporary table keyed (category, gx, gy) by an upsert: one
    probe of a small b-tree per row, where GROUP BY sorted every row (100k facilities: 400k keys
    at the finest level, 290k cells below it). The levels are then written into map_grid from
    zoom 0 up, each in key order: appended, never inserted between rows already written.
    """
    conn.execute("DELETE FROM map_grid")
    top = GRID_MAX_ZOOM
    cell = cell_deg(top)
    merc = _MERC_SQL.format(lat="f.lat")
    statuses = ",".join(f"'{s}'" for s in DEFAULT_STATUSES)
    # the cells are computed once (trigonometry for every row is the expensive part), then
    # summed; in cell order, so each key's upserts below walk its cells in order (100k: a third
    # cheaper than in the facilities' order, for a sort of the points)
    conn.execute("DROP TABLE IF EXISTS temp.grid_points")
    conn.execute(
        f"CREATE TEMP TABLE grid_points AS SELECT CAST((f.lon + 180) / {cell!r} AS INTEGER) AS gx,"
        f" CAST(({merc} + 180) / {cell!r} AS INTEGER) AS gy, f.lon, f.lat, f.categories, f.features,"
        f" f.opening_hours FROM facilities f WHERE f.lon IS NOT NULL AND f.status IN ({statuses}) ORDER BY 1, 2"
    )
    levels = range(top, GRID_MIN_ZOOM - 1, -1)
    for z in levels:
        conn.execute(f"DROP TABLE IF EXISTS temp.grid_{z}")
        conn.execute(f"CREATE TEMP TABLE grid_{z} (category TEXT, gx INTEGER, gy INTEGER, n INTEGER, sum_lon REAL,"
                     " sum_lat REAL, PRIMARY KEY (category, gx, gy)) WITHOUT ROWID")
    add = ("WHERE true ON CONFLICT DO UPDATE SET n = n + excluded.n, sum_lon = sum_lon + excluded.sum_lon,"
           " sum_lat = sum_lat + excluded.sum_lat")  # WHERE: the upsert's parsing needs it after a join
    # every facility counts under '*', each of its categories, each feature it has ('yes' or
    # 'limited': a parent's "changing table" across the country) and its opening-hours string
    # ('hours:' alone: none given), so "open now" sums the strings open at the request's instant
    conn.execute(
        f"""INSERT INTO grid_{top}(category, gx, gy, n, sum_lon, sum_lat)
        SELECT key, gx, gy, 1, lon, lat FROM (
            SELECT '*' AS key, gx, gy, lon, lat FROM grid_points
            UNION ALL SELECT c.value, gx, gy, lon, lat FROM grid_points AS p, json_each(p.categories) AS c
            UNION ALL SELECT 'feature:' || ft.key, gx, gy, lon, lat FROM grid_points AS p, json_each(p.features) AS ft
                WHERE ft.value IN ('yes', 'limited')
            UNION ALL SELECT 'hours:' || coalesce(opening_hours, ''), gx, gy, lon, lat FROM grid_points
        ) {add}"""
    )
    for z in levels[1:]:  # cells nest: a cell of level z is four of level z + 1
        conn.execute(f"INSERT INTO grid_{z}(category, gx, gy, n, sum_lon, sum_lat)"
                     f" SELECT category, gx >> 1, gy >> 1, n, sum_lon, sum_lat FROM grid_{z + 1} {add}")
    for z in reversed(levels):
        conn.execute(f"INSERT INTO map_grid(zoom, category, gx, gy, n, sum_lon, sum_lat)"
                     f" SELECT {z}, category, gx, gy, n, sum_lon, sum_lat FROM grid_{z} ORDER BY category, gx, gy")
        conn.execute(f"DROP TABLE temp.grid_{z}")
    conn.execute("DROP TABLE temp.grid_points")
    return conn.execute("SELECT count(*) FROM map_grid").fetchone()[0]


# What a facility adds to the grid: its position and the keys it counts under (see rebuild_grid),
# or None when the map does not show it (no position, or removed).
GridPoint = tuple[float, float, tuple[str, ...]]


def grid_point(values: dict) -> GridPoint | None:
    """A facility's grid contribution from its decoded values (lon, lat, status, categories,
    features, opening_hours), the same keys rebuild_grid's SQL groups it under."""
    if values.get("lon") is None or values.get("lat") is None or values.get("status") not in DEFAULT_STATUSES:
        return None
    keys = ["*", *dict.fromkeys(values.get("categories") or ())]
    keys += [f"feature:{k}" for k, v in (values.get("features") or {}).items() if v in ("yes", "limited")]
    keys.append("hours:" + (values.get("opening_hours") or ""))
    return float(values["lon"]), float(values["lat"]), tuple(keys)


def update_grid(conn: sqlite3.Connection, changes: list[tuple[GridPoint | None, GridPoint | None]]) -> int:
    """Apply (before, after) grid contributions of changed facilities to map_grid, every zoom:
    subtract the old, add the new, drop cells left empty. Equals rebuild_grid's result (counts
    exactly; position sums to rounding). Call inside the writer's transaction; returns cells touched."""
    top = GRID_MAX_ZOOM
    cell = cell_deg(top)
    merc = _MERC_SQL.format(lat="?")
    deltas: dict[tuple[int, str, int, int], list[float]] = {}
    for before, after in changes:
        for point, sign in ((before, -1), (after, 1)):
            if point is None:
                continue
            lon, lat, keys = point
            # the cell in SQL, exactly as rebuild_grid computes it (same functions, same rounding)
            gx, gy = conn.execute(
                f"SELECT CAST((? + 180) / {cell!r} AS INTEGER), CAST(({merc} + 180) / {cell!r} AS INTEGER)",
                (lon, lat)).fetchone()
            for z in range(top, GRID_MIN_ZOOM - 1, -1):
                shift = top - z
                for key in keys:
                    d = deltas.setdefault((z, key, gx >> shift, gy >> shift), [0, 0.0, 0.0])
                    d[0] += sign
                    d[1] += sign * lon
                    d[2] += sign * lat
    touched = [(k, d) for k, d in deltas.items() if d[0] or d[1] or d[2]]
    conn.executemany(
        "INSERT INTO map_grid(zoom, category, gx, gy, n, sum_lon, sum_lat) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(zoom, category, gx, gy) DO UPDATE SET n = n + excluded.n,"
        " sum_lon = sum_lon + excluded.sum_lon, sum_lat = sum_lat + excluded.sum_lat",
        [(*k, *d) for k, d in touched])
    conn.executemany("DELETE FROM map_grid WHERE zoom = ? AND category = ? AND gx = ? AND gy = ? AND n <= 0",
                     [k for k, _d in touched])
    return len(touched)


def refresh_map_sources(conn: sqlite3.Connection, candidates: list[tuple[str, str]]) -> None:
    """Keep meta "map_sources" (the sources the map credits) after a small change: the pairs
    still live among the stored list and `candidates` (the changed records' source, licence),
    each checked by one index probe instead of a scan of every record."""
    stored = [tuple(p) for p in (get_meta(conn, "map_sources") or [])]
    pairs = sorted(set(stored) | set(candidates))
    live = [list(p) for p in pairs if conn.execute(
        "SELECT 1 FROM source_records WHERE source = ? AND licence = ? AND removed_at IS NULL LIMIT 1", p).fetchone()]
    if not live:  # a store without source records credits its facilities' sources (as refresh_map_data)
        live = [list(r) for r in conn.execute("SELECT DISTINCT source, licence FROM facilities ORDER BY 1, 2")]
    set_meta(conn, "map_sources", live)


def _grid_keys(conn: sqlite3.Connection, query: FacilityQuery) -> list[str]:
    """The map_grid categories whose sum answers the query."""
    if query.categories:
        return [query.categories[0]]
    if query.features:
        return ["feature:" + query.features[0]]
    if query.open_states:
        # zoom 0 has one cell, so its rows are the distinct hours strings
        evaluator = HoursEvaluator(query.now)
        wanted = set(query.open_states)
        keys = [r[0] for r in conn.execute(
            "SELECT category FROM map_grid WHERE zoom = ? AND category >= 'hours:' AND category < 'hours;'",
            (GRID_MIN_ZOOM,))]
        return [k for k in keys if evaluator.state_name(k[6:] or None) in wanted]
    return ["*"]


def _grid_fits(query: FacilityQuery, zoom: int) -> bool:
    """Whether the precomputed grid answers this query exactly: at most one of a category, a
    feature or an opening-state filter, and none of the filters it does not carry."""
    return (
        zoom <= GRID_MAX_ZOOM
        and len(query.categories) + len(query.features) + (1 if query.open_states else 0) <= 1
        and not query.q
        and not query.municipality
        and not query.eldership
        and not query.sectors
        and query.within is None
        and set(query.statuses) == set(DEFAULT_STATUSES)
    )


def _cell_range(bbox: tuple[float, float, float, float], cell: float) -> tuple[int, int, int, int]:
    west, south, east, north = bbox
    return (
        math.floor((west + 180) / cell),
        math.floor((merc_y_deg(south) + 180) / cell),
        math.floor((east + 180) / cell),
        math.floor((merc_y_deg(north) + 180) / cell),
    )


def clusters(conn: sqlite3.Connection, query: FacilityQuery, *, zoom: int) -> dict:
    """Grid cells with counts for the query's bbox at a map zoom: {zoom, total, source, clusters}.

    Each cluster is [lon, lat, count] at its points' mean position. `source` says whether the
    precomputed grid ("grid") or an on-the-fly grouping ("live") answered.
    """
    level = max(GRID_MIN_ZOOM, min(zoom, MAX_ZOOM))
    bbox = query.bbox or (-180.0, -85.0, 180.0, 85.0)
    truncated = False
    if _grid_fits(query, level) and _has_grid(conn):
        cell = cell_deg(level)
        x0, y0, x1, y1 = _cell_range(bbox, cell)
        keys = _grid_keys(conn, query)
        rows = conn.execute(
            "SELECT sum(sum_lon) / sum(n), sum(sum_lat) / sum(n), sum(n) FROM map_grid"
            " WHERE zoom = ? AND category IN (SELECT value FROM json_each(?))"
            " AND gx BETWEEN ? AND ? AND gy BETWEEN ? AND ? GROUP BY gx, gy",
            (level, json.dumps(keys), x0, x1, y0, y1),
        ).fetchall()
        source = "grid"
    else:
        cell = cell_deg(level)
        register_hours(conn, query)
        src, where, params, _key = compile_where(replace(query, bbox=bbox, after=None, near=None))
        merc = _MERC_SQL.format(lat="p.lat")
        rows = conn.execute(
            f"SELECT avg(p.lon), avg(p.lat), count(*) FROM"
            f" (SELECT f.lon, f.lat FROM {src} WHERE {where} LIMIT ?) AS p"
            f" GROUP BY CAST((p.lon + 180) / {cell!r} AS INTEGER), CAST(({merc} + 180) / {cell!r} AS INTEGER)",
            (*params, LIVE_ROW_CEILING + 1),
        ).fetchall()
        source = "live"
        truncated = sum(r[2] for r in rows) > LIVE_ROW_CEILING
    out = [[round(r[0], 6), round(r[1], 6), r[2]] for r in rows]
    answer = {"zoom": level, "source": source, "total": sum(c[2] for c in out), "clusters": out}
    if truncated:
        answer["truncated"] = True
    return answer


def check_view(bbox: tuple[float, float, float, float], zoom: int) -> None:
    """Refuse a box holding more than MAX_CELLS grid cells at `zoom` (a view no screen shows:
    the whole world at zoom 30 was 7.7 s and 23.8 MB)."""
    x0, y0, x1, y1 = _cell_range(bbox, cell_deg(zoom))
    cells = (x1 - x0 + 1) * (y1 - y0 + 1)
    if cells > MAX_CELLS:
        raise BadRequest(f"this box spans {cells:,} cells at zoom {zoom}; at most {MAX_CELLS:,}"
                         " (a bigger screen than any): shrink the box or lower the zoom", where="bbox")


def is_live(conn: sqlite3.Connection, query: FacilityQuery, *, zoom: int) -> bool:
    """Whether `clusters` will group rows on the fly rather than read the grid."""
    return not (_grid_fits(query, max(GRID_MIN_ZOOM, min(zoom, MAX_ZOOM))) and _has_grid(conn))


def is_expensive(conn: sqlite3.Connection, query: FacilityQuery, *, zoom: int) -> bool:
    """A live grouping over a box holding more than EXPENSIVE_LIVE_ROWS facilities (the grid's
    count of everything in the box: an upper bound for any filter). The map's live requests at
    street zoom read a few hundred rows and are never limited."""
    if not is_live(conn, query, zoom=zoom):
        return False
    estimate = estimate_rows(conn, FacilityQuery(bbox=query.bbox or (-180.0, -85.0, 180.0, 85.0)))
    return estimate is None or estimate[0] > EXPENSIVE_LIVE_ROWS


def estimate_rows(conn: sqlite3.Connection, query: FacilityQuery) -> tuple[int, int] | None:
    """(rows in the query's bbox, rows anywhere) from the grid, for the query's filters; None
    when the grid cannot say. Cells are about a quarter of the box wide, so the box's edges
    overcount by a few cells' worth: an estimate, used to choose a plan, never as a count."""
    if query.bbox is None or not _grid_fits(query, GRID_MAX_ZOOM) or not _has_grid(conn):
        return None
    west, south, east, north = query.bbox
    span = max(east - west, 1e-9)
    level = max(GRID_MIN_ZOOM, min(GRID_MAX_ZOOM, math.floor(math.log2(360.0 / CELLS_PER_TILE / (span / 4)))))
    names = _grid_keys(conn, query)
    x0, y0, x1, y1 = _cell_range(query.bbox, cell_deg(level))
    # The box's columns as a list (a handful: the level makes the box about 4 cells wide), not
    # `gx BETWEEN`: with a range on gx the key (zoom, category, gx, gy) is read over every gy of
    # each column (the country's height); with the list each column is one seek to the box's gy
    # range. Every map page asks this: 59 -> 12 us (sparse box), 115 -> 16 us (dense) at 1M.
    if len(names) == 1 and x1 - x0 < len(_COLUMN_SUMS):
        # one key (the map's own request): a sum per column, no JSON list to build and read
        # (callgrind, sparse box at 1M: 103k -> 40k instructions for the statement)
        in_box = conn.execute(_COLUMN_SUMS[x1 - x0], (level, names[0], y0, y1, *range(x0, x1 + 1))).fetchone()[0]
    else:
        in_box = conn.execute(
            "SELECT coalesce(sum(n), 0) FROM map_grid WHERE zoom = ? AND category IN (SELECT value FROM json_each(?))"
            " AND gx IN (SELECT value FROM json_each(?)) AND gy BETWEEN ? AND ?",
            (level, json.dumps(names), json.dumps(list(range(x0, x1 + 1))), y0, y1)).fetchone()[0]
    total = storememo.kept(conn, ("grid_total", tuple(names)), lambda: conn.execute(  # changes only with the store
        "SELECT coalesce(sum(n), 0) FROM map_grid WHERE zoom = ? AND category IN (SELECT value FROM json_each(?))",
        (GRID_MIN_ZOOM, json.dumps(names))).fetchone()[0])
    return in_box, total


# estimate_rows' statement for one key and 1..8 grid columns: ?1 zoom, ?2 the key, ?3..?4 the gy
# range, ?5... each column's gx.
_COLUMN_SUMS = [" + ".join(
    f"(SELECT coalesce(sum(n), 0) FROM map_grid WHERE zoom = ?1 AND category = ?2 AND gx = ?{5 + i} AND gy BETWEEN ?3 AND ?4)"
    for i in range(k)).join(("SELECT ", "")) for k in range(1, 9)]


def _has_grid(conn: sqlite3.Connection) -> bool:
    """The grid exists and was built (a store with facilities but an empty grid predates it)."""
    return storememo.kept(conn, "has_grid", lambda: _grid_built(conn))


def _grid_built(conn: sqlite3.Connection) -> bool:
    try:
        if conn.execute("SELECT 1 FROM map_grid LIMIT 1").fetchone():
            return True
    except sqlite3.OperationalError:
        return False
    return conn.execute("SELECT 1 FROM facilities LIMIT 1").fetchone() is None


def distinct_hours(conn: sqlite3.Connection) -> list[str | None]:
    """Every distinct opening_hours string of the facilities the map shows, from the grid's
    coarsest level (a few hundred rows at most), or from the table for a store without a grid."""
    if _has_grid(conn):
        return [r[0][6:] or None for r in conn.execute(
            "SELECT DISTINCT category FROM map_grid WHERE zoom = ? AND category >= 'hours:' AND category < 'hours;'",
            (GRID_MIN_ZOOM,))]
    return [r[0] for r in conn.execute("SELECT DISTINCT opening_hours FROM facilities")]
