"""Snapshots and the change log, through the real `atvira ingest` command and the web views."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from directory.snapshots import create_snapshot, list_snapshots
from tests.clitool import make_cli
from tests.conftest import FIXTURES

cli = make_cli()


def run(db, *args, env=None):
    result = CliRunner().invoke(cli, ["--db", str(db), *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def two_ingests(db_path, tmp_path):
    """The same source scope ingested twice: one facility added, one edited (hours), one removed."""
    env = {"ATVIRA_SNAPSHOTS_DIR": str(tmp_path / "snaps")}
    first = run(db_path, "ingest", "osm", str(FIXTURES / "changes_v1.json"), "--scope", "fixture", env=env)
    assert "3 added" in first.output and "snapshot 1:" in first.output
    second = run(db_path, "ingest", "osm", str(FIXTURES / "changes_v2.json"), "--scope", "fixture", env=env)
    assert "1 added, 1 updated, 1 unchanged, 1 removed" in second.output and "snapshot 2:" in second.output
    return env


def test_api_changes_lists_exactly_the_added_edited_and_removed(two_ingests, make_app, tmp_path):
    client = make_app(snapshots_dir=tmp_path / "snaps").test_client()
    body = client.get("/api/changes?since=1&until=2").get_json()
    assert body["from_seq"] == 3 and body["to_seq"] == 6
    by_kind = {c["kind"]: c for c in body["changes"]}
    assert len(body["changes"]) == 3 and set(by_kind) == {"added", "updated", "removed"}
    assert by_kind["added"]["facility_id"] == "osm-node-4" and by_kind["added"]["name"] == "New playground"
    assert by_kind["added"]["fields"]["name"] == {"old": None, "new": "New playground"}
    edit = by_kind["updated"]
    assert edit["facility_id"] == "osm-node-2"
    assert edit["fields"]["opening_hours"] == {"old": "Mo-Fr 10:00-18:00", "new": "Mo-Fr 10:00-20:00; Sa 10:00-15:00"}
    assert set(edit["fields"]) == {"opening_hours", "extra"}  # extra: the raw OSM tags, which changed with it
    gone = by_kind["removed"]
    assert gone["facility_id"] == "osm-node-3" and gone["fields"]["status"] == {"old": "active", "new": "removed"}
    # The same range by date, and "since the first snapshot" with an open end, agree.
    assert client.get("/api/changes?since=1").get_json()["changes"] == body["changes"]
    everything = client.get("/api/changes").get_json()["changes"]
    assert {c["facility_id"]: c["kind"] for c in everything} == {
        "osm-node-1": "added", "osm-node-2": "added", "osm-node-4": "added"}  # node 3 came and went
    # The human page shows the edit old -> new.
    page = client.get("/changes?since=1&until=2").get_data(as_text=True)
    assert "Mo-Fr 10:00-18:00" in page and "Mo-Fr 10:00-20:00; Sa 10:00-15:00" in page and "New playground" in page


def test_a_facility_added_then_removed_in_the_range_is_not_listed(two_ingests, make_app, tmp_path, db_path):
    client = make_app(snapshots_dir=tmp_path / "snaps").test_client()
    ids = [c["facility_id"] for c in client.get("/api/changes").get_json()["changes"]]
    assert "osm-node-3" not in ids  # appeared in run 1 and vanished in run 2: nothing to report overall
    assert sorted(ids) == ["osm-node-1", "osm-node-2", "osm-node-4"]


def test_changes_paging_and_bad_parameters(two_ingests, make_app, tmp_path):
    client = make_app(snapshots_dir=tmp_path / "snaps").test_client()
    first = client.get("/api/changes?since=1&limit=2").get_json()
    assert first["numberReturned"] == 2 and first["next"]
    rest = client.get(first["next"].replace("http://localhost", "")).get_json()
    assert rest["next"] is None and len(first["changes"] + rest["changes"]) == 3
    for url, status, where in [("/api/changes?since=99", 404, "since"), ("/api/changes?since=yesterday", 400, "since"),
                               ("/api/changes?since=2026-02-30", 400, "since"), ("/api/changes?colour=1", 400, "colour")]:
        resp = client.get(url)
        assert resp.status_code == status and resp.get_json()["where"] == where, url
    assert client.get("/api/changes?since=2&until=1").get_json()["changes"] == []  # an empty range


def test_snapshots_are_consistent_downloadable_copies(two_ingests, make_app, tmp_path, db_path):
    client = make_app(snapshots_dir=tmp_path / "snaps").test_client()
    snaps = client.get("/api/snapshots").get_json()["snapshots"]
    assert [s["id"] for s in snaps] == [2, 1] and snaps[1]["counts"]["facilities"] == 3
    resp = client.get(snaps[1]["download"].replace("http://localhost", ""))
    assert resp.status_code == 200
    old = tmp_path / "old.sqlite"
    old.write_bytes(resp.get_data())
    with sqlite3.connect(old) as db:  # the first snapshot still has the old hours and the removed toilet
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT opening_hours FROM facilities WHERE id = 'osm-node-2'").fetchone()[0] == "Mo-Fr 10:00-18:00"
        assert db.execute("SELECT status FROM facilities WHERE id = 'osm-node-3'").fetchone()[0] == "active"


def test_an_unchanged_ingest_makes_no_snapshot(two_ingests, db_path):
    again = run(db_path, "ingest", "osm", str(FIXTURES / "changes_v2.json"), "--scope", "fixture", env=two_ingests)
    assert "snapshot" not in again.output
    assert "2  " in run(db_path, "snapshots", "list", env=two_ingests).output


def test_retention_prunes_old_files_but_keeps_the_change_log(two_ingests, db_path, settings, tmp_path, store, make_app):
    cfg = settings.with_(snapshots_dir=tmp_path / "snaps", snapshot_retention=2)
    create_snapshot(store, cfg)
    snaps = list_snapshots(store)
    assert [s["id"] for s in snaps] == [3, 2, 1]
    assert snaps[2]["file"] is None and snaps[2]["pruned_at"]
    assert len(list((tmp_path / "snaps").glob("*.sqlite"))) == 2
    client = make_app(snapshots_dir=tmp_path / "snaps", snapshot_retention=2).test_client()
    assert client.get("/downloads/snapshots/1.sqlite").status_code == 404
    assert len(client.get("/api/changes?since=1&until=2").get_json()["changes"]) == 3  # still listable


def test_snapshots_cli_changes(two_ingests, db_path):
    out = run(db_path, "snapshots", "changes", "--since", "1", env=two_ingests).output
    assert "updated  osm-node-2" in out and "'Mo-Fr 10:00-18:00' -> 'Mo-Fr 10:00-20:00; Sa 10:00-15:00'" in out
    assert "added    osm-node-4" in out and "removed  osm-node-3" in out


def test_whole_sqlite_download_is_the_current_snapshot(two_ingests, make_app, tmp_path):
    client = make_app(snapshots_dir=tmp_path / "snaps").test_client()
    body = client.get("/downloads/facilities.sqlite").get_data()
    latest = sorted((tmp_path / "snaps").glob("*-2.sqlite"))
    assert latest and body == latest[0].read_bytes()


def test_a_failed_snapshot_says_so_and_leaves_no_row(store, settings, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the snapshots directory should be")
    from directory.errors import StoreError

    with pytest.raises(StoreError, match="snapshot could not be written"):
        create_snapshot(store, settings.with_(snapshots_dir=blocker / "snaps"))
    assert list_snapshots(store) == []
