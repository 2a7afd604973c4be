"""Property tests (hypothesis) for the parsers and the query-parameter parsing.

The properties: a parser either returns well-formed values or raises our own error naming the
input (never a bare TypeError/KeyError/RecursionError); what it accepts obeys the model's
invariants; and text from users can never reach SQLite or FTS5 as syntax.
"""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from directory.errors import BadRequest, InputError
from directory.model import CATEGORIES, FEATURE_VALUES, FEATURES, Facility, Rejection, validate
from directory.query import FacilityQuery, fts_expression, parse_bbox, parse_query
from ingest import osm

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- JSON-ish values, and Overpass-shaped documents -------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)

# Tags drawn from the keys and values the tag table reads, plus noise.
TAG_KEYS = ["amenity", "leisure", "social_facility", "social_facility:for", "indoor", "playground", "kids_area",
            "kids_area:indoor", "changing_table", "changing_table:location", "baby_feeding", "toilets",
            "toilets:access", "toilets:fee", "access", "fee", "wheelchair", "name", "name:lt", "operator",
            "operator:type", "opening_hours", "capacity", "check_date", "addr:street", "addr:housenumber",
            "addr:city", "addr:full", "website", "phone"]
TAG_VALUES = ["kindergarten", "childcare", "playground", "indoor_play", "library", "toilets", "townhall",
              "theatre", "arts_centre", "community_centre", "social_facility", "day_care", "child;senior", "yes",
              "no", "limited", "room", "dedicated_room", "indoor", "private", "public", "designated", "forest",
              "nursing_home", "baby_hatch", "municipal", "ngo", "12", "2024-05-01", "Mo-Fr 08:00-18:00", "",
              "Žvėryno darželis", "<b>x</b>"]
tags = st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES) | st.text(max_size=10), max_size=8)
coord = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**7, 10**7), st.text(max_size=5))
elements = st.fixed_dictionaries(
    {"type": st.sampled_from(["node", "way", "relation", "area", "count"]), "id": st.integers(1, 10**12) | json_values,
     "tags": tags | json_values},
    optional={"lon": coord, "lat": coord, "center": st.fixed_dictionaries({"lon": coord, "lat": coord}),
              "nodes": st.lists(st.integers(1, 20), max_size=4),
              "members": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["node", "way"]), "ref": st.integers(1, 20)}), max_size=3)},
)
documents = st.one_of(json_values, st.fixed_dictionaries({"elements": st.lists(elements, max_size=8)},
                                                         optional={"remark": st.text(max_size=30)}))


@FAST
@given(documents)
def test_overpass_json_gives_elements_or_an_input_error(doc):
    payload = json.dumps(doc, allow_nan=True).encode()
    try:
        els = list(osm.parse_overpass_json(payload, where="fuzz.json"))
    except InputError as exc:
        assert exc.where == "fuzz.json" and exc.message
        return
    for el in els:
        assert el.type in ("node", "way", "relation") and isinstance(el.id, int) and el.tags
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in el.tags.items())
        assert (el.lon is None) == (el.lat is None) or el.type != "node"


@FAST
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_json_parser(data):
    try:
        list(osm.parse_overpass_json(data, where="bytes"))
    except InputError:
        pass


@FAST
@given(elements)
def test_element_to_facility_is_none_a_reasoned_rejection_or_a_valid_facility(el):
    try:
        parsed = list(osm.parse_overpass_json({"elements": [el]}, where="fuzz"))
    except InputError:
        return
    for element in parsed:
        out = osm.element_to_facility(element, fetched_at="2026-01-01T00:00:00Z")
        if out is None:
            assert osm.categories_for(element.tags) == []
        elif isinstance(out, Rejection):
            assert out.source_id == element.key and out.reason
        else:
            assert isinstance(out, Facility)
            assert validate(out) == [], validate(out)
            assert out.categories and set(out.categories) <= set(CATEGORIES)
            assert all(k in FEATURES and v in FEATURE_VALUES for k, v in out.features.items())
            assert math.isfinite(out.lon) and math.isfinite(out.lat)
            json.dumps(out.extra)  # JSON-able


@FAST
@given(tags)
def test_tag_mapping_invariants(t):
    cats = osm.categories_for(t)
    assert cats == [c for c in CATEGORIES if c in cats]  # legend order, no duplicates
    assert osm.categories_for({**t, "access": "private"}) == []
    assert osm.categories_for({**t, "amenity": "baby_hatch"}) == []
    assert osm.is_of_interest(t) == bool(cats)


# --- query parameters ------------------------------------------------------------------------

PARAMS = ["bbox", "category", "feature", "features", "q", "status", "municipality", "eldership", "limit", "after"]
param_text = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{1,8})?(,-?[0-9]{1,4}(\.[0-9]{1,8})?){0,5}", fullmatch=True),
    st.sampled_from(["nan,1,2,3", "inf", "1e999", "playground,toilet", "free", "active,removed", "0", "5000", "5001",
                     "25,54,26,55", " 25 , 54 , 26 , 55 ", "999999999999999999999"]),
)
queries = st.dictionaries(st.sampled_from(PARAMS) | st.text(max_size=6), param_text, max_size=5)


@FAST
@given(queries)
def test_parse_query_gives_a_valid_query_or_a_bad_request_naming_the_parameter(args):
    try:
        q = parse_query(args, default_limit=500, max_limit=5000)
    except BadRequest as exc:
        assert exc.where in args or exc.where == "features"  # feature and features share one name
        return
    assert isinstance(q, FacilityQuery)
    assert 1 <= q.limit <= 5000
    assert q.after is None or q.after >= 0
    if q.bbox is not None:
        w, s, e, n = q.bbox
        assert -180 <= w <= e <= 180 and -90 <= s <= n <= 90
    assert set(q.categories) <= set(CATEGORIES) and set(q.features) <= set(FEATURES)
    assert q.q is None or 0 < len(q.q) <= 200


lons = st.floats(-180, 180, allow_nan=False)
lats = st.floats(-90, 90, allow_nan=False)


@FAST
@given(lons, lons, lats, lats)
def test_bbox_round_trips(a, b, c, d):
    box = (min(a, b), min(c, d), max(a, b), max(c, d))
    assert parse_bbox(",".join(repr(v) for v in box)) == box
    assert parse_bbox(",".join(f"{v:.7f}" for v in box)) == tuple(float(f"{v:.7f}") for v in box)


@pytest.fixture(scope="module")
def fts():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(name, tokenize='unicode61 remove_diacritics 2')")
    conn.executemany("INSERT INTO t(name) VALUES (?)", [("Lopšelis-darželis „Žiogelis“",), ("Viešoji biblioteka",)])
    return conn


@FAST
@given(st.text(max_size=60))
def test_search_text_never_reaches_fts5_as_syntax(fts, text):
    expr = fts_expression(text)
    if expr is None:
        assert not any(ch.isalnum() or ch == "_" for ch in text)
        return
    fts.execute("SELECT count(*) FROM t WHERE t MATCH ?", (expr,)).fetchone()  # never an FTS5 syntax error


@FAST
@given(queries)
def test_the_api_answers_any_query_string_with_200_or_400(api_client, args):
    resp = api_client.get("/api/facilities", query_string=args)
    if resp.status_code == 302:
        # a map request pinned to a content version that is not the current one (here: any `v`
        # the fuzzer made up) is sent to the current version (api.version_pinned), then answered
        assert "v" in args, resp.headers
        current = api_client.get("/api/version").get_json()["version"]
        assert f"v={current}" in resp.headers["Location"], resp.headers["Location"]
        resp = api_client.get(resp.headers["Location"])
    assert resp.status_code in (200, 400), resp.get_data(as_text=True)[:300]
    body = resp.get_json(force=True)
    if resp.status_code == 200:
        assert body["type"] == "FeatureCollection"
    else:
        assert body["where"] in args or body["where"] == "features"


@pytest.fixture(scope="module")
def api_client(tmp_path_factory):
    from app import create_app
    from directory.config import Settings
    from directory.store import connect
    from directory.sync import apply_records

    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    conn = connect(db)
    apply_records(conn, [Facility(source="t", source_id=str(i), name=f"Darželis {i}", categories=["kindergarten"],
                                  lon=25 + i / 100, lat=54.6, licence="CC0") for i in range(20)], source="t", scope="t")
    conn.close()
    app = create_app(Settings(db=db, tile_url=""))
    app.testing = True
    return app.test_client()


@FAST
@given(st.integers(1, 7), st.booleans(), st.sampled_from(["darzelis", "Darželis 1", "nėra"]))
def test_text_search_pages_add_up_to_the_whole_answer(api_client, limit, with_bbox, q):
    """Keyset paging on the FTS-driven query: pages in id order, no row twice, none missed."""
    args = {"q": q, **({"bbox": "25.05,54.5,25.15,54.7"} if with_bbox else {})}
    whole = [f["id"] for f in api_client.get("/api/facilities", query_string={**args, "limit": 100}).get_json(force=True)["features"]]
    paged, url = [], None
    for _ in range(50):
        page = (api_client.get(url) if url else api_client.get("/api/facilities", query_string={**args, "limit": limit})).get_json(force=True)
        paged += [f["id"] for f in page["features"]]
        url = page["next"]
        if not url:
            break
    assert paged == whole
    expected = [f"t-{i}" for i in range(20) if (not with_bbox or 25.05 <= 25 + i / 100 <= 25.15)]
    if q == "darzelis":
        assert whole == expected


@pytest.fixture(scope="module")
def plans_store(tmp_path_factory):
    from directory.store import connect
    from directory.sync import apply_records

    db = tmp_path_factory.mktemp("plans") / "plans.db"
    conn = connect(db)
    import random

    rng = random.Random(3)
    apply_records(conn, [Facility(source="t", source_id=str(i), name="x", categories=[rng.choice(list(CATEGORIES))],
                                  lon=round(rng.uniform(21, 26.8), 5), lat=round(rng.uniform(54, 56.4), 5), licence="CC0")
                         for i in range(400)], source="t", scope="t")
    return conn


@FAST
@given(lons, lons, lats, lats, st.integers(1, 60), st.sampled_from([(), ("playground",), ("toilet", "library")]))
def test_dense_and_sparse_bbox_plans_give_the_same_pages(plans_store, a, b, c, d, limit, cats):
    """The planner choice (R*Tree sorted vs id-order scan) never changes an answer or its paging."""
    from directory.query import ordered_where as _where

    box = (min(a, b) / 7 + 23.9, min(c, d) / 30 + 55.2, max(a, b) / 7 + 23.9, max(c, d) / 30 + 55.2)
    query = FacilityQuery(bbox=box, categories=cats, limit=limit)

    def pages(dense: bool) -> list[list[int]]:
        out, after = [], None
        for _ in range(500):
            src, where, params = _where(_with_after(query, after), scan=dense)
            rows = [r[0] for r in plans_store.execute(f"SELECT f.rid FROM {src} WHERE {where} LIMIT ?", (*params, limit))]
            out.append(rows)
            if len(rows) < limit:
                return out
            after = rows[-1]
        raise AssertionError("paging did not end")

    assert pages(True) == pages(False)


def _with_after(query, after):
    from dataclasses import replace

    return replace(query, after=after)
