"""Unchanged Overpass JSON re-runs skip stored elements without decoding them (issue 13): an
element whose text hashes to a raw hash stored in the run's scope is counted unchanged on its
text alone (ingest.osm._stream_elements, sync.StoredKeys). Everything else is read, stored and
reported as before, and a bad file fails with the same error. Timing is in bench/, not here."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

import pytest

from directory import clock, sync
from directory.config import Settings
from directory.errors import InputError
from directory.store import connect
from ingest import osm
from ingest.runs import LT_OSM, run_osm
from tests.osmruns import count_mapped, run_file, stored


@pytest.fixture(autouse=True)
def _clock(monkeypatch):
    stamps = iter(f"2026-11-29T13:{m:02d}:00Z" for m in range(60))
    monkeypatch.setattr(clock, "stamp", lambda: next(stamps))


@pytest.fixture
def mapped(monkeypatch):
    return count_mapped(monkeypatch)


@pytest.fixture
def decoded(monkeypatch) -> list:
    """The ids of the OSM elements the JSON decoder decodes from now on (one cut by the end of
    the text read so far is decoded again when more is read: count distinct ids)."""
    ids: list = []
    real = osm._SCAN

    def scan(buf, pos):
        obj, end = real(buf, pos)
        if isinstance(obj, dict) and "type" in obj:
            ids.append(obj.get("id"))
        return obj, end

    monkeypatch.setattr(osm, "_SCAN", scan)
    return ids


@pytest.fixture
def swept(monkeypatch) -> list[str]:
    """The scopes sync._sweep sweeps from now on."""
    scopes: list[str] = []
    real = sync._sweep

    def sweep(conn, **kw):
        scopes.append(kw["scope"])
        return real(conn, **kw)

    monkeypatch.setattr(sync, "_sweep", sweep)
    return scopes


@pytest.fixture(scope="module")
def sample(shared_data) -> list[dict]:
    """60 elements of the Lithuanian OSM sample that the tag table maps."""
    with gzip.open(shared_data / LT_OSM, "rt", encoding="utf-8") as fh:
        elements = json.load(fh)["elements"]
    return [el for el in elements if osm.categories_for(el.get("tags") or {})][:60]


def _overpass_layout(elements: list[dict]) -> str:
    """As Overpass prints `[out:json]`: each element's braces at the start of a line."""
    body = ",\n".join(json.dumps(el, indent=2, ensure_ascii=False) for el in elements)
    return '{\n  "version": 0.6,\n  "generator": "Overpass API",\n  "elements": [\n\n' + body + "\n\n  ]\n}\n"


LAYOUTS = {
    "overpass": _overpass_layout,
    "indented": lambda els: json.dumps({"version": 0.6, "elements": els}, ensure_ascii=False, indent=1),
    "one line": lambda els: json.dumps({"version": 0.6, "elements": els}, ensure_ascii=False),
    "compact": lambda els: json.dumps({"version": 0.6, "elements": els}, ensure_ascii=False, separators=(",", ":")),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(params=["1 MiB", "97 B"])
def chunk(request, monkeypatch) -> None:
    """The reader's chunk: the default, and one that cuts most elements and separators."""
    if request.param == "97 B":
        monkeypatch.setattr(osm, "_CHUNK", 97)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_unchanged_rerun_decodes_only_the_first_element(tmp_path, sample, layout, chunk, mapped, decoded,
                                                            swept):
    path = _write(tmp_path / "lt.json", LAYOUTS[layout](sample))
    db = tmp_path / "s.db"
    first = run_file(db, path, tmp_path)
    assert first.added == len(sample) and len(set(decoded)) == len(sample)
    before = stored(db)
    mapped.clear()
    decoded.clear()
    again = run_file(db, path, tmp_path)
    assert set(decoded) == {sample[0]["id"]}  # the one the next ones' extent is guessed from
    assert mapped == []
    assert swept == []  # every live record of the scope was skipped as stored: none to sweep
    assert again.counts() == {**first.counts(), "added": 0, "unchanged": len(sample)}
    assert stored(db) == before


def test_a_text_that_fools_the_guess_is_decoded(tmp_path, sample, mapped, decoded):
    """On one line an element's extent is guessed up to the next "}}": a name holding one makes
    the guess wrong, so that element is decoded (and the next one, whose guess starts there)."""
    elements = json.loads(json.dumps(sample[:10]))
    elements[4]["tags"]["name"] = "Kiemas {{x}} ir }}"
    path = _write(tmp_path / "lt.json", LAYOUTS["compact"](elements))
    db = tmp_path / "s.db"
    first = run_file(db, path, tmp_path)
    before = stored(db)
    decoded.clear()
    again = run_file(db, path, tmp_path)
    assert sample[0]["id"] in decoded and elements[4]["id"] in decoded and len(set(decoded)) <= 3
    assert mapped[len(elements):] == []
    assert again.counts() == {**first.counts(), "added": 0, "unchanged": len(elements)}
    assert stored(db) == before


def test_changes_removals_and_duplicates_beside_skipped_elements(tmp_path, sample, mapped):
    path = _write(tmp_path / "v1.json", LAYOUTS["overpass"](sample))
    db = tmp_path / "s.db"
    run_file(db, path, tmp_path)
    changed = json.loads(json.dumps(sample))
    changed[5]["tags"]["wheelchair"] = "yes"
    del changed[9]
    changed.append(changed[20])  # a duplicate of an unchanged element: rejected, not skipped
    mapped.clear()
    report = run_file(db, _write(tmp_path / "v2.json", LAYOUTS["overpass"](changed)), tmp_path)
    assert sorted(mapped) == sorted(f"{el['type']}/{el['id']}" for el in (changed[5], changed[20]))
    assert (report.updated, report.removed, report.unchanged) == (1, 1, len(sample) - 2)
    assert [r.reason for r in report.rejected] == ["duplicate record in this run"]
    conn = sqlite3.connect(db)
    gone = f"{sample[9]['type']}/{sample[9]['id']}"
    assert conn.execute("SELECT removed_at IS NOT NULL FROM source_records WHERE source_id = ?", (gone,)).fetchone() == (1,)
    conn.close()


def test_a_record_without_a_stored_hash_is_mapped_and_nothing_is_swept(tmp_path, sample, mapped, swept):
    """The sweep is left out only when every live record of the scope was skipped as stored; a
    record whose raw hash is not stored is mapped again, found unchanged, and nothing removed."""
    path = _write(tmp_path / "lt.json", LAYOUTS["overpass"](sample))
    db = tmp_path / "s.db"
    run_file(db, path, tmp_path)
    before = stored(db)
    forgotten = f"{sample[7]['type']}/{sample[7]['id']}"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE source_records SET raw_hash = NULL WHERE source_id = ?", (forgotten,))
    conn.commit()
    conn.close()
    mapped.clear()
    again = run_file(db, path, tmp_path)
    assert mapped == [forgotten]
    assert swept == ["test"]  # one live record was not skipped as stored: the sweep looked
    assert (again.unchanged, again.removed, again.updated) == (len(sample), 0, 0)
    assert stored(db) == before


def test_the_same_file_under_another_scope_is_moved_there_then_skipped(tmp_path, sample, mapped, decoded):
    path = _write(tmp_path / "lt.json", LAYOUTS["overpass"](sample))
    db = tmp_path / "s.db"

    def run(scope: str):
        conn = connect(db)
        try:
            return run_osm(conn, settings=Settings(db=db, cache_dir=tmp_path / "cache"), files=[path],
                           scope=scope, derive=False).reports[0]
        finally:
            conn.close()

    run("a")
    mapped.clear()
    moved = run("b")  # nothing stored in scope b: looked up one by one, unchanged, re-scoped
    assert mapped == [] and (moved.unchanged, moved.removed) == (len(sample), 0)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT DISTINCT scope FROM source_records").fetchall() == [("b",)]
    conn.close()
    decoded.clear()
    again = run("b")
    assert len(set(decoded)) == 1 and (again.unchanged, again.removed) == (len(sample), 0)


def _broken(text: str, how: str) -> str:
    if how == "missing comma":
        at = text.index("},\n{", len(text) // 2)
        return text[:at + 1] + text[at + 2:]
    if how == "cut short":
        return text[:len(text) * 2 // 3]
    if how == "bad value":
        at = text.index('"lat": ', len(text) // 2) + len('"lat": ')
        return text[:at] + "šiaurė" + text[at:]
    if how == "extra data":
        return text + "]"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing comma", "cut short", "bad value", "extra data"])
def test_a_bad_file_fails_where_a_first_run_fails(tmp_path, sample, how, chunk):
    """The same error (what, line, column) whether the store holds the elements before the
    problem (skipped undecoded) or not, and nothing stored is lost."""
    good = LAYOUTS["overpass"](sample)
    bad = _write(tmp_path / "lt.json", _broken(good, how))
    fresh = tmp_path / "fresh.db"
    with pytest.raises(InputError) as plain:
        run_file(fresh, bad, tmp_path)
    db = tmp_path / "s.db"
    run_file(db, _write(tmp_path / "good.json", good), tmp_path)  # the same scope ("test")
    before = stored(db)
    with pytest.raises(InputError) as again:
        run_file(db, bad, tmp_path)
    assert str(again.value) == str(plain.value)
    assert "invalid JSON at line" in str(again.value)
    assert stored(db) == before
