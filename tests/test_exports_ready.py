"""The CSV export from the lines kept ready per facility (facilities.csv_line, issue 13) is byte
for byte the CSV the per-row SQL builder writes, whole and filtered, and the ready line follows
every change of what it is made of: a run, a second source's record, an approval, an area's name,
and a write that bypasses refresh_ready (the line is then not ready, never stale)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from directory import contributions as core
from directory import exports
from directory.accounts import municipality_names
from directory.areas_store import load_areas, load_locator, save_areas
from directory.config import Settings
from directory.derived import refresh_derived
from directory.model import CATEGORIES, EXTRA_FIELDS, FEATURES
from directory.private_store import connect_private
from directory.query import FacilityQuery, parse_query
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import derive, facility
from tests.contrib_data import EDITOR_VILNIUS, VILNIUS, build_public, copy_store

EVERY_STATUS = FacilityQuery(statuses=("active", "closed", "unknown", "removed"))
# What a spreadsheet would run, quotes, commas, line breaks, letters beyond ASCII, JSON-ish text.
NAMES = ["=SUM(A1:A9)", "+370 5 123", "-1", "@cmd", "\tTab", "\rCR", 'Kavinė "Saulė", Vilnius',
         "Eilutė\nantra", "Ąžuolų „Žiogelis“", "a\\b", "'quoted'", "Biblioteka", "ėę€🙂", ""]
LICENCES = ["CC-BY-4.0", "ODbL-1.0", "=HYPERLINK(\"x\")", "Atvira, su sąlygomis"]


def _records(rng: random.Random, n: int, *, source: str = "test", licence: str = "CC-BY-4.0"):
    cats, feats, extras = list(CATEGORIES), list(FEATURES), list(EXTRA_FIELDS)
    out = []
    for i in range(n):
        extra = {}
        if rng.random() < 0.3:
            key = rng.choice(extras)
            kind = EXTRA_FIELDS[key][0]
            extra[key] = 7 if kind == "integer" else (["lt", "=en"] if kind == "list" else rng.choice(NAMES))
        positioned = rng.random() > 0.05
        out.append(facility(
            f"{source}-{i}", source=source, licence=licence, name=rng.choice(NAMES) + f" {i}",
            categories=rng.sample(cats, rng.randint(1, 2)),
            lon=round(25.0 + rng.random() * 0.6, 7) if positioned else None,
            lat=round(54.5 + rng.random() * 0.4, 7) if positioned else None,
            opening_hours=rng.choice([None, "Mo-Fr 08:00-17:00", "=1", "24/7"]),
            features={f: rng.choice(["yes", "no", "limited"]) for f in rng.sample(feats, rng.randint(0, 3))},
            address=rng.choice([None, "Gedimino pr. 1, Vilnius", "-5 g.", 'Ąžuolų "g." 5\n2 a.']),
            operator=rng.choice([None, "Savivaldybė", "@operator", 'UAB "X"']),
            status=rng.choice(["active", "active", "closed", "unknown"]),
            last_verified=rng.choice([None, "2026-01-15", "+2026"]),
            extra=extra,
        ))
    return out


def _csv(conn, query=EVERY_STATUS, *, batch: int = exports.BATCH) -> bytes:
    return b"".join(exports.csv_chunks(conn, query, batch=batch))


def _builder_csv(conn, query=EVERY_STATUS) -> bytes:
    """The CSV as the per-row SQL builder writes it (what every export was before the ready line):
    inside a transaction that is rolled back, so the store keeps its ready lines."""
    conn.execute("SAVEPOINT old_path")
    try:
        conn.execute("UPDATE facilities SET csv_line = NULL")
        return _csv(conn, query)
    finally:
        conn.execute("ROLLBACK TO old_path")
        conn.execute("RELEASE old_path")


def _not_ready(conn) -> int:
    return conn.execute("SELECT count(*) FROM facilities WHERE csv_line IS NULL").fetchone()[0]


def _line(conn, facility_id: str) -> str | None:
    return conn.execute("SELECT csv_line FROM facilities WHERE id = ?", (facility_id,)).fetchone()[0]


@pytest.fixture
def mixed(db_path):
    """A store of awkward text: two sources (one record each, some places described by both under
    different licences), a run that changes some, a removal sweep."""
    conn = connect(db_path)
    apply_records(conn, _records(random.Random(1), 120), source="test", scope="s")
    other = _records(random.Random(2), 40, source="other", licence="ODbL-1.0")
    apply_records(conn, other, source="other", scope="o")
    rng = random.Random(3)
    changed = _records(random.Random(1), 120)[:90]  # 30 swept away as removed
    for i, rec in enumerate(changed):
        if rng.random() < 0.3:
            changed[i] = replace(rec, name=rng.choice(NAMES) + " pakeista", licence=rng.choice(LICENCES))
    apply_records(conn, changed, source="test", scope="s")
    derive(conn)
    yield conn
    conn.close()


def test_the_ready_csv_is_byte_for_byte_the_builders(mixed):
    assert _not_ready(mixed) == 0  # every writer above left its facilities ready
    whole = _csv(mixed)
    assert whole == _builder_csv(mixed)
    assert whole.count(b"\r\n") > 150 and b"'=SUM" in whole and "Ąžuolų".encode() in whole
    assert _csv(mixed, batch=7) == whole  # page boundaries change nothing


@pytest.mark.parametrize("args", [
    {"bbox": "25.1,54.6,25.4,54.8"},
    {"q": "Biblioteka"},
    {"category": "playground,library"},
    {"status": "closed,unknown"},
    {"features": "wheelchair"},
])
def test_a_filtered_slice_is_the_builders_slice(mixed, args):
    query = parse_query(args)
    ready = _csv(mixed, query)
    assert ready == _builder_csv(mixed, query)
    assert 1 < ready.count(b"\r\n") < _csv(mixed).count(b"\r\n")  # a real slice: some rows, not all


def test_a_mixed_store_with_some_lines_not_ready_is_still_the_builders(mixed):
    mixed.execute("UPDATE facilities SET csv_line = NULL WHERE rid % 3 = 0")
    assert _csv(mixed) == _builder_csv(mixed)


def test_a_run_a_second_source_and_a_direct_write_change_the_line(db_path):
    conn = connect(db_path)
    apply_records(conn, [facility("a", name="Senas"), facility("b")], source="test", scope="s")
    fid = conn.execute("SELECT id FROM facilities WHERE source_id = 'a'").fetchone()[0]
    first = _line(conn, fid)
    assert first is not None and "Senas" in first
    # a run that changes the facility rewrites its line
    apply_records(conn, [facility("a", name="=Naujas"), facility("b")], source="test", scope="s")
    second = _line(conn, fid)
    assert second is not None and "\"'=Naujas\"" in second and second != first
    # a write that does not call refresh_ready leaves the line not ready (never stale) ...
    conn.execute("UPDATE facilities SET operator = 'Kitas' WHERE id = ?", (fid,))
    assert _line(conn, fid) is None
    assert "Kitas" in _csv(conn).decode()  # ... and the export builds it on the spot
    # a source record added to the facility outside a run: not ready either
    conn.execute("UPDATE facilities SET csv_line = 'x' WHERE id = ?", (fid,))
    conn.execute("INSERT INTO source_records(source, source_id, facility_id, scope, licence, fetched_at,"
                 " content_hash, data) SELECT 'other', 'z', facility_id, 'o', 'ODbL-1.0', fetched_at, 'h',"
                 " json_set(data, '$.source', 'other', '$.source_id', 'z', '$.licence', 'ODbL-1.0')"
                 " FROM source_records WHERE facility_id = ?", (fid,))
    assert _line(conn, fid) is None
    assert _csv(conn) == _builder_csv(conn)
    # refresh_derived never leaves old text behind: the facility's next run makes it ready again
    apply_records(conn, [facility("a", name="Trečias"), facility("b")], source="test", scope="s")
    line = _line(conn, fid)
    assert line is not None and "other:z" in line and "ODbL-1.0" in line
    assert _csv(conn) == _builder_csv(conn)
    conn.close()


@pytest.fixture(scope="module")
def contrib_template(tmp_path_factory, shared_data) -> Path:
    d = tmp_path_factory.mktemp("contrib-export")
    return build_public(d / "public.db", shared_data, d)


def test_an_approval_changes_the_ready_line(contrib_template, tmp_path):
    db = copy_store(contrib_template, tmp_path / "atvira.db")
    settings = Settings(db=db, cache_dir=tmp_path / "cache", offline=True, tile_url="", snapshots_dir=tmp_path / "s")
    public, private = connect(db), connect_private(settings)
    fid = "osm-node-501"
    before = _line(public, fid)
    assert before is not None and "Mo-Fr 10:00-19:00" in before
    cid = core.submit(private, public, core.Submission(
        kind="report_problem", problem="wrong_hours", facility_id=fid, opening_hours="Mo-Sa 09:00-20:00",
        licence_agreed=True), locator=load_locator(public))
    core.approve(private, public, cid, user=EDITOR_VILNIUS, names=municipality_names(public),
                 locator=load_locator(public))
    refresh_derived(public, settings)
    after = _line(public, fid)
    assert after is not None and "Mo-Sa 09:00-20:00" in after and after != before
    assert _not_ready(public) == 0
    assert _csv(public) == _builder_csv(public)
    public.close()
    private.close()


def test_renaming_an_area_rewrites_the_lines_that_carry_its_name(contrib_template, tmp_path):
    db = copy_store(contrib_template, tmp_path / "atvira.db")
    conn = connect(db)
    fid = "osm-node-501"
    assert conn.execute("SELECT municipality_code FROM facilities WHERE id = ?", (fid,)).fetchone()[0] == VILNIUS
    old_name = conn.execute("SELECT name FROM areas WHERE code = ?", (VILNIUS,)).fetchone()[0]
    assert old_name in _line(conn, fid)
    areas = [replace(a, name="Vilniaus „naujas“ pavadinimas") if a.code == VILNIUS else a for a in load_areas(conn)]
    save_areas(conn, areas)
    line = _line(conn, fid)
    assert line is not None and "Vilniaus „naujas“ pavadinimas" in line and old_name not in line
    assert _not_ready(conn) == 0
    assert _csv(conn) == _builder_csv(conn)
    conn.close()
