"""The parents' map without a browser: open-now states, near-me ordering, the cluster grid,
typed places, the detail page, JSON-LD escaping, translations and the page's constant weight."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from directory import clusters, query, search
from directory.errors import BadRequest
from directory.hours import HoursEvaluator, week
from directory.model import STATUSES
from directory.store import connect, transaction
from directory.sync import apply_records
from tests.conftest import ROOT, derive, facility

# A Wednesday, 10:00 in Vilnius (08:00 UTC).
WEDNESDAY_10 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("hours,state", [
    ("Mo-Fr 08:00-18:00", "open"),
    ("Mo-Fr 11:00-18:00", "closed"),
    ("24/7", "open"),
    ("off", "closed"),
    (None, "unknown"),
    ("", "unknown"),
    ("whenever the keeper is in", "unknown"),  # unparsable hours are unknown, never closed
    ("Mo-Fr 08:00-18:00 unknown", "unknown"),
])
def test_open_state_has_three_states_in_vilnius_time(hours, state):
    assert HoursEvaluator(WEDNESDAY_10).state(hours).state == state


def test_next_change_is_local_time():
    st = HoursEvaluator(WEDNESDAY_10).state("Mo-Fr 08:00-18:00")
    assert st.next_change is not None and (st.next_change.hour, st.next_change.utcoffset().total_seconds()) == (18, 7200)
    days = week("Mo-Fr 08:00-18:00; Sa 09:00-14:00", start=WEDNESDAY_10)
    assert [len(d.intervals) for d in days] == [1, 1, 1, 1, 0, 1, 1]  # We Th Fr Sa Su Mo Tu
    assert week(None, start=WEDNESDAY_10) is None


def test_parse_query_new_parameters_name_the_parameter_at_fault():
    q = query.parse_query({"near": "25.28,54.68", "radius": "500", "open_now": "1", "open": "unknown"})
    assert q.near == (25.28, 54.68) and q.radius_m == 500 and q.open_states == ("unknown", "open")
    for args, where in [
        ({"near": "25.28"}, "near"), ({"near": "x,y"}, "near"), ({"near": "200,54"}, "near"),
        ({"radius": "5"}, "radius"), ({"near": "25,54", "radius": "-1"}, "radius"),
        ({"open": "sometimes"}, "open"), ({"open_now": "maybe"}, "open_now"),
        ({"near": "25,54", "after": "3"}, "after"), ({"nearby": "1"}, "nearby"),
    ]:
        with pytest.raises(BadRequest) as exc:
            query.parse_query(args)
        assert exc.value.where == where, args
    # the existing parameters behave as before
    assert query.parse_query({"bbox": "1,2,3,4", "category": "playground"}).categories == ("playground",)


@pytest.fixture
def parents_store(store):
    recs = [
        facility("a", name="Darželis Žiogelis", categories=["kindergarten"], lon=25.2801, lat=54.6800, opening_hours="24/7"),
        facility("b", name="Aikštelė", lon=25.2900, lat=54.6800, opening_hours="off"),
        facility("c", name="Kambarys", categories=["baby_room"], lon=25.3500, lat=54.7000,
                 features={"changing_table": "yes"}),
        facility("d", name="Kaunas", lon=23.90, lat=54.90),
    ]
    apply_records(store, recs, source="test", scope="s")
    derive(store)
    return store


def _ids(features):
    return [json.loads(f)["id"] for f in features]


def test_near_orders_by_distance_with_distance_and_open_state(parents_store):
    feats, more = search.query_near(parents_store, query.parse_query({"near": "25.28,54.68", "limit": "3"}))
    props = [json.loads(f)["properties"] for f in feats]
    assert [p["id"] for p in props] == ["test-a", "test-b", "test-c"] and more is True
    assert props[0]["distance_m"] == pytest.approx(6, abs=1)
    assert props[1]["distance_m"] == pytest.approx(645, abs=5)
    assert [p["open_state"] for p in props] == ["open", "closed", "unknown"]
    feats, more = search.query_near(parents_store, query.parse_query({"near": "25.28,54.68", "radius": "1000"}))
    assert _ids(feats) == ["test-a", "test-b"] and more is False
    feats, _ = search.query_near(parents_store, query.parse_query({"near": "25.28,54.68", "category": "baby_room"}))
    assert _ids(feats) == ["test-c"]
    feats, _ = search.query_near(parents_store, query.parse_query({"near": "25.28,54.68", "bbox": "23,54,24,55"}))
    assert _ids(feats) == ["test-d"]


def test_open_filter_in_the_api_keeps_unknown_apart(make_app, settings):
    conn = connect(settings.db)
    apply_records(conn, [facility("a", opening_hours="24/7"), facility("b", opening_hours="off"),
                         facility("c"), facility("d", opening_hours="nonsense")], source="test", scope="s")
    conn.close()
    client = make_app().test_client()

    def ids(url):
        return sorted(f["id"] for f in client.get(url).get_json(force=True)["features"])

    assert ids("/api/facilities?open_now=1") == ["test-a"]
    assert ids("/api/facilities?open=closed") == ["test-b"]
    assert ids("/api/facilities?open=unknown") == ["test-c", "test-d"]
    assert ids("/api/facilities?open=open,unknown&bbox=25,54,26,55") == ["test-a", "test-c", "test-d"]
    body = client.get("/api/facilities?near=25.28,54.68").get_json(force=True)
    assert body["truncated"] is False and all("distance_m" in f["properties"] for f in body["features"])


def test_grid_counts_match_on_the_fly_counts(parents_store):
    conn = parents_store
    assert conn.execute("SELECT count(*) FROM map_grid WHERE zoom = 0 AND category = '*'").fetchone()[0] == 1
    for zoom in (3, 8, 12):
        for cat in ((), ("playground",)):
            q = query.FacilityQuery(bbox=(20.0, 53.0, 27.0, 57.0), categories=cat)
            grid = clusters.clusters(conn, q, zoom=zoom)
            assert grid["source"] == "grid"
            # every status (none is removed here) is not in the grid: the same count, on the fly
            live = clusters.clusters(conn, replace(q, statuses=STATUSES), zoom=zoom)
            assert live["source"] == "live"
            assert grid["total"] == live["total"] == (2 if cat else 4)
            if zoom == 3:
                assert len(grid["clusters"]) == 1
    # one feature is in the grid; a feature with a category is answered live, and the same
    q = query.parse_query({"bbox": "20,53,27,57", "features": "changing_table"})
    assert clusters.clusters(conn, q, zoom=7) == {"zoom": 7, "source": "grid", "total": 1,
                                                   "clusters": [[25.35, 54.7, 1]]}
    q = query.parse_query({"bbox": "20,53,27,57", "features": "changing_table", "category": "baby_room"})
    assert clusters.clusters(conn, q, zoom=7) == {"zoom": 7, "source": "live", "total": 1,
                                                   "clusters": [[25.35, 54.7, 1]]}
    q = query.parse_query({"bbox": "20,53,27,57", "features": "changing_table", "category": "playground"})
    assert clusters.clusters(conn, q, zoom=7)["total"] == 0
    # open now from the grid's hours strings, evaluated at the query's instant
    for states, total in ((("open",), 1), (("closed",), 1), (("unknown",), 2), (("open", "unknown"), 3)):
        q = query.FacilityQuery(bbox=(20.0, 53.0, 27.0, 57.0), open_states=states, now=WEDNESDAY_10)
        grid = clusters.clusters(conn, q, zoom=9)
        live = clusters.clusters(conn, replace(q, statuses=STATUSES), zoom=9)
        assert (grid["source"], grid["total"], live["total"]) == ("grid", total, total), states


def test_grid_follows_ingests_and_removals(store):
    apply_records(store, [facility("a"), facility("b")], source="test", scope="s")
    q = query.FacilityQuery(bbox=(20.0, 53.0, 27.0, 57.0))
    assert clusters.clusters(store, q, zoom=6)["total"] == 2
    apply_records(store, [facility("a")], source="test", scope="s")  # b is removed at the source
    assert clusters.clusters(store, q, zoom=6)["total"] == 1
    with transaction(store):
        assert clusters.refresh_map_data(store) > 0


def test_clusters_endpoint_checks_its_parameters(make_app, settings):
    client = make_app().test_client()
    assert client.get("/api/facilities/clusters?bbox=20,53,27,57&zoom=7").get_json()["total"] == 0
    for url, where in [("/api/facilities/clusters?bbox=20,53,27,57", "zoom"),
                       ("/api/facilities/clusters?zoom=5", "bbox"),
                       ("/api/facilities/clusters?bbox=20,53,27,57&zoom=99", "zoom"),
                       ("/api/facilities/clusters?bbox=20,53,27,57&zoom=5&colour=red", "colour")]:
        resp = client.get(url)
        assert resp.status_code == 400 and resp.get_json()["where"] == where, url


def test_typed_place_finds_areas_and_addresses_without_diacritics(parents_store, make_app, settings):
    parents_store.execute(
        "INSERT INTO areas(code, level, name, geometry, min_lon, min_lat, max_lon, max_lat)"
        " VALUES ('13', 'municipality', 'Vilniaus miesto savivaldybė', '{}', 25.0, 54.5, 25.5, 54.8)")
    client = make_app().test_client()
    got = client.get("/api/places?q=vilniaus").get_json()
    assert got["kind"] == "municipality" and got["lon"] == pytest.approx(25.25)
    got = client.get("/api/places?q=ziogelis").get_json()
    assert got["kind"] == "address" and got["lon"] == pytest.approx(25.2801)
    resp = client.get("/api/places?q=nowhere-at-all")
    assert resp.status_code == 404 and resp.get_json()["where"] == "q"
    assert client.get("/api/places").status_code == 400


def test_detail_page_escapes_and_its_json_ld_cannot_close_the_script(make_app, settings):
    conn = connect(settings.db)
    name = "</script><script>alert(1)</script> & <b>"
    apply_records(conn, [facility("x", name=name, opening_hours="24/7", address="<i>addr</i>")], source="test", scope="s")
    conn.close()
    client = make_app().test_client()
    html = client.get("/facility/test-x?lang=en").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<b>" not in html and "<i>addr" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in html
    ld = re.search(r'<script type="application/ld\+json" nonce="[^"]+">(.*?)</script>', html, re.S).group(1)
    assert json.loads(ld)["name"] == name
    assert client.get("/facility/nope").status_code == 404
    assert client.get("/facility/test-x/report?lang=en").status_code == 200


def test_default_language_is_lithuanian_and_english_is_one_click_away(make_app):
    client = make_app().test_client()
    lt = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="lt">' in lt and "Šalia manęs" in lt
    en = client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in en and "Near me" in en


def test_every_ui_string_has_a_lithuanian_translation_and_the_catalog_is_compiled():
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    po_path = ROOT / "translations" / "lt" / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as f:
        po = read_po(f)
    untranslated = [m.id for m in po if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []
    with (po_path.with_suffix(".mo")).open("rb") as f:
        mo = read_mo(f)
    assert {m.id for m in po if m.id} <= {m.id for m in mo if m.id}, "run pybabel compile (see README)"
    # every string the templates and views mark is in the catalog
    marked = set()
    literal = re.compile(r"""\b_l?\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
    for path in list((ROOT / "templates").glob("*.html")) + list((ROOT / "directory").glob("*.py")):
        for double, single in literal.findall(path.read_text()):
            text = re.sub(r"\\(.)", r"\1", double or single)  # \' and \" as Python/Jinja read them
            if text and "{" not in text:
                marked.add(text)
    assert marked and marked <= {m.id for m in po if m.id}


def _map_page_bytes(client) -> int:
    html = client.get("/").get_data()
    return len(re.sub(rb'nonce="[^"]+"', b'nonce=""', html))


def test_map_page_weight_does_not_grow_with_the_data(make_app, settings):
    conn = connect(settings.db)
    apply_records(conn, [facility(str(i), lon=25.0 + i / 100, lat=54.5 + i / 200) for i in range(10)],
                  source="test", scope="s")
    small = _map_page_bytes(make_app().test_client())
    apply_records(conn, [facility(str(i), lon=21.0 + i / 1000, lat=54.0 + i / 2000) for i in range(2000)],
                  source="test", scope="s")
    conn.close()
    big = _map_page_bytes(make_app().test_client())
    assert small == big


def test_map_rebuild_command_fills_the_grid_of_a_store_filled_without_it(settings, store):
    from click.testing import CliRunner

    from tests.clitool import make_cli
    cli = make_cli()

    apply_records(store, [facility("a"), facility("b")], source="test", scope="s")
    store.execute("DELETE FROM map_grid")  # as after the migration on an older store
    assert clusters.clusters(store, query.FacilityQuery(bbox=(20, 53, 27, 57)), zoom=5)["source"] == "live"
    result = CliRunner().invoke(cli, ["--db", str(settings.db), "map", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "map grid:" in result.output
    got = clusters.clusters(store, query.FacilityQuery(bbox=(20, 53, 27, 57)), zoom=5)
    assert got["source"] == "grid" and got["total"] == 2


def test_hours_in_words_say_closes_at_and_opens_in_the_page_language(make_app):
    from directory.web.pages import hours_view

    app = make_app()
    with app.test_request_context("/?lang=en"):
        open_view = hours_view("Mo-Fr 08:00-18:00; Sa 09:00-14:00", now=WEDNESDAY_10)
        closed_view = hours_view("Mo-Fr 11:00-18:00", now=WEDNESDAY_10)
        unknown_view = hours_view("now and then", now=WEDNESDAY_10)
    assert open_view["headline"] == "Open now · closes 18:00"
    assert [d["text"] for d in open_view["week"]][:5] == ["08:00–18:00", "08:00–18:00", "08:00–18:00", "09:00–14:00", "closed"]
    assert open_view["week"][0]["day"] == "Wednesday, November 25"
    assert closed_view["headline"] == "Closed now · opens 11:00"
    assert unknown_view == {"state": "unknown", "headline": "Hours unknown", "week": []}
    with app.test_request_context("/?lang=lt"):
        lt_view = hours_view("Mo-Fr 08:00-18:00", now=WEDNESDAY_10)
    assert lt_view["headline"] == "Dabar atidaryta · uždaroma 18:00"
    assert lt_view["week"][0]["day"].startswith("trečiadienis")


def test_walking_the_table_and_the_rtree_give_the_same_pages(store):
    """prefer_scan only chooses a plan: the rows, their order and the cursors are the same."""
    recs = [facility(str(i), categories=["playground" if i % 3 else "toilet"], lon=21.0 + (i * 37 % 500) / 100,
                     lat=54.0 + (i * 53 % 200) / 100, opening_hours=("24/7" if i % 2 else None)) for i in range(600)]
    apply_records(store, recs, source="test", scope="s")
    query.register_hours(store, query.FacilityQuery())
    for args in ({"bbox": "20,53,27,57"}, {"bbox": "21,54,23,55", "category": "toilet"},
                 {"bbox": "20,53,27,57", "open": "unknown"}, {"bbox": "22.5,54.5,22.6,54.6"}):
        q = query.parse_query({**args, "limit": "50"})
        pages = {}
        for scan in (False, True):
            got, after = [], None
            while True:
                src, where, params = query.ordered_where(replace(q, after=after), scan=scan)
                rows = store.execute(f"SELECT f.rid FROM {src} WHERE {where} LIMIT 50", params).fetchall()
                got += [r[0] for r in rows]
                if len(rows) < 50:
                    break
                after = rows[-1][0]
            pages[scan] = got
        assert pages[False] == pages[True] and pages[False], args
    # the whole-area box is walked, a box with a few rows goes through the R*Tree
    assert search.plan_scan(store, query.parse_query({"bbox": "20,53,27,57"}), rows=51) is True
    assert search.plan_scan(store, query.parse_query({"bbox": "22.5,54.5,22.6,54.6"}), rows=51) is False
    assert search.plan_scan(store, query.parse_query({"bbox": "20,53,27,57", "q": "place"}), rows=51) is False
    feats, _ = search.query_features(store, query.parse_query({"bbox": "20,53,27,57", "limit": "600"}))
    assert len(feats) == 600
