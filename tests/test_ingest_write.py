"""The ingest's write side: batched indexes, bulk conflation and the content hash stay what the
per-record code gave (issue 13). Timing is in bench/ingest_write.py, not here."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from directory import ready, sync
from directory.areas_store import load_locator
from directory.conflate import make_matcher, thresholds_from
from directory.derived import refresh_derived
from directory.model import Facility
from directory.ready import DERIVED_META, READY_VERSION, refresh_ready
from directory.store import BULK_TRIGGERS, connect, get_meta
from directory.sync import apply_records
from ingest import osm
from ingest.mapping import load_mapping
from ingest.registry import run_registry
from ingest.runs import LT_OSM, LT_REGISTRY, load_areas

from .conftest import facility


def _osm_sample(shared_data: Path, limit: int | None = None) -> list[Facility]:
    out = []
    for el in osm.read_elements(shared_data / LT_OSM, keep=osm.is_of_interest):
        rec = osm.element_to_facility(el, fetched_at="2026-11-29T12:00:00Z")
        if isinstance(rec, Facility):
            out.append(rec)
        if limit and len(out) >= limit:
            break
    return out


def assert_indexes_agree(conn: sqlite3.Connection) -> None:
    """FTS5, R*Tree and the ready text say exactly what the facilities rows say, and the
    per-row triggers the batches drop are all back."""
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert set(BULK_TRIGGERS) <= triggers
    conn.execute("INSERT INTO facilities_fts(facilities_fts, rank) VALUES ('integrity-check', 1)")
    rows = {r[0]: tuple(r[1:]) for r in conn.execute("SELECT rid, name, address, operator FROM facilities")}
    # The FTS index holds each row's tokens: every row is found by its own name's first word.
    for rid, (name, _address, _operator) in list(rows.items())[:300]:
        word = next((w for w in name.replace('"', " ").split() if w.isalnum()), None)
        if word:
            hits = {r[0] for r in conn.execute("SELECT rowid FROM facilities_fts WHERE facilities_fts MATCH ?",
                                               (f'"{word}"',))}
            assert rid in hits, (rid, name)
    indexed = conn.execute("SELECT count(*) FROM facilities_fts_docsize").fetchone()[0]
    assert indexed == len(rows)
    boxes = {r[0]: r[1:] for r in conn.execute("SELECT rid, min_lon, max_lon, min_lat, max_lat FROM facilities_rtree")}
    placed = {r[0]: r[1:] for r in conn.execute("SELECT rid, lon, lat FROM facilities WHERE lon IS NOT NULL")}
    assert boxes.keys() == placed.keys()
    for rid, (lon, lat) in placed.items():
        min_lon, max_lon, min_lat, max_lat = boxes[rid]
        assert min_lon <= lon <= max_lon and min_lat <= lat <= max_lat
    ready = "SELECT rid, feature_head, feature_tail, sources_json, provenance_csv, csv_line FROM facilities ORDER BY rid"
    before = conn.execute(ready).fetchall()
    conn.execute("SAVEPOINT check_ready")
    refresh_ready(conn)
    fresh = conn.execute(ready).fetchall()
    conn.execute("ROLLBACK TO check_ready")
    conn.execute("RELEASE check_ready")
    assert [tuple(r) for r in before] == [tuple(r) for r in fresh]


def test_indexes_agree_after_each_kind_of_run(store, settings, shared_data):
    matcher = make_matcher(thresholds_from(settings))
    sample = _osm_sample(shared_data, 400)
    # A big first run (batches go through store.bulk_insert), then a small one (the triggers).
    apply_records(store, sample[:300], source="osm", scope="lt", matcher=matcher)
    assert_indexes_agree(store)
    apply_records(store, [facility("a1", name="Mažas darželis", lon=25.28, lat=54.68)], source="t", scope="s")
    assert_indexes_agree(store)
    # The register: merges into OSM places, and new facilities of its own.
    run_registry(store, load_mapping(LT_REGISTRY[0]), [shared_data / LT_REGISTRY[1]], settings=settings,
                 locator=None, fetched_at="2026-11-29T12:00:00Z")
    assert_indexes_agree(store)
    # Updates (new names and positions), removals (the sweep), additions beside them.
    changed = []
    for rec in sample[:300:3]:
        rec.name = (rec.name or "") + " naujas"
        rec.lon += 0.001
        changed.append(rec)
    apply_records(store, changed + sample[300:], source="osm", scope="lt", matcher=matcher)
    assert_indexes_agree(store)
    # Unchanged re-run, then areas loaded: every facility re-placed in its municipality.
    apply_records(store, changed + sample[300:], source="osm", scope="lt", matcher=matcher)
    load_areas(store, settings=settings, from_dir=shared_data / "govlt-powerbi-map-lt", derive=False)
    assert_indexes_agree(store)
    # A run with areas loaded places records by the locator.
    locator = load_locator(store, border_tolerance_m=settings.border_tolerance_m)
    apply_records(store, _osm_sample(shared_data)[400:600], source="osm", scope="more", locator=locator,
                  matcher=matcher)
    assert_indexes_agree(store)


def test_a_failed_bulk_run_leaves_the_store_and_its_triggers(store, shared_data):
    sample = _osm_sample(shared_data, 500)
    apply_records(store, sample[:100], source="osm", scope="lt")
    before = store.execute("SELECT count(*) FROM facilities").fetchone()[0]

    def broken():
        yield from sample[100:450]  # one whole batch of new facilities written, then a failure
        raise ValueError("bad input half-way")

    with pytest.raises(ValueError):
        apply_records(store, broken(), source="osm", scope="lt2")
    assert store.execute("SELECT count(*) FROM facilities").fetchone()[0] == before
    assert_indexes_agree(store)
    # The triggers are back: a plain insert is indexed as before.
    apply_records(store, [facility("b1", name="Vienas", lon=25.1, lat=54.6)], source="t", scope="s")
    assert_indexes_agree(store)


def test_a_failed_first_run_leaves_an_empty_store_and_its_triggers(store, shared_data, monkeypatch):
    """A first run drops its secondary indexes (store.deferred_indexes) and each bulk batch its
    index triggers (store.bulk_insert): a failure half-way brings them back with the empty store."""
    sample = _osm_sample(shared_data, 500)
    monkeypatch.setattr(sync, "BATCH", 200)

    def broken():
        yield from sample  # two whole batches written set-wise, then a failure
        raise ValueError("bad input half-way")

    with pytest.raises(ValueError):
        apply_records(store, broken(), source="osm", scope="lt")
    assert store.execute("SELECT count(*) FROM facilities").fetchone()[0] == 0
    assert store.execute("SELECT count(*) FROM facilities_rtree").fetchone()[0] == 0
    assert_indexes_agree(store)
    apply_records(store, [facility("b1", name="Vienas", lon=25.1, lat=54.6)], source="t", scope="s")
    assert_indexes_agree(store)


def test_batch_and_bulk_sizes(store, shared_data, monkeypatch):
    """Batches smaller than the bulk threshold and records split across batches give the same."""
    sample = _osm_sample(shared_data, 250)
    monkeypatch.setattr(sync, "BATCH", 100)
    apply_records(store, sample, source="osm", scope="lt")
    assert_indexes_agree(store)
    assert store.execute("SELECT count(*) FROM facilities").fetchone()[0] == 250


def _near(rows: list[sqlite3.Row]) -> list[Facility]:
    """OSM records beside real register places: the same name 30 m away, a school in the same
    building, a name variant, two records wanting one place in one batch, one too far."""
    out = []
    for i, r in enumerate(rows):
        cats = json.loads(r["categories"])
        lon, lat = r["lon"] + 0.0004, r["lat"] + 0.0002
        variants = [r["name"], f"Lopšelis-darželis „{r['name']}“", f"{r['name']} progimnazija"]
        out.append(Facility(source="osm", source_id=f"node/{i}", name=variants[i % 3], categories=cats,
                            lon=lon, lat=lat, licence="ODbL-1.0"))
        if i % 5 == 0:  # a second record for the same place: only one of them may take it
            out.append(Facility(source="osm", source_id=f"node/{i}b", name=r["name"], categories=cats,
                                lon=lon - 0.0001, lat=lat, licence="ODbL-1.0"))
        if i % 7 == 0:
            out.append(Facility(source="osm", source_id=f"node/{i}far", name=r["name"], categories=cats,
                                lon=r["lon"] + 0.01, lat=r["lat"], licence="ODbL-1.0"))
        if i % 4 == 1:  # inside the search box, but some 175 m away (diagonally)
            out.append(Facility(source="osm", source_id=f"node/{i}corner", name=r["name"], categories=cats,
                                lon=r["lon"] + 0.0015, lat=r["lat"] + 0.0013, licence="ODbL-1.0"))
        if i % 4 == 2:  # beside it, another kind of place with the same name
            out.append(Facility(source="osm", source_id=f"node/{i}lib", name=r["name"], categories=["library"],
                                lon=lon, lat=lat, licence="ODbL-1.0"))
    return out


def test_batch_matcher_agrees_with_the_probe_on_real_data(tmp_path, settings, shared_data):
    """The register's real places: the bulk candidates (one R*Tree join per batch) give the
    per-record probe's decisions, record by record and for whole runs."""
    db = tmp_path / "reg.db"
    conn = connect(db)
    run_registry(conn, load_mapping(LT_REGISTRY[0]), [shared_data / LT_REGISTRY[1]], settings=settings,
                 locator=None, fetched_at="2026-11-29T12:00:00Z")
    rows = conn.execute("SELECT * FROM facilities WHERE lon IS NOT NULL ORDER BY rid").fetchall()
    records = _near(rows)
    matcher = make_matcher(thresholds_from(settings))
    batch = matcher.batch(conn, records)
    answers = [(matcher(conn, rec), batch(rec)) for rec in records]
    assert sum(a is not None for a, _ in answers) > 50
    assert all(a == b for a, b in answers)
    conn.close()
    # Whole runs: the bulk matcher against the probe alone (a plain function has no `batch`).
    dbs = {}
    for kind in ("bulk", "probe"):
        path = tmp_path / f"{kind}.db"
        path.write_bytes(db.read_bytes())
        c = connect(path)
        m = matcher if kind == "bulk" else (lambda conn, rec: matcher(conn, rec))
        rep = apply_records(c, records, source="osm", scope="v", matcher=m)
        assert rep.merged > 50
        dbs[kind] = [tuple(r) for r in c.execute(
            "SELECT s.source_id, s.facility_id, f.name, f.lon, f.lat, f.categories, json_remove(s.match, '$.at')"
            " FROM source_records s JOIN facilities f ON f.id = s.facility_id ORDER BY s.rowid")]
        assert_indexes_agree(c)
        c.close()
    assert dbs["bulk"] == dbs["probe"]


def test_content_json_is_the_stored_canonical_form(shared_data):
    """The content hash is stored: its text must stay json.dumps(content, sort_keys, ...)."""
    for rec in _osm_sample(shared_data, 300):
        assert rec.content_json() == json.dumps(rec.content(), sort_keys=True, ensure_ascii=False, default=str)
    odd = Facility(source="x", source_id="1", name='Ž"\\\n', categories=["toilet", "library", "toilet"], lon=25,
                   lat=float("nan"), licence="", extra={"a": {"2": 1, "b": [1.5, None, True]}}, features={})
    assert odd.content_json() == json.dumps(odd.content(), sort_keys=True, ensure_ascii=False, default=str)
    assert facility("h1", name="Pušelė").content_hash() == "8ec6213587228fec9500e5fcbf9d6ac7"  # main before issue 13


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def test_content_json_parts_are_the_canonical_texts(shared_data):
    """content_json_parts joins the content from its JSON columns' texts: the same bytes as the
    one-call encoding (the content hash), and the columns as the row stores them."""
    odd = [
        Facility(source="x", source_id="1", name='Ž"\\\n\u2028', categories=["toilet", "library", "toilet"], lon=25,
                 lat=float("nan"), licence="", extra={"a": {"2": 1, "b": [1.5, None, True, 1e16, 1e-7]}},
                 features={}, address=None, sector=None),
        Facility(source="x", source_id="2", name="", categories=[], lon=None, lat=None, licence="ODbL-1.0",
                 features=None, extra=None, address="Gatvė 1, \"A\"", opening_hours="Mo-Fr 08:00-17:00",
                 last_verified="2026-01-01", status="removed"),
        Facility(source="x", source_id="3", name="n", categories=["b", "a"], lon=-0.0, lat=1 / 3, licence="l",
                 features={"wheelchair": "yes", "Žz": "ne"}, extra={"osm_tags": {"ž": "1", "a": "\x00\t"}}),
        # scalar fields of other kinds (the hand-joined tail falls back to the encoder for them)
        Facility(source="x", source_id="4", name=True, categories=("c", "a", "c"), lon=float("inf"), lat=7,
                 licence=None, operator={"b": [1, "ž"], "a": None}, sector=1.5e300, status=False,
                 opening_hours=float("-inf"), last_verified=Path("/x")),
    ]
    for rec in _osm_sample(shared_data, 300) + odd + odd:  # twice: the categories' texts are looked up
        data, categories, features, extra = rec.content_json_parts()
        assert data == rec.content_json() == _canonical(rec.content())
        assert categories == _canonical(sorted(set(rec.categories)))
        assert features == _canonical(rec.features or {})
        assert extra == _canonical(rec.extra or {})


def test_a_first_run_needs_no_ready_rewrite_after_it(store, settings, shared_data):
    """A store's first run writes this code's ready text, so the refresh after it does not rewrite
    every row again; a failed first run leaves no mark, and a store whose rows predate the mark
    (written by other code) is still rewritten."""
    sample = _osm_sample(shared_data, 200)
    apply_records(store, sample, source="osm", scope="lt")
    assert (get_meta(store, DERIVED_META) or {}).get("ready") == READY_VERSION
    report = refresh_derived(store, settings, snapshot=False)
    assert "ready features" not in report.done and "map grid" in report.done
    assert_indexes_agree(store)
    # Rows written by other code (no mark): the refresh rewrites them all.
    other = connect(settings.db.parent / "other.db")
    other.execute("INSERT INTO facilities(id, name, categories, lon, lat, source, source_id, licence, fetched_at,"
                  " updated_at) VALUES ('x1', 'Darželis', '[\"kindergarten\"]', 25.28, 54.68, 'old', '1', 'ODbL-1.0',"
                  " '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
    other.commit()
    apply_records(other, [facility("a1", name="Mažas darželis", lon=25.29, lat=54.69)], source="t", scope="s")
    assert "ready" not in (get_meta(other, DERIVED_META) or {})
    assert "ready features" in refresh_derived(other, settings, snapshot=False).done


def test_bulk_new_facilities_ready_text_from_their_own_record(store, monkeypatch):
    """New facilities inserted in bulk make their sources and provenance text from their own
    columns (ready.insert_ready(own_record=True), no probe): exactly what the probe of their one
    source record gives (the SQL builders), for awkward values too (a formula-like licence,
    quotes, commas and letters in ids, no fetch time); and a run with a small last batch
    (per-row triggers, no ready text at insert) still leaves every row ready."""
    monkeypatch.setattr(sync, "BATCH", 100)
    licences = ["=HYPERLINK(\"x\")", "CC-BY-4.0", "+1", "Licencija „Ž“, 2 d.", ""]
    records = [facility(f'a"{i}, ž;{i % 3}', name=f'Vieta "{i}", Žalia', licence=licences[i % len(licences)],
                        fetched_at=None if i % 4 == 0 else "2026-11-29T12:00:00Z", lon=25 + i / 1000, lat=54.6,
                        operator="=cmd" if i % 6 == 0 else None, extra={"website": f"https://x.lt/{i}"} if i % 2 else {})
               for i in range(230)]  # two bulk batches of 100, then 30 through the per-row triggers
    report = apply_records(store, records, source="t", scope="s")
    assert report.added == 230 and report.ready_logged == 200
    assert store.execute("SELECT count(*) FROM facilities WHERE csv_line IS NULL OR sources_json IS NULL"
                         " OR provenance_csv IS NULL OR feature_head IS NULL").fetchone()[0] == 0
    assert_indexes_agree(store)  # the ready text is what refresh_ready (the probes) writes
    # The change log and source records keep the records' order, one each.
    assert [r[0] for r in store.execute("SELECT source_id FROM changes ORDER BY seq")] == [r.source_id for r in records]
    assert [r[0] for r in store.execute("SELECT source_id FROM source_records ORDER BY rowid")] == [
        r.source_id for r in records]


def test_a_first_run_of_a_scope_sweeps_nothing_and_the_next_one_sweeps(store):
    """A run of a scope that had no live record skips the sweep (nothing can be missing from
    it); the next run of the scope still marks what it did not see as removed."""
    first = [facility(f"s{i}") for i in range(80)]
    assert apply_records(store, first, source="t", scope="s").removed == 0
    assert apply_records(store, first[:70], source="t", scope="s").removed == 10
    assert store.execute("SELECT count(*) FROM facilities WHERE status = 'removed'").fetchone()[0] == 10
    # Another scope of the same source: its first run leaves the first scope alone.
    assert apply_records(store, [facility(f"o{i}") for i in range(5)], source="t", scope="other").removed == 0
    assert store.execute("SELECT count(*) FROM source_records WHERE removed_at IS NULL").fetchone()[0] == 75


def test_a_restated_municipality_of_a_record_without_position_keeps_its_ready_text_current(tmp_path):
    """A record without a map position whose source now states another municipality is unchanged
    content (placement is not in the hash), but its row is re-placed: the staleness triggers
    empty its ready text, and the run makes it again (not left to the slower SQL fallback)."""
    conn = connect(tmp_path / "s.db")
    record = dict(name="Be koordinačių", categories=["kindergarten"], lon=None, lat=None)
    apply_records(conn, [facility("np", municipality_code="13", **record)], source="reg", scope="r")
    report = apply_records(conn, [facility("np", municipality_code="19", **record)], source="reg", scope="r")
    assert report.unchanged == 1
    ready = "SELECT municipality_code, feature_head, feature_tail, sources_json, provenance_csv, csv_line FROM facilities"
    row = conn.execute(ready).fetchone()
    assert row[0] == "19" and None not in tuple(row)
    with conn:
        refresh_ready(conn)
    assert tuple(conn.execute(ready).fetchone()) == tuple(row)
    conn.close()


def _logged(rec: Facility) -> str:
    """What the per-record write (sync._upsert -> _log) puts in a new facility's change-log row:
    json.dumps of the facility's values, its JSON columns decoded from their canonical text."""
    return json.dumps({
        "name": rec.name or "", "categories": sorted(set(rec.categories)), "lon": rec.lon, "lat": rec.lat,
        "address": rec.address, "municipality_code": rec.municipality_code, "eldership_code": rec.eldership_code,
        "operator": rec.operator, "sector": rec.sector or "unknown", "features": json.loads(_canonical(rec.features or {})),
        "opening_hours": rec.opening_hours, "status": rec.status or "active", "last_verified": rec.last_verified,
        "licence": rec.licence or "", "extra": json.loads(_canonical(rec.extra or {})),
    }, ensure_ascii=False, default=str)


@pytest.mark.parametrize("batch", [1000, 40])  # one bulk flush; flushes below BULK_MIN (per-row triggers)
def test_new_facilities_store_and_log_what_the_per_record_write_does(store, shared_data, monkeypatch, batch):
    """The rows the sync stages for new facilities (one f-string for the log's `new`): the log
    row, the source record and the JSON columns are the texts the per-record write makes, for
    real OSM records and awkward values (quotes, line separators, control characters, an integer
    coordinate, empty and missing texts)."""
    monkeypatch.setattr(sync, "BATCH", batch)
    odd = [
        facility("o1", name='Ž"\\\n\u2028\x00', lon=25, lat=54.5, address="Gatvė 1, \"A\"", operator="VšĮ „Ž“",
                 opening_hours="Mo-Fr 08:00-17:00", last_verified="2026-01-01", features={"wheelchair": "yes"},
                 extra={"osm_tags": {"ž": "1", "a": "\x00\t"}, "capacity": 12, "n": [1.5, None, True, 1e16, 1e-7]}),
        facility("o2", name="", lon=-0.0, lat=1 / 3, licence="", sector="public", status="closed", extra={}),
        facility("o3", name="Be vietos", lon=None, lat=None, operator=""),
    ]
    records = _osm_sample(shared_data, 120) + odd
    apply_records(store, records, source="osm", scope="lt")
    logged = {r[0]: r[1] for r in store.execute("SELECT source_id, new FROM changes WHERE kind = 'added'")}
    data = {r[0]: r[1] for r in store.execute("SELECT source_id, data FROM source_records")}
    columns = {r[0]: tuple(r[1:]) for r in store.execute("SELECT source_id, categories, features, extra FROM facilities")}
    assert len(logged) == len(data) == len(columns) == len(records)
    for rec in records:
        assert logged[rec.source_id] == _logged(rec), rec.source_id
        assert data[rec.source_id] == rec.content_json()
        assert columns[rec.source_id] == (_canonical(sorted(set(rec.categories))), _canonical(rec.features or {}),
                                          _canonical(rec.extra or {}))
    assert_indexes_agree(store)


def test_the_staging_table_is_the_run_s_own(store, monkeypatch):
    """The bulk's staging table (temp.sync_new) is emptied after each batch and gone after the
    run, after a statement failing inside a batch too; the temp cache size is put back; the next
    run on the same connection stores exactly its own records."""
    monkeypatch.setattr(sync, "BATCH", 100)
    bases = []

    def insert_ready(*args, rid_base=None, **kwargs):
        bases.append(rid_base)
        return ready.insert_ready(*args, rid_base=rid_base, **kwargs)

    monkeypatch.setattr(sync, "insert_ready", insert_ready)
    cache = store.execute("PRAGMA temp.cache_size").fetchone()[0]
    bad = [facility(f"x{i}", licence=None if i == 150 else "CC-BY-4.0") for i in range(200)]
    with pytest.raises(sqlite3.IntegrityError):  # the source record's licence is NOT NULL
        apply_records(store, bad, source="t", scope="s")
    assert store.execute("SELECT count(*) FROM facilities").fetchone()[0] == 0
    for run in range(2):
        records = [facility(f"r{run}-{i}", lon=25 + i / 1000) for i in range(250)]
        apply_records(store, records, source="t", scope=f"s{run}")
        assert store.execute("SELECT count(*) FROM temp.sqlite_master WHERE name = 'sync_new'").fetchone()[0] == 0
        assert store.execute("PRAGMA temp.cache_size").fetchone()[0] == cache
    assert [r[0] for r in store.execute("SELECT source_id FROM changes ORDER BY seq")] == [
        f"r{run}-{i}" for run in range(2) for i in range(250)]
    assert store.execute("SELECT count(*) FROM source_records").fetchone()[0] == 500
    # Each batch's staged rows numbered 1..n: the rids are given from that, in the records' order.
    assert bases and None not in bases
    assert [r[0] for r in store.execute("SELECT source_id FROM facilities ORDER BY rid")] == [
        f"r{run}-{i}" for run in range(2) for i in range(250)]
    rids = [r[0] for r in store.execute("SELECT rid FROM facilities ORDER BY rid")]
    assert rids == list(range(rids[0], rids[0] + 500))
    assert_indexes_agree(store)
