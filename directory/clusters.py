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

from .hours import HoursEvaluator
from .query import DEFAULT_STATUSES, FacilityQuery, compile_where, register_hours
from .store import set_meta

GRID_MIN_ZOOM = 0
GRID_MAX_ZOOM = 13  # above this a view is small enough to group on the fly
CELLS_PER_TILE = 4

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
    """
    conn.execute("DELETE FROM map_grid")
    top = GRID_MAX_ZOOM
    cell = cell_deg(top)
    merc = _MERC_SQL.format(lat="f.lat")
    statuses = ",".join(f"'{s}'" for s in DEFAULT_STATUSES)
    cells = (
        f"SELECT CAST((f.lon + 180) / {cell!r} AS INTEGER) AS gx, CAST(({merc} + 180) / {cell!r} AS INTEGER) AS gy,"
        f" f.lon, f.lat, f.categories, f.features, f.opening_hours FROM facilities f"
        f" WHERE f.lon IS NOT NULL AND f.status IN ({statuses})"
    )
    # the cells are computed once (trigonometry for every row is the expensive part), then grouped
    conn.execute("DROP TABLE IF EXISTS temp.grid_points")
    conn.execute(f"CREATE TEMP TABLE grid_points AS {cells}")
    cells = "SELECT * FROM temp.grid_points"
    conn.execute(
        f"""INSERT INTO map_grid(zoom, category, gx, gy, n, sum_lon, sum_lat)
        SELECT {top}, '*', gx, gy, count(*), sum(lon), sum(lat) FROM ({cells}) GROUP BY gx, gy"""
    )
    conn.execute(
        f"""INSERT INTO map_grid(zoom, category, gx, gy, n, sum_lon, sum_lat)
        SELECT {top}, c.value, gx, gy, count(*), sum(lon), sum(lat)
        FROM ({cells}) AS p, json_each(p.categories) AS c GROUP BY c.value, gx, gy"""
    )
    # one feature filter without a category (a parent's "changing table" across the country)
    conn.execute(
        f"""INSERT INTO map_grid(zoom, category, gx, gy, n, sum_lon, sum_lat)
        SELECT {top}, 'feature:' || ft.key, gx, gy, count(*), sum(lon), sum(lat)
        FROM ({cells}) AS p, json_each(p.features) AS ft
        WHERE ft.value IN ('yes', 'limited') GROUP BY ft.key, gx, gy"""
    )
    # per opening-hours string ('hours:' alone: none given), so "open now" sums the strings that
    # are open at the request's instant; stores repeat a few hours patterns many times
    conn.execute(
        f"""INSERT INTO map_grid(zoom, category, gx, gy, n, sum_lon, sum_lat)
        SELECT {top}, 'hours:' || coalesce(opening_hours, ''), gx, gy, count(*), sum(lon), sum(lat)
        FROM ({cells}) GROUP BY opening_hours, gx, gy"""
    )
    for z in range(top - 1, GRID_MIN_ZOOM - 1, -1):
        conn.execute(
            """INSERT INTO map_grid(zoom, category, gx, gy, n, sum_lon, sum_lat)
            SELECT ?, category, gx >> 1, gy >> 1, sum(n), sum(sum_lon), sum(sum_lat)
            FROM map_grid WHERE zoom = ? GROUP BY category, gx >> 1, gy >> 1""",
            (z, z + 1),
        )
    conn.execute("DROP TABLE temp.grid_points")
    return conn.execute("SELECT count(*) FROM map_grid").fetchone()[0]


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
    level = max(GRID_MIN_ZOOM, min(zoom, 30))
    bbox = query.bbox or (-180.0, -85.0, 180.0, 85.0)
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
        merc = _MERC_SQL.format(lat="f.lat")
        rows = conn.execute(
            f"SELECT avg(f.lon), avg(f.lat), count(*) FROM {src} WHERE {where}"
            f" GROUP BY CAST((f.lon + 180) / {cell!r} AS INTEGER), CAST(({merc} + 180) / {cell!r} AS INTEGER)",
            params,
        ).fetchall()
        source = "live"
    out = [[round(r[0], 6), round(r[1], 6), r[2]] for r in rows]
    return {"zoom": level, "source": source, "total": sum(c[2] for c in out), "clusters": out}


def estimate_rows(conn: sqlite3.Connection, query: FacilityQuery) -> tuple[int, int] | None:
    """(rows in the query's bbox, rows anywhere) from the grid, for the query's filters; None
    when the grid cannot say. Cells are about a quarter of the box wide, so the box's edges
    overcount by a few cells' worth: an estimate, used to choose a plan, never as a count."""
    if query.bbox is None or not _grid_fits(query, GRID_MAX_ZOOM) or not _has_grid(conn):
        return None
    west, south, east, north = query.bbox
    span = max(east - west, 1e-9)
    level = max(GRID_MIN_ZOOM, min(GRID_MAX_ZOOM, math.floor(math.log2(360.0 / CELLS_PER_TILE / (span / 4)))))
    keys = json.dumps(_grid_keys(conn, query))
    x0, y0, x1, y1 = _cell_range(query.bbox, cell_deg(level))
    in_box = conn.execute(
        "SELECT coalesce(sum(n), 0) FROM map_grid WHERE zoom = ? AND category IN (SELECT value FROM json_each(?))"
        " AND gx BETWEEN ? AND ? AND gy BETWEEN ? AND ?", (level, keys, x0, x1, y0, y1)).fetchone()[0]
    total = conn.execute(
        "SELECT coalesce(sum(n), 0) FROM map_grid WHERE zoom = ? AND category IN (SELECT value FROM json_each(?))",
        (GRID_MIN_ZOOM, keys)).fetchone()[0]
    return in_box, total


def _has_grid(conn: sqlite3.Connection) -> bool:
    """The grid exists and was built (a store with facilities but an empty grid predates it)."""
    try:
        if conn.execute("SELECT 1 FROM map_grid LIMIT 1").fetchone():
            return True
    except sqlite3.OperationalError:
        return False
    return conn.execute("SELECT 1 FROM facilities LIMIT 1").fetchone() is None
