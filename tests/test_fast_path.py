"""The fast path (issue 13): pages assembled from ready feature text give the same bytes as the
SQL feature builder, and incremental derived data equals a full rebuild."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import shutil
from datetime import UTC, datetime, timedelta

from directory import clock, exports, search
from directory.areas_store import load_locator
from directory.config import Settings
from directory.derived import refresh_derived
from directory.features import feature_collection, feature_collection_joined
from directory.model import CATEGORIES, FEATURES
from directory.query import FacilityQuery
from directory.store import connect
from directory.sync import apply_records
from tests.audit_data import TODAY
from tests.conftest import derive, facility
from tests.test_derived_incremental import assert_same_derived

HOURS = [
    None, "", "24/7", "Mo-Fr 08:00-17:00", "Mo-Fr 08:00-17:00; Sa 10:00-14:00", "Mo-Su 09:00-21:00",
    "off", "unknown", "Mo-Fr 07:00-19:00; PH off", "not hours at all", "Tu,Th 12:00-18:00 \"by appointment\"",
    "Mo-Fr 09:00-12:00,13:00-18:00", "sunrise-sunset",
]
NAMES = ["Vaikų žaidimų aikštelė", 'Kavinė "Saulė"', "\"open_state\":\"@open_state@\"", "a\\b", "<b>x</b>",
         "Biblioteka", "Darželis „Žiogelis“", "=1+1"]


def _records(rng: random.Random, n: int, *, source: str = "test"):
    cats = list(CATEGORIES)
    feats = list(FEATURES)
    out = []
    for i in range(n):
        positioned = rng.random() > 0.05
        out.append(facility(
            str(i), source=source, name=rng.choice(NAMES) + f" {i}",
            categories=rng.sample(cats, rng.randint(1, 2)),
            lon=round(25.0 + rng.random() * 0.6, 7) if positioned else None,
            lat=round(54.5 + rng.random() * 0.4, 7) if positioned else None,
            opening_hours=rng.choice(HOURS),
            features={f: rng.choice(["yes", "no", "limited"]) for f in rng.sample(feats, rng.randint(0, 3))},
            address=rng.choice([None, "Gedimino pr. 1, Vilnius", "Ąžuolų g. 5"]),
            operator=rng.choice([None, "Savivaldybė"]),
            status=rng.choice(["active", "active", "closed", "unknown"]),
        ))
    return out


def _old_page(conn, query):
    feats, nxt = search.query_features(conn, query)
    return feature_collection(feats, next_url=None if nxt is None else str(nxt)), nxt


def _new_page(conn, query):
    text, count, nxt, _until = search.query_page(conn, query)
    return feature_collection_joined(text.decode(), count, next_url=None if nxt is None else str(nxt)), nxt


def test_ready_page_is_byte_for_byte_the_sql_builder(db_path):
    rng = random.Random(13)
    conn = connect(db_path)
    apply_records(conn, _records(rng, 300), source="test", scope="s")
    derive(conn)
    # a second run edits, moves and removes some, so the ready text is rewritten on updates too
    edited = _records(random.Random(14), 250)
    apply_records(conn, edited, source="test", scope="s")
    derive(conn)
    assert conn.execute("SELECT count(*) FROM facilities WHERE feature_head IS NULL").fetchone()[0] == 0
    reader = connect(db_path, readonly=True)
    base = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    # instants forward and back across opening and closing times (the state table is re-evaluated)
    instants = [base + timedelta(hours=h, minutes=m) for h, m in
                [(0, 0), (1, 0), (2, 59), (3, 0), (10, 30), (40, 0), (1, 0), (0, 0), (200, 0)]]
    queries = [
        FacilityQuery(bbox=(25.0, 54.5, 25.6, 54.9)),
        FacilityQuery(bbox=(25.1, 54.6, 25.3, 54.7), limit=7),
        FacilityQuery(limit=50),
        FacilityQuery(categories=(list(CATEGORIES)[0],), limit=20),
        FacilityQuery(q="darzelis"),
        FacilityQuery(bbox=(25.0, 54.5, 25.6, 54.9), open_states=("open",), limit=30),
        FacilityQuery(statuses=("active", "closed", "unknown", "removed"), limit=1000),
        FacilityQuery(bbox=(0.0, 0.0, 1.0, 1.0)),
    ]
    compared = 0
    for now in instants:
        for q in queries:
            after = None
            for _ in range(50):  # every page, following the cursor
                query = FacilityQuery(**{**{f: getattr(q, f) for f in q.__dataclass_fields__},
                                         "now": now, "after": after})
                old, old_next = _old_page(reader, query)
                new, new_next = _new_page(reader, query)
                assert new == old, (now, q)
                json.loads(new)
                compared += 1
                if old_next is None:
                    break
                after = old_next
    assert compared > 100
    # rows without ready text (written by an older version) still answer the same
    conn.execute("UPDATE facilities SET feature_head = NULL, feature_tail = NULL WHERE rid % 3 = 0")
    query = FacilityQuery(limit=1000, now=base)
    assert _new_page(reader, query)[0] == _old_page(reader, query)[0]
    reader.close()
    conn.close()


def test_box_pages_from_the_rtree_alone_are_the_general_query(db_path, monkeypatch):
    """The plain bbox page reads its rids from the map-cell index (search._cell_page) or the
    R*Tree alone (search._box_page): edges through a facility's exact coordinates and on cell
    boundaries, removed facilities, small and large pages, and the rid bound both holding and
    too low (the second, unbounded statement) give the general query's pages."""
    rng = random.Random(21)
    conn = connect(db_path)
    apply_records(conn, _records(rng, 400), source="test", scope="s")
    apply_records(conn, _records(random.Random(22), 330), source="test", scope="s")  # removes 70
    derive(conn)
    assert conn.execute("SELECT count(*) FROM facilities WHERE status = 'removed'").fetchone()[0] > 0
    reader = connect(db_path, readonly=True)
    points = reader.execute("SELECT lon, lat FROM facilities WHERE lon IS NOT NULL ORDER BY rid LIMIT 40").fetchall()
    boxes = [(25.0, 54.5, 25.6, 54.9), (25.1, 54.6, 25.3, 54.7)]
    for i in range(0, 40, 4):  # each edge exactly on a stored coordinate (float32 rounding in the R*Tree)
        xs = sorted((points[i][0], points[i + 1][0]))
        ys = sorted((points[i + 2][1], points[i + 3][1]))
        boxes.append((xs[0], ys[0], xs[1], ys[1]))
        # just inside the stored coordinates: the R*Tree's float32 box still overlaps the edge
        # facilities, their doubles do not
        boxes.append((xs[0] + 1e-7, ys[0] + 1e-7, xs[1] - 1e-7, ys[1] - 1e-7))
    statuses = [("active", "closed", "unknown"), ("active", "closed", "unknown", "removed"),
                ("unknown", "closed", "active")]
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    compared = 0
    # boxes on map-cell boundaries (store.MAP_CELL_SQL: 0.01 x 0.005 degrees), and one cell wide
    boxes += [(25.1, 54.6, 25.2, 54.65), (25.11, 54.605, 25.12, 54.61), (25.3, 54.7, 25.3, 54.7)]
    # the map-cell index (search._cell_page) and, with no box small enough for it, the R*Tree alone
    # (search._box_page); with reach 0 the first, bounded statement always falls short
    for cells, reach in ((search.MAX_CELLS, search.RID_REACH), (search.MAX_CELLS, 0), (0, search.RID_REACH), (0, 0)):
        monkeypatch.setattr(search, "MAX_CELLS", cells)
        monkeypatch.setattr(search, "RID_REACH", reach)
        for box in boxes:
            for st in statuses:
                for limit in (1, 7, 500):
                    after = None
                    for _ in range(12):  # the first pages (their cursors cross the rid bound)
                        query = FacilityQuery(bbox=box, statuses=st, limit=limit, after=after, now=now)
                        assert search._plain_box(query)
                        old, old_next = _old_page(reader, query)
                        new, new_next = _new_page(reader, query)
                        assert new == old, (box, st, limit, after)
                        compared += 1
                        if old_next is None:
                            break
                        after = old_next
    assert compared > 1200
    reader.close()
    conn.close()


def test_box_pages_from_the_map_bands_are_the_general_query(db_path, monkeypatch):
    """A box with no rid bound read by map band (search._cell_page over facilities_map_band):
    boxes covering cells in part, edges on band and cell boundaries and through stored
    coordinates, removed facilities, and paging with `after` give the general query's pages,
    whichever index _bands_cheaper picks."""
    rng = random.Random(31)
    conn = connect(db_path)

    def placed(records, lon, lat, size):  # a dense patch: partly covered cells and bands hold many rows
        return [dataclasses.replace(r, lon=round(lon + rng.random() * size, 7), lat=round(lat + rng.random() * size / 2, 7))
                for r in records]

    apply_records(conn, _records(rng, 300) + placed(_records(rng, 500, source="test")[300:], 25.2, 54.65, 0.03),
                  source="test", scope="s")
    apply_records(conn, _records(random.Random(32), 230) + placed(_records(rng, 500)[300:], 25.2, 54.65, 0.03),
                  source="test", scope="s")  # removes 70, moves the patch's rows within it
    derive(conn)
    reader = connect(db_path, readonly=True)
    assert reader.execute("SELECT count(*) FROM facilities WHERE status = 'removed'").fetchone()[0] > 0
    points = reader.execute("SELECT lon, lat FROM facilities WHERE lon BETWEEN 25.2 AND 25.23 AND lat BETWEEN"
                            " 54.65 AND 54.665 ORDER BY rid LIMIT 40").fetchall()
    boxes = [(25.1, 54.6, 25.3, 54.7), (25.203, 54.6512, 25.2167, 54.6584), (25.2, 54.652, 25.23, 54.653),
             (25.205, 54.6543, 25.215, 54.6543), (25.0, 54.5, 25.6, 54.9), (25.21, 54.655, 25.22, 54.66),
             (25.2105, 54.55, 25.2115, 54.85)]  # the last tall and narrow: fewer cells than bands to seek
    for i in range(0, 40, 4):  # edges exactly on stored coordinates, just inside them, on band boundaries
        xs = sorted((points[i][0], points[i + 1][0]))
        ys = sorted((points[i + 2][1], points[i + 3][1]))
        boxes.append((xs[0], ys[0], xs[1], ys[1]))
        boxes.append((xs[0] + 1e-7, ys[0] + 1e-7, xs[1] - 1e-7, ys[1] - 1e-7))
        boxes.append((xs[0], int(ys[0] * 1000) / 1000, xs[1], int(ys[1] * 1000) / 1000))
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    used = {True: 0, False: 0}
    choose = search._bands_cheaper

    def spy(*args):
        used[choose(*args)] += 1
        return forced if forced is not None else choose(*args)

    monkeypatch.setattr(search, "_bands_cheaper", spy)
    compared = 0
    for forced in (True, None):
        for box in boxes:
            for st in (("active", "closed", "unknown"), ("active", "closed", "unknown", "removed")):
                for limit in (5, 40, 500):
                    after = None
                    for _ in range(100):
                        query = FacilityQuery(bbox=box, statuses=st, limit=limit, after=after, now=now)
                        old, old_next = _old_page(reader, query)
                        new, new_next = _new_page(reader, query)
                        assert new == old, (box, st, limit, after, forced)
                        compared += 1
                        if old_next is None:
                            break
                        after = old_next
    assert compared > 300 and used[True] and used[False]
    reader.close()
    conn.close()


def test_api_answer_is_the_old_builders(settings, client):
    conn = connect(settings.db)
    apply_records(conn, _records(random.Random(5), 120), source="test", scope="s")
    derive(conn)
    conn.close()
    body = client.get("/api/facilities?bbox=25,54.5,25.6,54.9&limit=40").get_data(as_text=True)
    reader = connect(settings.db, readonly=True)
    feats, nxt = search.query_features(reader, FacilityQuery(bbox=(25.0, 54.5, 25.6, 54.9), limit=40))
    reader.close()
    doc = json.loads(body)
    assert doc["numberReturned"] == 40 and doc["next"].endswith(f"after={nxt}")
    assert body == feature_collection(feats, next_url=doc["next"])


# --- incremental derived data ----------------------------------------------------------------

def _random_run(rng, live, next_id):
    """Change the live records at random: add, edit, move, remove, recategorise, close."""
    cats = list(CATEGORIES)
    for _ in range(rng.randint(1, 6)):
        op = rng.choice(["add", "add", "edit", "move", "remove", "recategorise", "close"])
        if op == "add" or not live:
            sid = f"r{next_id[0]}"
            next_id[0] += 1
            lon, lat = (25.28 + rng.uniform(-0.05, 0.05), 54.69 + rng.uniform(-0.03, 0.03)) if rng.random() < 0.5 \
                else (rng.uniform(23.5, 25.8), rng.uniform(54.4, 55.7))
            live[sid] = dict(name=f"Vieta {sid}", categories=rng.sample(cats, rng.randint(1, 2)), lon=lon, lat=lat,
                             sector=rng.choice(["public", "unknown", "private"]),
                             opening_hours=rng.choice(HOURS), last_verified=rng.choice([None, "2026-01-01", "2024-01-01"]),
                             features={f: rng.choice(["yes", "no", "limited"])
                                       for f in rng.sample(list(FEATURES), rng.randint(0, 4))},
                             extra=rng.choice([{}, {"capacity": rng.randint(10, 90), "children": rng.randint(0, 80)}]))
            continue
        sid = rng.choice(sorted(live))
        rec = live[sid]
        if op == "edit":
            rec["features"] = {f: rng.choice(["yes", "no"]) for f in rng.sample(list(FEATURES), rng.randint(0, 3))}
            rec["opening_hours"] = rng.choice(HOURS)
        elif op == "move":
            rec["lon"], rec["lat"] = rng.uniform(23.5, 25.8), rng.uniform(54.4, 55.7)
        elif op == "remove":
            del live[sid]
        elif op == "recategorise":
            rec["categories"] = rng.sample(cats, rng.randint(1, 2))
        elif op == "close":
            rec["status"] = rng.choice(["closed", "active", "unknown"])


def test_incremental_derived_equals_a_full_rebuild(audit_db, tmp_path):
    db = tmp_path / "inc.db"
    shutil.copy(audit_db, db)
    settings = Settings(db=db, cache_dir=tmp_path / "cache", offline=True)
    conn = connect(db)
    refresh_derived(conn, settings, today=TODAY, snapshot=False, force=("map", "audit"))
    locator = load_locator(conn)
    rng = random.Random(1313)
    live: dict[str, dict] = {}
    next_id = [0]
    kinds = set()
    for round_ in range(15):
        _random_run(rng, live, next_id)
        apply_records(conn, [facility(sid, source="rand", **fields) for sid, fields in live.items()],
                      source="rand", scope="r", locator=locator)
        report = refresh_derived(conn, settings, today=TODAY, snapshot=False)
        kinds.update(report.done)
        if round_ % 5 == 4:
            copy = tmp_path / f"full{round_}.db"
            conn.execute("VACUUM INTO ?", (str(copy),))
            full = connect(copy)
            refresh_derived(full, settings.with_(db=copy), today=TODAY, snapshot=False, force=("map", "audit"))
            assert_same_derived(conn, full)  # every table the incremental refresh writes
            full.close()
    # the runs above were incremental (not full rebuilds that trivially match)
    assert "map grid (incremental)" in kinds
    assert "audit (incremental)" in kinds, kinds
    conn.close()


def test_exports_from_ready_provenance_equal_the_probe(db_path):
    """The CSV's provenance cells and the GeoJSON's sources come from text kept ready per facility;
    without it (rows written by an older version) the per-row probe gives the same bytes."""
    conn = connect(db_path)
    rng = random.Random(7)
    apply_records(conn, _records(rng, 80), source="test", scope="s")
    # a second source describing some of the same places, under another licence
    apply_records(conn, _records(random.Random(8), 30, source="other"), source="other", scope="o")
    derive(conn)
    whole = FacilityQuery(statuses=("active", "closed", "unknown", "removed"))
    ready_csv = b"".join(exports.csv_chunks(conn, whole))
    ready_geojson = b"".join(exports.geojson_chunks(conn, whole))
    assert conn.execute("SELECT count(*) FROM facilities WHERE provenance_csv IS NULL OR sources_json IS NULL"
                        ).fetchone()[0] == 0
    conn.execute("UPDATE facilities SET provenance_csv = NULL, sources_json = NULL")
    assert b"".join(exports.csv_chunks(conn, whole)) == ready_csv
    assert b"".join(exports.geojson_chunks(conn, whole)) == ready_geojson
    conn.close()


def test_a_pinned_answer_with_hours_is_cached_only_until_the_next_opening_or_closing(settings, client):
    conn = connect(settings.db)
    apply_records(conn, [facility("h", opening_hours="Mo-Su 09:00-21:00"), facility("n")], source="test", scope="s")
    derive(conn)
    conn.close()
    version = client.get("/api/version").get_json()["version"]
    resp = client.get(f"/api/facilities?bbox=25,54,26,55&v={version}")
    age = int(resp.headers["Cache-Control"].split("max-age=")[1])
    until = int(resp.headers["ETag"].rsplit("-", 1)[1].rstrip('"'))
    now = datetime.now(UTC).timestamp()
    assert "public" in resp.headers["Cache-Control"] and 0 <= age <= until - now + 1 and age <= 3600
    assert until - now <= 12 * 3600 + 60  # 09:00 or 21:00 local, whichever is next
    # without hours nothing in the answer depends on the clock: the longest max-age, no time bucket
    resp = client.get(f"/api/facilities?bbox=25,54,26,55&v={version}&q=n")
    assert resp.headers["Cache-Control"] == "public, max-age=3600"
    assert resp.headers["ETag"] == f'W/"atvira-{version}"'
    # an old version is redirected to the current one, and the redirect is never stored
    old = client.get("/api/facilities?bbox=25,54,26,55&v=0")
    assert old.status_code == 302 and old.headers["Cache-Control"] == "no-store"
    assert old.headers["Location"].startswith("/api/facilities?") and f"v={version}" in old.headers["Location"]


# --- the WSGI fast path (directory.web.fastpath) ----------------------------------------------

def _answer(app, fast: bool, url: str, **kw):
    app.wsgi_app.enabled = fast
    resp = app.test_client().get(url, **kw)
    headers = [(k, re.sub(r"'nonce-[^']+'", "'nonce-N'", v)) for k, v in resp.headers.items()]
    return resp.status_code, headers, resp.get_data()


def test_fast_pages_answer_as_flask_does(settings, make_app, monkeypatch):
    """The map's bbox pages answered before Flask's machinery carry the same status, the same
    headers in the same order (bar the CSP nonce, fresh each time) and the same bytes as the
    view behind every hook; whatever the fast path does not handle, Flask still answers.

    The clock is frozen: an answer's max-age counts down to the next opening or closing, so two
    answers a second apart differ by that second (this test failed so once, under load)."""
    from directory.web.fastpath import FastPages

    frozen = clock.now()
    monkeypatch.setattr(clock, "now", lambda: frozen)
    from tests.servers import TEST_SECRET_KEY

    conn = connect(settings.db)
    apply_records(conn, _records(random.Random(8), 150), source="test", scope="s")
    derive(conn)
    conn.close()
    box = "25,54.5,25.6,54.9"
    for app, base in ((make_app(), "http://localhost"),
                      (make_app(production=True, secret_key=TEST_SECRET_KEY, server_name="atvira.example"),
                       "https://localhost"),
                      (make_app(trusted_hosts="a.example,b.example"), "http://a.example")):
        assert isinstance(app.wsgi_app, FastPages) and app.wsgi_app.enabled
        version = app.test_client().get("/api/version", base_url=base).get_json()["version"]
        urls = [f"/api/facilities?bbox={box}", f"/api/facilities?bbox={box}&limit=7",
                f"/api/facilities?bbox={box}&limit=7&after=30", f"/api/facilities?bbox={box}&limit=7&v={version}",
                f"/api/facilities?bbox={box}&v={version}&status=closed,active&category={list(CATEGORIES)[0]}",
                f"/api/facilities?bbox={box}&open_now=1&limit=20", f"/api/facilities?bbox={box}&feature=wheelchair",
                f"/api/facilities?limit=7&bbox={box}&limit=3",  # a repeated parameter: the first counts
                # handed to Flask: a stale version (redirect), bad values (400), other parameters
                f"/api/facilities?bbox={box}&v=old", f"/api/facilities?bbox={box}&limit=0",
                f"/api/facilities?bbox={box}&bogus=1", "/api/facilities?bbox=1,2", f"/api/facilities?bbox={box}&q=x",
                f"/api/facilities?bbox={box}&lang=en", "/api/facilities?limit=5", "/api/facilities/clusters?bbox=1,2,3,4"]
        answered = []
        real = app.wsgi_app.answer
        monkeypatch.setattr(app.wsgi_app, "answer",
                            lambda environ, seen=answered, real=real: seen.append(real(environ)) or seen[-1])
        for url in urls:
            fast = _answer(app, True, url, base_url=base)
            assert fast == _answer(app, False, url, base_url=base), url
        assert [a is not None for a in answered] == [True] * 8 + [False] * 7  # (the last: another path)
        # an untrusted Host, a conditional request and HEAD are Flask's too
        assert _answer(app, True, urls[0], base_url="http://evil.example")[0] == 400
        etag = dict(_answer(app, True, urls[0], base_url=base)[1])["ETag"]
        assert _answer(app, True, urls[0], base_url=base, headers={"If-None-Match": etag})[0] == 304
        assert app.test_client().head(urls[0], base_url=base).status_code == 200
        seen = len(answered)
        signed_in = app.test_client()
        signed_in.set_cookie("session", "x", domain=base.split("//")[1])
        assert signed_in.get(urls[0], base_url=base).status_code == 200
        assert len(answered) == seen  # a session cookie: Flask's
    assert _answer(app, True, urls[0], base_url=base)[0] == 200
    body = json.loads(_answer(app, True, urls[1], base_url=base)[2])
    assert body["numberReturned"] == 7 and body["next"].startswith("http://a.example/api/facilities?")
    # a default limit on every request turns the fast path off (the limiter must see them all)
    monkeypatch.setitem(app.config, "RATELIMIT_DEFAULT", "1/second")
    assert not FastPages(app).enabled


def test_a_reader_keeps_the_stores_small_facts_until_another_connection_commits(settings, make_app):
    """A serving reader keeps the content version, the grid's totals, max(rid) ... between
    requests (directory.storememo), and a commit by another connection between two requests on
    the same reader shows in the very next answer: its body, its ETag and the pinned version."""
    conn = connect(settings.db)
    apply_records(conn, _records(random.Random(21), 120), source="test", scope="s")
    derive(conn)
    app = make_app()
    url = "/api/facilities?bbox=25,54.5,25.6,54.9&limit=500"
    for fast in (True, False):
        app.wsgi_app.enabled = fast
        web = app.test_client()
        reader = app.extensions["atvira_readers"].get()
        first = web.get(url)
        version = web.get("/api/version").get_json()["version"]
        seen: list[str] = []
        reader.set_trace_callback(seen.append)
        again = web.get(url)
        reader.set_trace_callback(None)
        assert again.get_data() == first.get_data() and again.headers["ETag"] == first.headers["ETag"]
        # unchanged store: no statement asks for the version, max(rid) or the grid's total again
        assert not [s for s in seen if "FROM changes" in s or "max(rid)" in s or "zoom = 0" in s], seen
        # another connection commits a new facility inside the box
        apply_records(conn, [facility(f"new-{fast}", lon=25.3, lat=54.7, name=f"Naujas {fast}")],
                      source="test", scope=f"n-{fast}")
        derive(conn)
        after = web.get(url)
        assert app.extensions["atvira_readers"].get() is reader  # the same handle saw it
        doc = json.loads(after.get_data())
        assert doc["numberReturned"] == json.loads(first.get_data())["numberReturned"] + 1
        assert f"Naujas {fast}" in after.get_data(as_text=True)
        assert after.headers["ETag"] != first.headers["ETag"]
        assert web.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 200
        newer = web.get("/api/version").get_json()["version"]
        assert newer != version
        assert web.get(f"{url}&v={version}").status_code == 302
        pinned = web.get(f"{url}&v={newer}")
        assert pinned.status_code == 200 and pinned.get_data() == after.get_data()
        # and the answer is what a fresh process (a new reader) gives
        fresh = make_app()
        fresh.wsgi_app.enabled = fast
        assert fresh.test_client().get(url).get_data() == after.get_data()
    conn.close()


def test_grid_estimate_by_column_sums_is_the_listed_sum(db_path, monkeypatch):
    """clusters.estimate_rows' one-key statement (a sum per grid column) gives the sum over the
    column list (its general statement), at every grid level a box can pick, for the map's
    request and a category."""
    from directory import clusters

    rng = random.Random(41)
    conn = connect(db_path)
    apply_records(conn, _records(rng, 300), source="test", scope="s")
    derive(conn)
    reader = connect(db_path, readonly=True)
    boxes = [(25.0, 54.5, 25.6, 54.9), (25.2, 54.6, 25.2001, 54.6001)]
    for _ in range(60):
        w, s = 25.0 + rng.random() * 0.6, 54.5 + rng.random() * 0.4
        size = 10 ** rng.uniform(-4, 0.5)
        boxes.append((w, s, min(w + size, 180.0), min(s + size / 2, 90.0)))
    queries = [FacilityQuery(bbox=b) for b in boxes] + [FacilityQuery(bbox=b, categories=(list(CATEGORIES)[0],))
                                                          for b in boxes]
    fast = [clusters.estimate_rows(reader, q) for q in queries]
    monkeypatch.setattr(clusters, "_COLUMN_SUMS", [])
    assert [clusters.estimate_rows(reader, q) for q in queries] == fast
    assert sum(f[0] for f in fast) > 0
    reader.close()
    conn.close()
