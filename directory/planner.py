"""Choosing how to read a bbox page: through the R*Tree, or by walking the table in id order.

The R*Tree must return *every* row in the box to sort it by rid before the first page, so a
country-wide box at 1M facilities costs seconds; walking the table in rid order stops after
`rows` matches, which for a box holding a share p of the rows takes about rows/p steps. The
rows and their order are the same either way; only the cost differs.

The planner takes the map grid's estimate as an argument (the caller asks `clusters`), so it
depends on nothing but the query and the connection.
"""

from __future__ import annotations

import math
import sqlite3

from .query import FacilityQuery

# Walking the table costs about a fifth of an R*Tree row (which must also be sorted by rid).
SCAN_ADVANTAGE = 5


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


# A plain bbox page reads its rids from the R*Tree alone, bounded so few are sorted
# (search._box_page): an R*Tree row then costs about what a walked table row does (1M store, a
# box of 8,658 at 12,699 estimated: the walk took 13.7 ms, the R*Tree 3.6 ms).
BOX_SCAN_ADVANTAGE = 1


def prefer_scan(conn: sqlite3.Connection, query: FacilityQuery, *, rows: int,
                estimate: tuple[int, int] | None, advantage: float = SCAN_ADVANTAGE) -> bool:
    """Whether a page of `rows` in rid order is cheaper to find by walking the table than
    through the R*Tree.

    `estimate` is (rows in the box, rows anywhere) from the map grid for the query's filters,
    or None when the grid cannot say: then a bounded count decides instead. `advantage`: how
    many R*Tree rows cost one walked row (SCAN_ADVANTAGE for the R*Tree joined to facilities and
    sorted, BOX_SCAN_ADVANTAGE for the R*Tree alone).
    """
    if query.bbox is None or query.q:
        return False
    if estimate is None:
        return bbox_is_dense(conn, query.bbox, limit=rows)
    in_box, total = estimate
    if in_box <= 0 or total <= 0:
        return False
    return rows * total / in_box < advantage * in_box
