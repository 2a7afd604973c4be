"""The snapshot copy written alongside the grid and the audit (snapshots._copy_alongside): on a
store in WAL mode another thread writes it on its own connection while refresh_derived's map
grid and audit run; the file holds what a copy written afterwards holds, and a failure on
either side leaves no snapshot row and no part file, with the error of the side that failed."""

from __future__ import annotations

import shutil
import sqlite3
import threading

import pytest

from directory import snapshots
from directory.config import Settings
from directory.derived import refresh_derived, stale_parts
from directory.errors import StoreError
from directory.exports import copy_store
from directory.store import connect
from tests.test_snapshot_copy import _dump


@pytest.fixture
def writer(audit_db, tmp_path):
    db = tmp_path / "audit.db"
    shutil.copy(audit_db, db)
    conn = connect(db)
    yield conn, Settings(db=db, snapshots_dir=tmp_path / "snaps", cache_dir=tmp_path / "cache")
    conn.close()


def _copies_in(monkeypatch) -> list[str]:
    """The names of the threads that run copy_store from now on."""
    threads: list[str] = []
    original = snapshots.copy_store

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(snapshots, "copy_store", recorded)
    return threads


def test_the_copy_written_alongside_holds_what_a_later_copy_holds(writer, monkeypatch, tmp_path):
    conn, settings = writer
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    threads = _copies_in(monkeypatch)
    report = refresh_derived(conn, settings, force=("map", "audit"))
    assert threads == ["atvira-snapshot-copy"]  # not this thread: alongside the grid and audit
    assert {"map grid", "audit", "snapshot"} <= set(report.done)
    assert report.snapshot is not None and stale_parts(conn) == []
    copy_store(conn, tmp_path / "after.sqlite")
    assert _dump(settings.snapshot_dir() / report.snapshot["file"]) == _dump(tmp_path / "after.sqlite")
    assert sorted(p.name for p in settings.snapshot_dir().iterdir()) == [report.snapshot["file"]]


def test_a_store_in_a_rollback_journal_copies_after_the_grid_and_audit_in_this_thread(writer, monkeypatch):
    conn, settings = writer
    assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    threads = _copies_in(monkeypatch)
    report = refresh_derived(conn, settings, force=("map", "audit"))
    assert threads == [threading.current_thread().name]
    assert report.snapshot is not None and stale_parts(conn) == []


def test_a_failing_grid_leaves_no_snapshot_and_no_part_file(writer, monkeypatch):
    conn, settings = writer

    def broken(_conn):
        raise sqlite3.OperationalError("the grid broke")

    monkeypatch.setattr("directory.derived.refresh_map_data", broken)
    with pytest.raises(sqlite3.OperationalError, match="the grid broke"):
        refresh_derived(conn, settings, force=("map", "audit"))
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0
    assert list(settings.snapshot_dir().iterdir()) == []
    assert "snapshot" in stale_parts(conn)


def test_a_failing_copy_is_a_clear_error_after_the_grid_and_audit_are_current(writer, monkeypatch):
    conn, settings = writer

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshots, "copy_store", full_disk)
    with pytest.raises(StoreError, match="snapshot could not be written"):
        refresh_derived(conn, settings, force=("map", "audit"))
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0
    assert list(settings.snapshot_dir().iterdir()) == []
    assert stale_parts(conn) == ["snapshot"]  # the grid and the audit were written
