"""Queries: bbox through the R*Tree with an exact recheck, categories, features, text, paging."""

from __future__ import annotations

import json

import pytest

from directory.errors import BadRequest
from directory.query import FacilityQuery, parse_query
from directory.search import iter_rows, query_features
from directory.sync import apply_records
from tests.conftest import facility


def ids(features):
    return [json.loads(f)["id"] for f in features]


@pytest.fixture
def filled(store):
    apply_records(
        store,
        [
            facility("1", name="Lopšelis-darželis „Žiogelis“", categories=["kindergarten"], lon=25.28, lat=54.68),
            facility("2", name="Vaikų žaidimų aikštelė", categories=["playground"], lon=25.30, lat=54.70,
                     features={"wheelchair": "yes"}),
            facility("3", name="Viešasis tualetas", categories=["toilet", "baby_room"], lon=23.90, lat=54.90,
                     features={"changing_table": "yes", "free": "no"}),
            facility("4", name="Edge", categories=["library"], lon=25.1234567, lat=54.1234567),
        ],
        source="test",
        scope="s",
    )
    return store


def test_bbox_filters_exactly(filled):
    feats, nxt = query_features(filled, FacilityQuery(bbox=(25.0, 54.5, 25.5, 54.8)))
    assert ids(feats) == ["test-1", "test-2"] and nxt is None
    # The R*Tree stores float32; a box whose edge sits a hair beyond a point must exclude it.
    feats, _ = query_features(filled, FacilityQuery(bbox=(25.12345671, 54.0, 26.0, 54.2)))
    assert ids(feats) == []
    feats, _ = query_features(filled, FacilityQuery(bbox=(25.1234567, 54.1234567, 25.1234567, 54.1234567)))
    assert ids(feats) == ["test-4"]


def test_category_feature_and_text(filled):
    assert ids(query_features(filled, FacilityQuery(categories=("baby_room",)))[0]) == ["test-3"]
    assert ids(query_features(filled, FacilityQuery(features=("wheelchair",)))[0]) == ["test-2"]
    assert ids(query_features(filled, FacilityQuery(features=("free",)))[0]) == []
    assert ids(query_features(filled, FacilityQuery(q="darzelis"))[0]) == ["test-1"]
    assert ids(query_features(filled, FacilityQuery(q="ziogel"))[0]) == ["test-1"]
    assert ids(query_features(filled, FacilityQuery(q='tualetas" OR *'))[0]) == []  # FTS syntax is not passed through
    assert ids(query_features(filled, FacilityQuery(q="viešasis"))[0]) == ["test-3"]


def test_keyset_paging_visits_every_row_once(filled):
    seen, after = [], None
    while True:
        feats, after = query_features(filled, FacilityQuery(limit=1, after=after))
        seen += ids(feats)
        if after is None:
            break
    assert sorted(seen) == ["test-1", "test-2", "test-3", "test-4"]
    assert len(list(iter_rows(filled, FacilityQuery(), batch=3))) == 4


@pytest.mark.parametrize(
    "args, param",
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "25,54,24,55"}, "bbox"),
        ({"bbox": "25,91,26,92"}, "bbox"),
        ({"bbox": "nan,54,26,55"}, "bbox"),
        ({"category": "spa"}, "category"),
        ({"features": "jacuzzi"}, "features"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "-1"}, "after"),
        ({"status": "gone"}, "status"),
        ({"colour": "red"}, "colour"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_parameters_name_the_parameter(args, param):
    with pytest.raises(BadRequest) as info:
        parse_query(args)
    assert info.value.where == param
