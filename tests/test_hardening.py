"""Issue 14 (hardening): each finding of the probe, reproduced; each must stay fixed.

The findings are numbered as in the issue's "Why" list; a test's docstring names its finding.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from werkzeug.routing import Rule

from directory.config import Settings
from tests.conftest import derive, facility

HUGE = "99999999999999999999999"
UNICODE_DIGITS = "\uff15"  # fullwidth 5
NUMBER_PARAMS = ("limit", "after", "zoom", "institutions_limit", "radius", "since", "until")
COORD_PARAMS = {"bbox": f"{HUGE},1,2,3", "near": f"{HUGE},54"}


@pytest.fixture
def audit_app(audit_db, tmp_path):
    from app import create_app

    db = tmp_path / "audit.db"
    shutil.copy(audit_db, db)
    app = create_app(Settings(db=db, cache_dir=tmp_path / "cache", offline=True, tile_url="",
                              snapshots_dir=tmp_path / "snaps"))
    app.testing = True
    return app


def _fill(rule: Rule, value: str) -> str:
    path = rule.rule
    for arg in rule.arguments:
        path = path.replace(f"<{arg}>", value).replace(f"<path:{arg}>", value).replace(f"<int:{arg}>", value)
    return path


def test_every_route_answers_overflowing_and_unicode_numbers_without_a_500(audit_app):
    """Finding 7 (HTML 500s on /downloads/snapshots/<huge>.sqlite and institutions_limit=<huge>)
    and 10 (Unicode digits accepted by some parameters): every route, every numeric parameter."""
    client = audit_app.test_client()
    tried = 0
    for rule in audit_app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for value in (HUGE, UNICODE_DIGITS, "-" + HUGE, "1e999", "nan"):
            base = _fill(rule, value if rule.arguments else "")
            queries = [f"{p}={value}" for p in NUMBER_PARAMS]
            queries += [f"{p}={v}" for p, v in COORD_PARAMS.items()]
            queries += [f"bbox=20,50,30,60&zoom={value}", f"near=25,54&radius={value}"]
            for q in ["", *queries] if value in (HUGE, UNICODE_DIGITS) else [""]:
                url = f"{base}?{q}" if q else base
                resp = client.get(url)
                tried += 1
                assert resp.status_code < 500, (url, resp.status_code, resp.get_data(as_text=True)[:300])
                if resp.status_code == 400 and resp.is_json:
                    assert "Traceback" not in resp.get_data(as_text=True)
    assert tried > 500


@pytest.mark.parametrize("url, where", [
    ("/api/facilities?bbox=2%EF%BC%95,54,26,55", "bbox"),
    ("/api/facilities?near=2%EF%BC%95,54", "near"),
    ("/api/facilities/clusters?bbox=20,50,30,60&zoom=%EF%BC%95", "zoom"),
    ("/api/facilities?near=25,54&radius=%EF%BC%95", "radius"),
    ("/api/changes?since=%EF%BC%95", "since"),
])
def test_unicode_digits_are_refused_by_every_numeric_parameter(client, url, where):
    """Finding 10: "５" was a number in bbox, near and zoom but not in limit; now in none."""
    resp = client.get(url)
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.get_json()["where"] == where


def test_institutions_limit_overflow_is_a_400(audit_app):
    """Finding 7: /api/audit/municipalities/13?institutions_limit=<20 digits> was an HTML 500."""
    resp = audit_app.test_client().get(f"/api/audit/municipalities/13?institutions_limit={HUGE}")
    assert resp.status_code == 400 and resp.get_json()["where"] == "institutions_limit"


def test_huge_snapshot_id_is_a_clear_404_or_400(client):
    """Finding 7: /downloads/snapshots/<23 digits>.sqlite raised OverflowError (HTML 500)."""
    resp = client.get(f"/downloads/snapshots/{HUGE}.sqlite")
    assert resp.status_code == 400 and resp.get_json()["where"] == "snapshot"


def test_a_long_unknown_id_is_not_echoed_in_full(client):
    """Finding 10: a 5,000-character unknown id came back whole in the 404."""
    resp = client.get("/api/facilities/" + "x" * 5000)
    assert resp.status_code == 404 and len(resp.get_data()) < 600


FORMULA = '=HYPERLINK("http://example.invalid","x")'


def test_audit_csvs_neutralise_spreadsheet_formulas(audit_app):
    """Finding 4: the audit CSVs used a plain csv.writer, so a formula name came out live."""
    import sqlite3

    conn = sqlite3.connect(audit_app.config["ATVIRA"].db)
    with conn:
        conn.execute("UPDATE audit_institutions SET name = ? WHERE municipality_code = '13'", (FORMULA,))
        conn.execute("UPDATE audit_institutions SET name = ? WHERE meets_all = 1", ("@SUM(A1)",))
    conn.close()
    client = audit_app.test_client()
    for url in ("/audit/13/institutions.csv", "/audit/institutions.csv"):
        body = client.get(url).get_data(as_text=True)
        assert body.startswith("\ufeff")
        cells = [c for line in body.splitlines() for c in line.split(",")]
        assert not any(c.lstrip('"').startswith(("=", "@", "+")) for c in cells), (url, body[:400])
        assert "'=HYPERLINK" in body or "'@SUM" in body, body[:400]


def test_the_one_csv_writer_guards_every_text_cell():
    from directory.exports import csv_text

    text = "".join(csv_text([["name", "n"], ["=1+1", -3], ["+x", None], ["\tx", "ok"]]))
    assert text == "\ufeffname,n\r\n'=1+1,-3\r\n'+x,\r\n'\tx,ok\r\n"


# --- finding 5: derived data and snapshots after a kill ------------------------------------------

def _seed(db: Path, n: int = 300) -> None:
    from directory.store import connect
    from directory.sync import apply_records

    conn = connect(db)
    apply_records(conn, [facility(str(i), lon=25 + i / 1000, lat=54.6) for i in range(n)], source="test", scope="t")
    conn.close()


def _status(db: Path, tmp_path: Path, *args: str):
    from click.testing import CliRunner

    from tests.clitool import make_cli

    env = {"ATVIRA_SNAPSHOTS_DIR": str(tmp_path / "snaps"), "ATVIRA_CACHE_DIR": str(tmp_path / "cache")}
    return CliRunner().invoke(make_cli(), ["--db", str(db), "status", *args], env=env)


def test_a_kill_after_the_data_commit_is_reported_stale_and_repaired_at_the_server_start(tmp_path, monkeypatch):
    """Finding 5: a kill after the data commit left the audit stale and no snapshot, while
    `atvira status` said "fresh"; now status says STALE and the server's start repairs it."""
    import runpy

    from directory.derived import stale_parts
    from directory.store import connect

    db = tmp_path / "a.db"
    _seed(db)  # the run committed; its refresh_derived never ran (the process was killed)
    out = _status(db, tmp_path).output
    assert "derived data: STALE (map, audit, snapshot)" in out and "atvira status --repair" in out, out
    from tests.servers import TEST_SECRET_KEY

    monkeypatch.setenv("ATVIRA_SECRET_KEY", TEST_SECRET_KEY)  # gunicorn.conf.py is production
    monkeypatch.setenv("ATVIRA_PRODUCTION", "1")  # (it sets this default itself: undone after the test)
    monkeypatch.setenv("ATVIRA_DB", str(db))
    monkeypatch.setenv("ATVIRA_SNAPSHOTS_DIR", str(tmp_path / "snaps"))
    config = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))

    class Server:  # what gunicorn hands on_starting: only its log is used
        class log:
            lines: list[str] = []
            info = lines.append

    config["on_starting"](Server)
    assert any("snapshot" in line for line in Server.log.lines), Server.log.lines
    conn = connect(db, readonly=True)
    assert stale_parts(conn) == []
    assert conn.execute("SELECT count(*) FROM snapshots WHERE path IS NOT NULL").fetchone()[0] == 1
    conn.close()
    assert "derived data: current" in _status(db, tmp_path).output


def _child_snapshot(db: Path, snaps: Path, write_fd: int) -> None:
    """In the forked child: a snapshot whose VACUUM INTO pauses part-way (the parent kills it)."""
    import time

    from directory import snapshots
    from directory.store import connect

    try:
        original = snapshots.copy_store

        def paused(conn, path, **kw):
            calls = []

            def handler():
                if not calls:
                    calls.append(1)
                    os.write(write_fd, b"!")  # part-way through the copy: the part file and its journal exist
                    time.sleep(60)
                return 0

            conn.set_progress_handler(handler, 200)
            return original(conn, path, **kw)

        snapshots.copy_store = paused
        conn = connect(db)
        snapshots.create_snapshot(conn, Settings(db=db, snapshots_dir=snaps))
    finally:
        os._exit(0)


def test_a_kill_during_the_snapshot_copy_leaves_no_row_and_its_leftovers_are_removed(tmp_path):
    """Finding 5: a kill during the snapshot copy left a row with no file ("pruned None") and a
    .part file with its journal that were never cleaned up."""
    import signal

    from directory.derived import repair
    from directory.snapshots import list_snapshots
    from directory.store import connect

    db, snaps = tmp_path / "k.db", tmp_path / "snaps"
    _seed(db, 3000)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child_snapshot(db, snaps, write_fd)
    os.close(write_fd)
    assert os.read(read_fd, 1) == b"!"
    leftovers = sorted(p.name for p in snaps.iterdir())
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read_fd)
    assert leftovers and all(".part" in name for name in leftovers), leftovers
    conn = connect(db)
    assert list_snapshots(conn) == []  # no row for a file that was never finished
    conn.close()
    report, fixed = repair(Settings(db=db, snapshots_dir=snaps))
    assert any("unfinished" in line for line in fixed), fixed
    files = sorted(p.name for p in snaps.iterdir())
    assert len(files) == 1 and files[0].endswith("-1.sqlite"), files  # only the repaired snapshot
    conn = connect(db, readonly=True)
    (snap,) = list_snapshots(conn)
    assert snap["file"] == files[0] and (snaps / snap["file"]).is_file()
    conn.close()


def test_a_snapshot_row_never_points_to_a_missing_file(tmp_path):
    from directory.derived import repair
    from directory.snapshots import create_snapshot, list_snapshots
    from directory.store import connect

    db, snaps = tmp_path / "m.db", tmp_path / "snaps"
    _seed(db, 10)
    conn = connect(db)
    cfg = Settings(db=db, snapshots_dir=snaps)
    first = create_snapshot(conn, cfg)
    (snaps / first["file"]).unlink()  # an operator's rm, a lost disk
    conn.close()
    _report, fixed = repair(cfg)
    assert any("missing" in line for line in fixed)
    conn = connect(db, readonly=True)
    assert all(s["file"] is None or (snaps / s["file"]).is_file() for s in list_snapshots(conn))
    conn.close()


# --- finding 10: the public SQLite download holds the published tables only ---------------------

def test_the_whole_sqlite_download_holds_the_published_tables_only(tmp_path, make_app, settings):
    import sqlite3

    from directory.store import connect

    _seed(settings.db, 5)
    conn = connect(settings.db)
    derive(conn)
    conn.close()
    client = make_app().test_client()
    path = tmp_path / "whole.sqlite"
    path.write_bytes(client.get("/downloads/facilities.sqlite").get_data())
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"facilities", "areas", "source_records"} <= tables
    assert not tables & {"ingest_runs", "map_grid", "changes", "meta", "audit_institutions", "snapshots"}, tables
    cols = {r[1] for r in db.execute("PRAGMA table_info(source_records)")}
    assert "licence" in cols and "data" not in cols
    assert db.execute("SELECT count(*) FROM facilities").fetchone()[0] == 5
    assert db.execute("SELECT count(*) FROM facilities_fts WHERE facilities_fts MATCH 'place'").fetchone()[0] == 5
    db.close()


# --- finding 8: the Host header is not trusted -----------------------------------------------------

def _one_place(settings):
    from directory.store import connect
    from directory.sync import apply_records

    conn = connect(settings.db)
    apply_records(conn, [facility("1"), facility("2")], source="test", scope="t")
    derive(conn)
    conn.close()


def test_an_untrusted_host_header_is_refused_everywhere(settings, make_app):
    """Finding 8: `Host: evil.example` came back in the canonical link, the JSON-LD @id, next
    links, the Link header and OpenAPI servers."""
    _one_place(settings)
    client = make_app().test_client()
    for url in ("/facility/test-1", "/api/facilities?limit=1", "/downloads/facilities.csv", "/api/openapi.json",
                "/datasets/catalog.jsonld", "/api/snapshots"):
        resp = client.get(url, headers={"Host": "evil.example"})
        assert resp.status_code == 400 and b"//evil.example" not in resp.get_data(), url
        assert client.get(url).status_code == 200, url


def test_absolute_urls_come_from_the_server_name(settings, make_app):
    _one_place(settings)
    client = make_app(server_name="https://atvira.example").test_client()
    page = client.get("/facility/test-1").get_data(as_text=True)
    assert '<link rel="canonical" href="https://atvira.example/facility/test-1">' in page
    assert '"@id": "https://atvira.example/facility/test-1"' in page
    assert client.get("/api/facilities?limit=1").get_json()["next"].startswith("https://atvira.example/api/facilities?")
    assert client.get("/downloads/facilities.csv").headers["Link"].startswith("<https://atvira.example/datasets/")
    assert client.get("/api/openapi.json").get_json()["servers"][0]["url"] == "https://atvira.example"
    # the server name's own host is accepted as a Host header
    assert client.get("/api/facilities?limit=1", headers={"Host": "atvira.example"}).status_code == 200


def test_the_etag_varies_with_the_trusted_host(settings, make_app):
    _one_place(settings)
    client = make_app(trusted_hosts="a.example,b.example").test_client()
    a = client.get("/api/facilities", headers={"Host": "a.example"}).headers["ETag"]
    b = client.get("/api/facilities", headers={"Host": "b.example"}).headers["ETag"]
    assert a != b
    assert client.get("/api/facilities", headers={"Host": "b.example", "If-None-Match": a}).status_code == 200


def test_permissions_policy_always_and_hsts_in_production_only(settings, make_app):
    """Finding 10: no HSTS or Permissions-Policy header."""
    dev = make_app().test_client().get("/api/areas")
    assert "geolocation=(self)" in dev.headers["Permissions-Policy"] and "Strict-Transport-Security" not in dev.headers
    from tests.servers import TEST_SECRET_KEY

    prod = make_app(production=True, secret_key=TEST_SECRET_KEY).test_client().get("/api/areas", base_url="https://localhost")
    assert prod.headers["Strict-Transport-Security"].startswith("max-age=")


# --- finding 3: "open now" answers are not served stale from cache ---------------------------------

def test_yesterdays_etag_gets_no_304_on_time_dependent_answers(settings, make_app, monkeypatch):
    """Finding 3: If-None-Match with yesterday's ETag got 304 on /api/facilities?open=open, the
    clusters and /downloads/facilities.csv?open=open. The clock is frozen (directory.clock)."""
    from datetime import UTC, datetime

    from directory import clock
    from directory.store import connect
    from directory.sync import apply_records

    conn = connect(settings.db)
    apply_records(conn, [facility("1", opening_hours="Mo-Su 08:00-20:00"), facility("2", opening_hours="24/7")],
                  source="test", scope="t")
    derive(conn)
    conn.close()
    instant = {"now": datetime(2026, 11, 28, 10, 0, tzinfo=UTC)}  # 12:00 in Vilnius: open
    monkeypatch.setattr(clock, "now", lambda: instant["now"])
    client = make_app().test_client()
    urls = ("/api/facilities?open=open", "/api/facilities", "/api/facilities/clusters?bbox=20,50,30,60&zoom=5&open=open",
            "/downloads/facilities.csv?open=open", "/api/facilities?open_now=1")
    yesterday = {}
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200 and "ETag" in resp.headers, url
        yesterday[url] = resp.headers["ETag"]
    instant["now"] = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)  # the same opening interval: still valid
    for url in urls:
        assert client.get(url, headers={"If-None-Match": yesterday[url]}).status_code == 304, url
    instant["now"] = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)  # the next day, after a close and an open
    for url in urls:
        resp = client.get(url, headers={"If-None-Match": yesterday[url]})
        assert resp.status_code == 200 and resp.headers["ETag"] != yesterday[url], url
    instant["now"] = datetime(2026, 11, 29, 18, 30, tzinfo=UTC)  # 20:30 in Vilnius: closed now
    body = client.get("/api/facilities?open=open").get_json()
    assert [f["id"] for f in body["features"]] == ["test-2"]
    assert client.get("/api/facilities?open=open", headers={"If-Modified-Since": "Sat, 28 Nov 2026 10:00:00 GMT"}
                      ).status_code == 200


# --- finding 6: two source ids that slug to one facility id ----------------------------------------

def test_source_ids_that_slug_alike_get_a_stable_suffix_and_are_reported(tmp_path):
    """Finding 6: `a/b` and `a b` in a municipal upload failed the whole run with a raw
    IntegrityError traceback."""
    from click.testing import CliRunner

    from tests.clitool import make_cli

    template = (Path(__file__).resolve().parents[1] / "docs" / "templates" / "municipal-upload.csv").read_text()
    header, first = template.splitlines()[:2]
    rest = first.split(",", 1)[1]
    upload = tmp_path / "upload.csv"
    upload.write_text("\n".join([header, f"a/b,{rest}", f"a b,{rest}".replace("54.6872", "54.6873")]) + "\n")
    db = tmp_path / "c.db"

    def ingest():
        return CliRunner().invoke(make_cli(), ["--db", str(db), "ingest", "registry", "municipal-upload", str(upload)],
                                  env={"ATVIRA_CACHE_DIR": str(tmp_path / "cache"),
                                       "ATVIRA_SNAPSHOTS_DIR": str(tmp_path / "snaps")})

    result = ingest()
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "2 added" in result.output and "(its slug was taken)" in result.output, result.output
    import sqlite3

    conn = sqlite3.connect(db)
    ids = sorted(r[0] for r in conn.execute("SELECT facility_id FROM source_records"))
    conn.close()
    assert len(set(ids)) == 2 and ids[1].startswith(ids[0] + "-"), ids
    again = ingest()  # the same ids next time: nothing added, nothing reported
    assert "0 added" in again.output and "slug was taken" not in again.output, again.output


# --- findings 1, 2, 9: a bounded cost per request -------------------------------------------------

def _places(settings, n: int = 50, **fields):
    from directory.store import connect
    from directory.sync import apply_records

    conn = connect(settings.db)
    apply_records(conn, [facility(str(i), lon=25 + i / 10_000, lat=54.6, **fields) for i in range(n)],
                  source="test", scope="t")
    derive(conn)
    conn.close()


def test_whole_world_clusters_at_zoom_30_are_refused_at_once(settings, make_app):
    """Finding 2: /api/facilities/clusters?bbox=-180,-90,180,90&zoom=30 took 7.7 s and 23.8 MB."""
    _places(settings)
    client = make_app().test_client()
    resp = client.get("/api/facilities/clusters?bbox=-180,-90,180,90&zoom=30")
    assert resp.status_code == 400 and resp.get_json()["where"] == "bbox" and "cells" in resp.get_json()["message"]
    world = client.get("/api/facilities/clusters?bbox=-180,-85,180,85&zoom=3")  # the map's world view is fine
    assert world.status_code == 200 and world.get_json()["total"] == 50
    live = client.get("/api/facilities/clusters?bbox=24,54,26,55&zoom=9&category=playground,library")
    assert live.status_code == 200 and live.get_json()["source"] == "live"


def test_live_clusters_read_at_most_the_row_ceiling(settings, store, monkeypatch):
    from directory import clusters
    from directory.query import parse_query

    _places(settings, 30)
    monkeypatch.setattr(clusters, "LIVE_ROW_CEILING", 10)
    answer = clusters.clusters(store, parse_query({"bbox": "24,54,26,55", "status": "active,removed"}), zoom=9)
    assert answer["source"] == "live" and answer["truncated"] and answer["total"] <= 11


def test_near_with_nothing_around_stops_at_the_bounded_radius(settings, store, monkeypatch):
    """Finding 2: near=-100,-60&status=removed grew its search to the whole Earth (3.3 s)."""
    from directory import search
    from directory.query import NEAR_MAX_M, parse_query

    _places(settings, 5)
    radii = []
    real = search._box_around
    monkeypatch.setattr(search, "_box_around", lambda lon, lat, r: radii.append(r) or real(lon, lat, r))
    features, more = search.query_near(store, parse_query({"near": "-100,-60", "status": "removed"}))
    assert features == [] and not more and max(radii) == NEAR_MAX_M <= 100_000
    far = search.query_near(store, parse_query({"near": "24.9,54.6"}))[0]  # ~7 km away: still found
    assert len(far) == 5


def test_changes_pages_by_keyset_and_html_pages_are_bounded(settings, make_app, store):
    """Finding 9: /changes scanned the whole range on every page (60 ms a page at 80k changes,
    even with limit=1), and limit=5000 returned 7 MB of HTML."""
    from directory.changes import list_changes

    _places(settings, 2000)

    def steps(**kw) -> int:
        count = [0]

        def tick():
            count[0] += 1
            return 0

        store.set_progress_handler(tick, 10)
        try:
            list_changes(store, **kw)
        finally:
            store.set_progress_handler(None, 10)
        return count[0]

    first_page, later_page = steps(limit=1), steps(limit=1, after=1000)
    assert first_page < 200 and later_page < 200, (first_page, later_page)  # about a page, not the 2,000 rows
    first = list_changes(store, limit=7)
    second = list_changes(store, limit=7, after=first["next_after"])
    ids = [c["facility_id"] for c in first["changes"] + second["changes"]]
    assert len(ids) == len(set(ids)) == 14
    client = make_app().test_client()
    assert client.get("/changes?limit=5000").status_code == 400
    assert client.get("/changes?limit=200").status_code == 200
    assert client.get("/api/changes?limit=5000").status_code == 200


def test_expensive_requests_beyond_the_worker_slots_get_503_with_retry_after(settings, make_app, monkeypatch):
    """Finding 1: downloads queued the map behind them; now a worker runs one at a time and
    answers the next at once with 503 + Retry-After."""
    _places(settings, 20)
    app = make_app()
    client = app.test_client()
    held = client.get("/downloads/facilities.csv", buffered=False)  # streaming, not yet read: holds the slot
    assert held.status_code == 200
    busy = client.get("/downloads/facilities.geojson")
    assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0 and busy.get_json()["error"] == "Busy"
    assert client.get("/api/facilities?bbox=24,54,26,55").status_code == 200  # the map is never limited
    assert client.get("/api/facilities/clusters?bbox=20,50,30,60&zoom=5").status_code == 200  # the grid neither
    live = client.get("/api/facilities/clusters?bbox=24.9,54.5,25.1,54.7&zoom=14&category=playground,library")
    assert live.status_code == 200 and live.get_json()["source"] == "live"  # a street-zoom live grouping neither
    from directory import clusters

    monkeypatch.setattr(clusters, "EXPENSIVE_LIVE_ROWS", 5)  # now that box counts as a big live grouping
    assert client.get("/api/facilities/clusters?bbox=24.9,54.5,25.1,54.7&zoom=14&category=playground,library"
                      ).status_code == 503
    held.get_data()
    held.close()
    assert client.get("/downloads/facilities.geojson").status_code == 200


def test_filtered_geopackage_is_built_once_per_version_and_filter_within_the_cap(settings, make_app, tmp_path,
                                                                                  monkeypatch):
    """Finding 1: a filtered GeoPackage/SQLite was built per request, uncached."""
    from directory import exports

    _places(settings, 20)
    builds = []
    real = exports.write_file
    monkeypatch.setattr(exports, "write_file", lambda *a, **k: builds.append(a[2]) or real(*a, **k))
    client = make_app(export_cache_bytes=10**9).test_client()
    url = "/downloads/facilities.sqlite?bbox=24,54,26,55"
    first = client.get(url).get_data()
    assert client.get(url).get_data() == first and builds == ["sqlite"]  # the second is the cached file
    client.get("/downloads/facilities.sqlite?bbox=24,54,25.001,55")
    assert builds == ["sqlite", "sqlite"]
    cache = settings.cache_dir / "exports"
    assert len(list(cache.glob("filtered-*.sqlite"))) == 2
    one = max(p.stat().st_size for p in cache.glob("filtered-*.sqlite"))
    small = make_app(export_cache_bytes=one).test_client()
    small.get("/downloads/facilities.sqlite?bbox=24,54,25.5,55")
    assert sum(p.stat().st_size for p in cache.glob("filtered-*.sqlite")) <= max(one, 2 * one)
    assert len(list(cache.glob("filtered-*.sqlite"))) <= 2


def test_an_abandoned_filtered_download_stops_and_leaves_no_file(settings, store, tmp_path):
    """Finding 1: `curl -m1` on a whole-world filtered GeoPackage kept a worker busy for 57 s
    and left a 310 MB temp file; the build now stops at the next batch once the client left."""
    from directory import exports
    from directory.query import parse_query

    _places(settings, 30)
    checks = []

    def gone() -> bool:
        checks.append(1)
        return True  # the client left (curl -m1) before the first batch was written

    chunks = list(exports.download_chunks(settings.db, parse_query({"bbox": "-180,-90,180,90"}), "gpkg",
                                          tmp_dir=tmp_path / "x", cancelled=gone, cache_bytes=10**9))
    assert chunks == [] and len(checks) == 1
    assert [p.name for p in (tmp_path / "x").iterdir() if not p.name.endswith(".lock")] == []


def test_the_disconnect_check_sees_a_closed_socket():
    import socket

    from flask import Flask

    from directory.web.costs import client_gone_check

    server, client = socket.socketpair()
    app = Flask(__name__)
    with app.test_request_context(environ_base={"gunicorn.socket": server}):
        gone = client_gone_check()
        assert not gone()
        client.close()
        assert gone()
    server.close()


def test_status_repair_brings_the_derived_data_up_to_date(tmp_path):
    db = tmp_path / "r.db"
    _seed(db, 20)
    repaired = _status(db, tmp_path, "--repair").output
    assert "derived data refreshed" in repaired and "derived data: current" in repaired, repaired


def test_a_page_of_features_has_a_bytes_ceiling_and_resumes(settings, store):
    from directory import search
    from directory.query import parse_query

    _places(settings, 30)
    whole, _ = search.query_features(store, parse_query({"limit": "100"}))
    small, after = search.query_features(store, parse_query({"limit": "100"}), max_bytes=len(whole[0]) * 5)
    assert 4 <= len(small) <= 6 and after is not None
    rest, _ = search.query_features(store, parse_query({"limit": "100", "after": str(after)}))
    assert small + rest == whole
