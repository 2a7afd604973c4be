"""`atvira ingest registry` and `atvira sources` end to end."""

from __future__ import annotations

import json

from click.testing import CliRunner

from directory.store import connect
from tests.clitool import make_cli

cli = make_cli()


def run(db, *args, code=0):
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_registry_ingest_and_sources(db_path, shared_data, tmp_path):
    run(db_path, "areas", "load", "--from", str(shared_data / "govlt-powerbi-map-lt"))
    csv_path = shared_data / "vilnius-darzeliai" / "darzeliai_grupes.csv"
    out = run(db_path, "ingest", "registry", "vilnius-darzeliai", str(csv_path)).output
    assert "180 added" in out and "8 without a map position" in out
    assert out.count("without a map position (kept and listed)") == 8
    # A refused upload: exit 2, every problem by line, nothing written.
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,category,lat,lon\nx1,,day_centre,54.69,25.28\nx2,Centras,spa,54.69,25.28\n",
                   encoding="utf-8")
    refused = run(db_path, "ingest", "registry", "ingest/mappings/municipal-upload.toml", str(bad), code=2)
    assert "bad.csv:2: name: empty name" in refused.output and "bad.csv:3: category: unknown value 'spa'" in refused.output
    # A failed live fetch makes the source stale (recorded as a failed run by hand here: no network in tests).
    conn = connect(db_path)
    conn.execute("INSERT INTO ingest_runs(source, scope, started_at, status, message)"
                 " VALUES ('bibliotekos', 'full', '2026-11-28T12:00:00Z', 'failed', 'HTTP 503')")
    listed = {s["source"]: s for s in json.loads(run(db_path, "sources", "--json").output)}
    assert listed["vilnius-darzeliai"]["records"] == 180 and listed["vilnius-darzeliai"]["stale"] is False
    assert listed["vilnius-darzeliai"]["last_fetch"] and listed["vilnius-darzeliai"]["licences"]
    assert listed["bibliotekos"]["stale"] is True and listed["bibliotekos"]["licences"] == ["CC-BY-4.0"]
    assert listed["municipal-upload"]["records"] == 0
    assert "STALE" in run(db_path, "sources").output
