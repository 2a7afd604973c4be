"""The fast path (issue 13): pages assembled from ready feature text give the same bytes as the
SQL feature builder, and incremental derived data equals a full rebuild."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from directory import exports, search
from directory.areas_store import load_locator
from directory.config import Settings
from directory.derived import refresh_derived
from directory.features import feature_collection, feature_collection_joined
from directory.model import CATEGORIES, FEATURES
from directory.query import FacilityQuery
from directory.store import connect, get_meta
from directory.sync import apply_records
from tests.audit_data import TODAY
from tests.conftest import derive, facility

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
    return feature_collection_joined(text, count, next_url=None if nxt is None else str(nxt)), nxt


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

GRID_SUMS = ("sum_lon", "sum_lat")
AUDIT_TABLES = {
    "audit_indicators": "level, code, category",
    "audit_institutions": "facility_id",
    "audit_checklist": "code",
    "audit_quality": "code",
    "audit_quality_records": "municipality_code, position",
    "audit_counts": "m, e, cat",
}


def _rows(conn, table, order):
    return [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]


def _same_rows(a, b, where):
    assert len(a) == len(b), (where, len(a), len(b))
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, float) or isinstance(v, float):
                assert u == pytest.approx(v, rel=1e-9, abs=1e-7), (where, x, y)
            else:
                assert u == v, (where, x, y)


def _assert_derived_equal(inc, full):
    _same_rows(_rows(inc, "map_grid", "zoom, category, gx, gy"), _rows(full, "map_grid", "zoom, category, gx, gy"),
               "map_grid")
    for key in ("extent", "map_sources"):
        assert get_meta(inc, key) == get_meta(full, key), key
    for table, order in AUDIT_TABLES.items():
        _same_rows(_rows(inc, table, order), _rows(full, table, order), table)


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
            _assert_derived_equal(conn, full)
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
