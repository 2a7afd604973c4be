"""The fast path (issue 13): pages assembled from ready feature text give the same bytes as the
SQL feature builder, and incremental derived data equals a full rebuild."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from directory import search
from directory.features import feature_collection, feature_collection_joined
from directory.model import CATEGORIES, FEATURES
from directory.query import FacilityQuery
from directory.store import connect
from directory.sync import apply_records
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
    text, count, nxt = search.query_page(conn, query)
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
