"""Faults: a killed ingest, an Overpass that fails in every way, a read-only or full store.

Each keeps the previous data whole and serving, and says clearly what went wrong.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import time
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from directory.errors import StoreError
from directory.health import source_states
from directory.store import FIRST_LOAD_INDEXES, connect, counts
from directory.sync import apply_records
from ingest import http, osm
from tests.loopback import HANG, Answer, LoopbackServer
from tests.storecheck import store_digest

NOW_A, NOW_B = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"
KINDS = ({"amenity": "kindergarten"}, {"leisure": "playground"}, {"amenity": "library"}, {"amenity": "toilets"})


def overpass_doc(ids: range, *, renamed: set[int] = frozenset()) -> bytes:
    """Nodes around Vilnius; `renamed` ids get a different name (an update)."""
    rng = random.Random(7)
    elements = []
    for i in ids:
        tags = {**KINDS[i % len(KINDS)], "name": f"Vieta Nr. {i}" + (" (nauja)" if i in renamed else "")}
        elements.append({"type": "node", "id": i, "lon": round(25.0 + rng.random() * 0.5, 7),
                         "lat": round(54.5 + rng.random() * 0.3, 7), "tags": tags})
    return json.dumps({"elements": elements}).encode()


def merged(*docs: bytes) -> bytes:
    return json.dumps({"elements": [el for d in docs for el in json.loads(d)["elements"]]}).encode()


# Old data: 1,500 places. New data: 1,000 of them (300 renamed), 500 gone, 800 new -> 1,800.
DOC_A = overpass_doc(range(1, 1501))
DOC_B = merged(overpass_doc(range(1, 1001), renamed=set(range(1, 301))), overpass_doc(range(2001, 2801)))


def ingest_doc(conn: sqlite3.Connection, doc: bytes, *, now: str, records_hook=None):
    els = osm.parse_overpass_json(doc, where="test.json", keep=osm.is_of_interest)
    records = (r for r in (osm.element_to_facility(el, fetched_at=now) for el in els) if r is not None)
    if records_hook is not None:
        records = records_hook(records)
    return apply_records(conn, records, source="osm", scope="test.json", now=now)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Store A (old data), and the digest of A and of A after ingesting B (new data)."""
    d = tmp_path_factory.mktemp("kill")
    a = d / "a.db"
    conn = connect(a)
    ingest_doc(conn, DOC_A, now=NOW_A)
    conn.close()
    b = d / "b.db"
    shutil.copy(a, b)
    conn = connect(b)
    report = ingest_doc(conn, DOC_B, now=NOW_B)
    conn.close()
    assert (report.added, report.updated, report.removed) == (800, 300, 500)
    return a, store_digest(a), store_digest(b)


def _child_ingest(db: Path, write_fd: int, *, doc: str = DOC_B, now: str = NOW_B) -> None:
    """In the forked child: the ingest, reporting progress on a pipe every 25 records."""
    def hook(records):
        for n, r in enumerate(records, 1):
            if n % 25 == 0:
                os.write(write_fd, b".")
            yield r
        os.write(write_fd, b"!")  # every record handed over: sweep and commit follow

    try:
        conn = connect(db)
        ingest_doc(conn, doc, now=now, records_hook=hook)
        conn.close()
        os.write(write_fd, b"$")
    finally:
        os._exit(0)


def _kill_ingest_part_way(db: Path, rng: random.Random, *, marks: int | None, **child) -> None:
    """Run _child_ingest(db, **child) in a forked child and SIGKILL it after `marks` progress
    marks (25 records each), or once every record is handed over (marks None: in the sweep or
    the commit), plus a random few milliseconds."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child_ingest(db, write_fd, **child)
    os.close(write_fd)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        chunk = os.read(read_fd, 64)
        if not chunk:
            break
        seen += chunk
        if (marks is not None and seen.count(b".") >= marks) or (marks is None and b"!" in seen):
            break
    time.sleep(rng.uniform(0, 0.004 if marks is not None else 0.05))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read_fd)


def test_sigkill_at_random_points_leaves_old_or_new_data_whole(stores, tmp_path):
    template, digest_a, digest_b = stores
    rng = random.Random(20261128)
    outcomes = []
    for trial in range(20):
        db = tmp_path / f"trial{trial}.db"
        shutil.copy(template, db)
        # 15 kills part-way through the records, 5 after the last record (in the sweep/commit).
        marks = rng.randint(0, 1800 // 25 - 1) if trial < 15 else None
        _kill_ingest_part_way(db, rng, marks=marks)
        conn = connect(db)  # recovers the WAL as any later opener would
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"trial {trial}"
        active = counts(conn)["facilities"]
        conn.close()
        reader = connect(db, readonly=True)
        assert reader.execute("SELECT count(*) FROM facilities_rtree").fetchone()[0] >= active
        reader.close()
        digest = store_digest(db)
        assert digest in (digest_a, digest_b), f"trial {trial}: a half-written store ({active} active)"
        outcomes.append(("old", 1500) if digest == digest_a else ("new", 1800))
        assert active == outcomes[-1][1]
    assert len(outcomes) == 20
    assert ("old", 1500) in outcomes  # a kill before the commit always leaves the old data
    print("kill trials:", {k: sum(1 for o in outcomes if o[0] == k) for k in ("old", "new")})


def test_a_killed_first_run_leaves_the_empty_store_or_the_whole_run_and_wal_mode(stores, tmp_path):
    """A first run writes through a rollback journal (not the WAL): a kill at any point leaves
    the empty store or the whole run (the hot journal rolled back by the next opener), and the
    next writer's store is in WAL mode again."""
    _template, digest_a, _digest_b = stores
    empty = tmp_path / "empty.db"
    connect(empty).close()
    digest_empty = store_digest(empty)
    rng = random.Random(20261129)
    outcomes = set()
    for trial in range(8):
        db = tmp_path / f"first{trial}.db"
        shutil.copy(empty, db)
        marks = rng.randint(0, 1500 // 25 - 1) if trial < 6 else None
        _kill_ingest_part_way(db, rng, marks=marks, doc=DOC_A, now=NOW_A)  # a first run: a rollback journal
        conn = connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"trial {trial}"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        digest = store_digest(db)
        assert digest in (digest_empty, digest_a), f"trial {trial}: a half-written first run"
        outcomes.add("empty" if digest == digest_empty else "whole")
    assert "empty" in outcomes  # a kill before the commit leaves nothing


def test_a_failed_first_run_keeps_every_index_and_a_good_one_rebuilds_them(tmp_path):
    """A first run builds its secondary indexes after its rows (store.deferred_indexes): a run
    that fails half-way gets them back with the rollback, a good one ends with the same schema."""

    db = tmp_path / "first.db"
    conn = connect(db)
    schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    assert {r[1] for r in schema} >= set(FIRST_LOAD_INDEXES)

    def broken(records):
        for n, r in enumerate(records, 1):
            if n == 700:
                raise ValueError("the file ends here")
            yield r

    with pytest.raises(ValueError):
        ingest_doc(conn, DOC_A, now=NOW_A, records_hook=broken)
    assert conn.execute("SELECT count(*) FROM facilities").fetchone()[0] == 0
    assert conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ingest_doc(conn, DOC_A, now=NOW_A)
    assert conn.execute("SELECT count(*) FROM facilities").fetchone()[0] == 1500
    assert conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


# --------------------------------------------------------------------------- Overpass failures


REMARK = json.dumps({"elements": [], "remark": "runtime error: Query timed out in \"query\" at line 3 after 180 seconds."}).encode()
FAILURES = {
    "429": (Answer(429, b"Too Many Requests", {"Retry-After": "30"}), "HTTP 429"),
    "504": (Answer(504, b"<html>Gateway Timeout</html>"), "HTTP 504"),
    "timeout": (HANG, "no answer within"),
    "remark": (Answer(200, REMARK), "Overpass reported an error"),
    "garbage": (Answer(200, b"\x89PNG\r\n\x1a\n not json at all"), "not UTF-8 text"),
    "truncated": (Answer(200, b'{"elements": [{"type": "node", "id": 1, "la'), "invalid JSON"),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_overpass_failure_keeps_data_and_marks_the_source_stale(kind, db_path, monkeypatch, tmp_path):
    failure, expected = FAILURES[kind]
    scope = "bbox:25,54.5,25.5,54.8"
    conn = connect(db_path)
    ingest_doc(conn, DOC_A, now=NOW_A)
    apply_records(conn, [], source="osm", scope=scope, now=NOW_A)  # an earlier good run of this scope
    before = store_digest(conn, runs=False)
    conn.close()
    sleeps: list[float] = []
    # The CLI's session, with its waits recorded instead of slept (Retry-After: 30 would take 30 s).
    monkeypatch.setattr(http, "make_session", partial(http.make_session, sleep=sleeps.append))
    with LoopbackServer({"/api/interpreter": [failure]}) as server:
        env = {"ATVIRA_DB": str(db_path), "ATVIRA_CACHE_DIR": str(tmp_path / "cache"), "ATVIRA_HTTP_RETRIES": "2",
               "ATVIRA_OVERPASS_URL": server.url + "/api/interpreter", "ATVIRA_HTTP_TIMEOUT": "0.5"}
        result = CliRunner().invoke(_cli(), ["ingest", "osm", "--bbox", "25,54.5,25.5,54.8"], env=env)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and expected in result.output and "3 attempts" in result.output
    assert len(server.seen) == 3 and len(sleeps) == 2  # bounded: retries + 1 requests, no wait after the last
    assert sleeps[0] <= 600
    assert store_digest(db_path, runs=False) == before  # nothing lost, nothing half-written
    conn = connect(db_path, readonly=True)
    state = {(s.source, s.scope): s for s in source_states(conn)}[("osm", scope)]
    assert state.stale and state.last_ok_at is not None and expected in state.message
    assert counts(conn)["facilities"] == 1500
    conn.close()
    status = CliRunner().invoke(_cli(), ["status"], env=env)
    assert status.exit_code == 0 and f"osm [{scope}]: STALE" in status.output
    assert "osm [test.json]: fresh" in status.output


def _cli():
    """The `atvira` click group with every command registered, as app.main builds it."""
    from tests.clitool import make_cli
    cli = make_cli()

    return cli


def test_a_later_good_run_clears_staleness(db_path):
    conn = connect(db_path)
    ingest_doc(conn, DOC_A, now=NOW_A)
    from directory.sync import record_failed_run

    record_failed_run(conn, source="osm", scope="test.json", message="HTTP 504")
    assert source_states(conn)[0].stale
    ingest_doc(conn, DOC_A, now=NOW_B)
    assert not source_states(conn)[0].stale


# --------------------------------------------------------------------------- read-only and full store


def test_read_only_store_is_a_clear_error_and_nothing_is_lost(db_path):
    conn = connect(db_path)
    ingest_doc(conn, DOC_A, now=NOW_A)
    conn.close()
    before = store_digest(db_path)
    # The same refusal a read-only file, directory or mount gives (tests run as root, for whom
    # file modes do not stop writes, so the refusal is made by SQLite's read-only open).
    ro = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    ro.row_factory = sqlite3.Row
    with pytest.raises(StoreError) as err:
        ingest_doc(ro, DOC_B, now=NOW_B)
    assert "read-only" in err.value.message and "previous data is unchanged" in err.value.message
    ro.close()
    assert store_digest(db_path) == before
    reader = connect(db_path, readonly=True)
    assert counts(reader)["facilities"] == 1500
    reader.close()


def test_full_disk_is_a_clear_error_and_nothing_is_lost(db_path):
    conn = connect(db_path)
    ingest_doc(conn, DOC_A, now=NOW_A)
    before = store_digest(db_path, runs=False)
    # No room to grow: the file may not get one page bigger, as on a full disk.
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError) as err:
        ingest_doc(conn, DOC_B, now=NOW_B)
    assert "disk is full" in err.value.message and "previous data is unchanged" in err.value.message
    conn.close()
    assert store_digest(db_path, runs=False) == before  # the data; the failed run may be noted
    conn = connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    report = ingest_doc(conn, DOC_B, now=NOW_B)  # with room again, the same ingest goes through
    assert (report.added, report.updated, report.removed) == (800, 300, 500)
    conn.close()


def test_read_only_store_through_the_cli(db_path, tmp_path, monkeypatch):
    """`atvira ingest` on a store it cannot write: exit 2 and one clear line, no traceback."""
    conn = connect(db_path)
    ingest_doc(conn, DOC_A, now=NOW_A)
    conn.close()
    before = store_digest(db_path)
    doc = tmp_path / "b.json"
    doc.write_bytes(DOC_B)

    def read_only_writer(path, *, readonly=False):  # the CLI's writer handle, refused like an ro mount
        conn = connect(path, readonly=readonly)
        conn.execute("PRAGMA query_only = 1")
        return conn

    monkeypatch.setattr("directory.commands.ingest.connect", read_only_writer)
    result = CliRunner().invoke(_cli(), ["--db", str(db_path), "ingest", "osm", str(doc)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "read-only" in result.output and "Traceback" not in result.output
    assert store_digest(db_path) == before
