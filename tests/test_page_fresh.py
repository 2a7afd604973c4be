"""A page's freshness (search.Page.fresh_until): the earliest instant an open_state in it changes,
"now + FALLBACK_FRESH" when a row's hours are not in the state table (the per-row fallback), None
when no row has hours; the same on each of the page's three paths (map cells, R*Tree, general)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from directory import open_now, search
from directory.hours import HoursEvaluator
from directory.query import FacilityQuery
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import derive, facility

NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday
BOX = (25.0, 54.0, 26.0, 55.0)


def _paths(monkeypatch, path: str) -> None:
    if path in ("rtree", "general"):
        monkeypatch.setattr(search, "MAX_CELLS", 0)  # no box is small enough for the map cells
    if path == "general":
        monkeypatch.setattr(search, "_plain_box", lambda query: False)


@pytest.mark.parametrize("path", ["cells", "rtree", "general"])
def test_fresh_until_is_the_earliest_change_or_the_fallback(db_path, monkeypatch, path):
    _paths(monkeypatch, path)
    conn = connect(db_path)
    apply_records(conn, [facility("a", opening_hours="Mo-Su 09:00-21:00"), facility("b", lon=25.3),
                         facility("c", opening_hours="Mo-Fr 08:00-11:00", lon=25.4)], source="test", scope="s")
    derive(conn)
    page = search.query_page(conn, FacilityQuery(bbox=BOX, now=NOW))
    evaluator = HoursEvaluator(NOW)
    # each state holds until its next change, re-checked at least every open_now.MAX_VALID
    first = min([NOW + open_now.MAX_VALID] + [evaluator.state(h).next_change for h in ("Mo-Su 09:00-21:00", "Mo-Fr 08:00-11:00")])
    assert page.count == 3 and page.fresh_until == first.timestamp()
    # no row with hours: nothing in the page depends on the clock
    assert search.query_page(conn, FacilityQuery(bbox=(25.29, 54.0, 25.31, 55.0), now=NOW)).fresh_until is None
    # hours the state table does not hold yet (no grid refresh since): the fallback's minute
    apply_records(conn, [facility("d", opening_hours="Mo-Su 10:00-10:45", lon=25.5)], source="test", scope="t")
    page = search.query_page(conn, FacilityQuery(bbox=BOX, now=NOW))
    assert page.count == 4 and page.fresh_until == NOW.timestamp() + search.FALLBACK_FRESH
    conn.close()
