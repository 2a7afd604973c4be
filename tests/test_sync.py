"""The ingest core: idempotent upserts, the change log, removal sweep, atomic runs."""

from __future__ import annotations

import json
import sqlite3

import pytest

from directory.model import Rejection
from directory.store import connect, get_facility
from directory.sync import apply_records
from tests.conftest import facility


def changes(conn):
    return conn.execute("SELECT kind, facility_id, old, new FROM changes ORDER BY seq").fetchall()


def test_same_records_twice_changes_nothing(store):
    recs = [facility("a"), facility("b", categories=["toilet", "baby_room"])]
    first = apply_records(store, recs, source="test", scope="s")
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    n_changes = len(changes(store))
    again = apply_records(store, [facility("a"), facility("b", categories=["baby_room", "toilet"])], source="test", scope="s")
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 2, 0)
    assert len(changes(store)) == n_changes


def test_update_logs_old_and_new_fields(store):
    apply_records(store, [facility("a", opening_hours="Mo-Fr 08:00-17:00")], source="test", scope="s")
    rep = apply_records(store, [facility("a", opening_hours="Mo-Fr 09:00-18:00")], source="test", scope="s")
    assert rep.updated == 1
    kind, fid, old, new = changes(store)[-1]
    assert kind == "updated" and fid == "test-a"
    assert json.loads(old) == {"opening_hours": "Mo-Fr 08:00-17:00"}
    assert json.loads(new) == {"opening_hours": "Mo-Fr 09:00-18:00"}
    assert get_facility(store, "test-a")["opening_hours"] == "Mo-Fr 09:00-18:00"


def test_vanished_records_are_marked_removed_not_deleted(store):
    apply_records(store, [facility("a"), facility("b")], source="test", scope="s")
    rep = apply_records(store, [facility("a")], source="test", scope="s")
    assert rep.removed == 1
    fac = get_facility(store, "test-b")
    assert fac["status"] == "removed"
    assert fac["sources"][0]["removed_at"] is not None
    # A record of another scope is untouched by this scope's sweep.
    apply_records(store, [facility("c")], source="test", scope="other")
    apply_records(store, [facility("a")], source="test", scope="s")
    assert get_facility(store, "test-c")["status"] == "active"
    # It comes back when the source has it again.
    rep = apply_records(store, [facility("a"), facility("b")], source="test", scope="s")
    assert rep.added == 1 and get_facility(store, "test-b")["status"] == "active"


def test_rejections_keep_what_the_store_had(store):
    apply_records(store, [facility("a"), facility("b")], source="test", scope="s")
    rep = apply_records(
        store,
        [facility("a"), facility("b", lat=91.0), Rejection("c", "no coordinates")],
        source="test",
        scope="s",
    )
    assert [r.source_id for r in rep.rejected] == ["b", "c"]
    assert "latitude 91 is out of range" in rep.rejected[0].reason
    assert rep.removed == 0  # a rejected record is not "vanished"
    assert get_facility(store, "test-b")["lat"] == 54.68


def test_failed_run_rolls_back_everything(store):
    apply_records(store, [facility("a")], source="test", scope="s")

    def broken():
        yield facility("a", name="Changed")
        yield facility("new")
        raise ValueError("file truncated")

    with pytest.raises(ValueError):
        apply_records(store, broken(), source="test", scope="s")
    assert get_facility(store, "test-a")["name"] == "Place a"
    assert get_facility(store, "test-new") is None
    runs = store.execute("SELECT status, message FROM ingest_runs ORDER BY id").fetchall()
    assert [r["status"] for r in runs] == ["ok", "failed"]
    assert "truncated" in runs[-1]["message"]


def test_changes_table_is_append_only(store):
    apply_records(store, [facility("a")], source="test", scope="s")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.execute("DELETE FROM changes")


def test_without_position_is_kept_and_counted(store):
    rep = apply_records(store, [facility("a", lon=None, lat=None)], source="test", scope="s")
    assert rep.added == 1 and rep.without_position == 1


def test_reader_is_read_only(store, db_path):
    apply_records(store, [facility("a")], source="test", scope="s")
    ro = connect(db_path, readonly=True)
    assert ro.execute("SELECT count(*) FROM facilities").fetchone()[0] == 1
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.execute("DELETE FROM facilities")
    assert ro.execute("PRAGMA mmap_size").fetchone()[0] > 0
