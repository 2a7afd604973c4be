"""Incremental derived data (issue 13): after random runs, the map grid, the extent, the audit and
the social-cluster figures updated from the changed facilities equal a full rebuild of a copy.

The runs mix what moves the figures: new places, edits of hours and features, moves across
municipalities, closures, deletions (a full run that no longer lists a record), changes of
kind (state institutions and kindergartens with capacities included), sector and name changes,
unplaced records counted for their stated municipality (audit rule 5), a second source linked
to the same places (single source, conflicts, sector conflicts), and the day moving past the
12-month cut-off (audit rule 4), with register runs that re-list records unchanged.
"""

from __future__ import annotations

import random
import shutil
from datetime import timedelta

import pytest

from directory.areas_store import load_locator
from directory.config import Settings
from directory.derived import refresh_derived
from directory.model import CATEGORIES, FEATURES
from directory.store import connect, get_meta
from directory.sync import apply_records
from tests.audit_data import TODAY
from tests.conftest import facility

TOWNS = {  # a point near each centre: every move lands inside a loaded municipality
    "Vilnius": (25.28, 54.69), "Kaunas": (23.90, 54.90), "Klaipėda": (21.13, 55.71), "Šiauliai": (23.32, 55.93),
    "Panevėžys": (24.35, 55.73), "Utena": (25.60, 55.50), "Alytus": (24.05, 54.40), "Birštonas": (24.03, 54.61),
}
HOURS = [None, "", "unknown", "Mo-Fr 08:00-17:00", "Mo-Su 09:00-21:00", "24/7"]
NAMES = ["Biblioteka", "Seniūnija", "Darželis „Žiogelis“", "Bendruomenės namai", "Kultūros centras", "A", "Ž"]
SECTORS = ["public", "private", "civic", "unknown"]
# Every table the incremental refresh writes, with an order that makes its rows comparable.
TABLES = {
    "map_grid": "zoom, category, gx, gy",
    "audit_indicators": "level, code, category",
    "audit_institutions": "facility_id",
    "audit_checklist": "code",
    "audit_quality": "code",
    "audit_quality_records": "municipality_code, position",
    "audit_counts": "m, e, cat",
    "audit_facts": "facility_id",
    "cluster_counts": "level, code, category, sector",
    "cluster_actors": "level, code, category, sector, position",
    "cluster_areas": "code",
    "cluster_facts": "facility_id",
    "cluster_pairs": "facility_id, category",
}


def _rows(conn, table, order):
    return [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]


def assert_same_derived(inc, full) -> None:
    for key in ("extent", "map_sources"):
        assert get_meta(inc, key) == get_meta(full, key), key
    for table, order in TABLES.items():
        a, b = _rows(inc, table, order), _rows(full, table, order)
        assert len(a) == len(b), (table, len(a), len(b))
        for x, y in zip(a, b, strict=True):
            if x == y:
                continue
            for u, v in zip(x, y, strict=True):
                if isinstance(u, float) or isinstance(v, float):
                    assert u == pytest.approx(v, rel=1e-9, abs=1e-9), (table, x, y)
                else:
                    assert u == v, (table, x, y)


def _place(rng) -> dict:
    if rng.random() < 0.08:  # no position: counted for the municipality its source states
        return {"lon": None, "lat": None, "municipality_code": rng.choice(["13", "19", "21"])}
    lon, lat = TOWNS[rng.choice(sorted(TOWNS))]
    return {"lon": round(lon + rng.uniform(-0.02, 0.02), 6), "lat": round(lat + rng.uniform(-0.015, 0.015), 6),
            "municipality_code": None}


def _features(rng) -> dict:
    return {f: rng.choice(["yes", "no", "limited"]) for f in rng.sample(sorted(FEATURES), rng.randint(0, 5))}


def _verified(rng, today) -> str | None:
    return rng.choice([None, (today - timedelta(days=rng.randint(0, 700))).isoformat()])


def _new(rng, today) -> dict:
    cats = rng.sample(list(CATEGORIES), rng.randint(1, 2))
    return {"name": rng.choice(NAMES), "categories": cats, **_place(rng), "sector": rng.choice(SECTORS),
            "opening_hours": rng.choice(HOURS), "features": _features(rng), "last_verified": _verified(rng, today),
            "operator": rng.choice([None, "Savivaldybė", "VšĮ Vaikai"]),
            "extra": rng.choice([{}, {"capacity": rng.randint(5, 90), "children": rng.randint(0, 80)},
                                 {"capacity": rng.randint(5, 90)}, {"sector_evidence": "name says UAB"}])}


def _mutate(rng, live: dict[str, dict], counter: list[int], today) -> None:
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["add", "add", "hours", "features", "move", "close", "delete", "kind", "sector", "name",
                         "capacity", "verified"])
        if op == "add" or not live:
            counter[0] += 1
            live[f"r{counter[0]}"] = _new(rng, today)
            continue
        rec = live[rng.choice(sorted(live))]
        if op == "hours":
            rec["opening_hours"] = rng.choice(HOURS)
        elif op == "features":
            rec["features"] = _features(rng)
        elif op == "move":
            rec.update(_place(rng))
        elif op == "close":
            rec["status"] = rng.choice(["closed", "active", "unknown"])
        elif op == "delete":
            live.pop(rng.choice(sorted(live)))
        elif op == "kind":
            rec["categories"] = rng.sample(["state_institution", "kindergarten", "library", "townhall",
                                            "school", "playground", "childcare"], rng.randint(1, 2))
        elif op == "sector":
            rec["sector"] = rng.choice(SECTORS)
        elif op == "name":
            rec["name"] = rng.choice(NAMES) + rng.choice(["", " 2"])
        elif op == "capacity":
            rec["extra"] = rng.choice([{}, {"capacity": rng.randint(5, 90), "children": rng.randint(0, 80)}])
        elif op == "verified":
            rec["last_verified"] = _verified(rng, today)


def _records(source: str, live: dict[str, dict]):
    return [facility(sid, source=source, **fields) for sid, fields in sorted(live.items())]


def test_incremental_equals_full_after_random_runs(audit_db, tmp_path):
    db = tmp_path / "inc.db"
    shutil.copy(audit_db, db)
    settings = Settings(db=db, offline=True)
    conn = connect(db)
    today = TODAY
    refresh_derived(conn, settings, today=today, snapshot=False, force=("map", "audit"))
    locator = load_locator(conn)
    rng = random.Random(1313)
    register: dict[str, dict] = {}
    other: dict[str, dict] = {}  # a second source describing some of the register's places
    counter = [0]
    done: set[str] = set()

    def link(c, rec):
        row = c.execute("SELECT facility_id FROM source_records WHERE source = 'reg' AND source_id = ?",
                        (rec.source_id,)).fetchone()
        return None if row is None else row[0]

    for round_ in range(12):
        now = f"{today.isoformat()}T08:00:00Z"
        step = rng.random()
        if step < 0.55:  # the register's whole list (what it no longer lists is removed)
            _mutate(rng, register, counter, today)
            apply_records(conn, _records("reg", register), source="reg", scope="r", locator=locator, now=now)
        elif step < 0.75:  # one or two records, as an approved contribution is (full=False)
            _mutate(rng, register, counter, today)
            some = dict(rng.sample(sorted(register.items()), min(2, len(register))))
            apply_records(conn, _records("reg", some), source="reg", scope="r", locator=locator, now=now,
                          full=False)
        else:  # the other source: same places, its own sector and hours (conflicts)
            for sid in rng.sample(sorted(register), min(3, len(register))):
                other[sid] = {**register[sid], "sector": rng.choice(SECTORS), "opening_hours": rng.choice(HOURS)}
            if other and rng.random() < 0.3:
                other.pop(rng.choice(sorted(other)))
            apply_records(conn, _records("other", other), source="other", scope="o", locator=locator, now=now,
                          matcher=link)
        if rng.random() < 0.3:  # a day passes, or a year: the 12-month cut-off moves
            today += timedelta(days=rng.choice([1, 30, 200, 400]))
        report = refresh_derived(conn, settings, today=today, snapshot=False)
        done.update(report.done)
        copy = tmp_path / f"full{round_}.db"
        conn.execute("VACUUM INTO ?", (str(copy),))
        full = connect(copy)
        refresh_derived(full, settings.with_(db=copy), today=today, snapshot=False, force=("map", "audit"))
        assert_same_derived(conn, full)
        full.close()
        copy.unlink()
    # the rounds were incremental, not full rebuilds that trivially match
    assert {"map grid (incremental)", "audit (incremental)", "social cluster (incremental)"} <= done, done
    assert "audit" not in done, done
    # a change to nothing the cluster reads (the hours) leaves the cluster figures untouched
    before = {t: _rows(conn, t, TABLES[t]) for t in ("cluster_counts", "cluster_actors", "cluster_areas")}
    sid = sorted(register)[0]
    register[sid]["opening_hours"] = "Mo 10:00-11:00" if register[sid]["opening_hours"] != "Mo 10:00-11:00" else None
    apply_records(conn, _records("reg", {sid: register[sid]}), source="reg", scope="r", locator=locator,
                  now=f"{today.isoformat()}T09:00:00Z", full=False)
    refresh_derived(conn, settings, today=today, snapshot=False)
    assert before == {t: _rows(conn, t, TABLES[t]) for t in before}
    conn.close()


def test_a_whole_recompute_when_the_areas_change_or_forced(audit_db, tmp_path):
    db = tmp_path / "a.db"
    shutil.copy(audit_db, db)
    settings = Settings(db=db, offline=True)
    conn = connect(db)
    refresh_derived(conn, settings, today=TODAY, snapshot=False)
    apply_records(conn, [facility("x", categories=["library"], sector="public")], source="t", scope="t",
                  locator=load_locator(conn), full=False)
    assert "audit (incremental)" in refresh_derived(conn, settings, today=TODAY, snapshot=False).done
    # `atvira audit --recompute`: whole, even when current
    assert "audit" in refresh_derived(conn, settings, today=TODAY, snapshot=False, force=("audit",)).done
    # the areas changed (population of one eldership): whole
    conn.execute("UPDATE areas SET population = population + 1 WHERE level = 'eldership'"
                 " AND code = (SELECT min(code) FROM areas WHERE level = 'eldership')")
    assert "audit" in refresh_derived(conn, settings, today=TODAY, snapshot=False).done
    conn.close()
