"""Lithuania first (issue 12): the one-command start, place search, search by need, border points.

One store is set up per module through `ingest.runs.setup_lithuania` (what `atvira setup
lithuania --from ../shared/data` calls) and read by the API tests; the CLI test sets up its own.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from pathlib import Path

import pytest
import shapely
from click.testing import CliRunner
from playwright.sync_api import expect
from werkzeug.serving import make_server

from app import create_app
from directory import areas_store, places
from directory.areas import AreaLocator
from directory.config import Settings
from directory.interpret import interpret
from directory.model import CATEGORIES, FEATURES
from directory.query import parse_query
from directory.store import connect
from directory.vocabulary import VOCABULARY, covered_slugs, match_needs, word_stem
from ingest import places as place_files
from ingest import runs
from ingest.areas import read_areas, read_outline
from ingest.overpass import cache_path
from tests.clitool import make_cli
from tests.conftest import SHARED_DATA

# The 7 nodes of the country sample that lie outside the simplified municipality polygons
# (within 50-270 m of them; two also just outside the coarse country outline).
BORDER_NODES = {"node/4845792555", "node/5214054359", "node/5779249057", "node/5964664867", "node/5964664868",
                "node/6153827757", "node/6681740022"}


@pytest.fixture(scope="module")
def lt(shared_data, tmp_path_factory):
    """A fresh store set up as the README's first command does (the core function it calls)."""
    tmp = tmp_path_factory.mktemp("lt")
    settings = Settings(db=tmp / "lt.db", cache_dir=tmp / "cache", offline=True, tile_url="")
    conn = connect(settings.db)
    result = runs.setup_lithuania(conn, settings=settings, from_dir=shared_data)
    yield settings, conn, result
    conn.close()


@pytest.fixture(scope="module")
def api(lt):
    settings, _conn, _result = lt
    app = create_app(settings)
    app.testing = True
    return app.test_client()


def held_municipalities(conn) -> int:
    return sum(1 for a in areas_store.list_areas(conn, level="municipality") if a["facilities"])


def test_setup_gives_lithuania_with_59_municipalities_holding_facilities(lt):
    _settings, conn, result = lt
    assert result.areas.municipalities == 60 and result.areas.loaded == 614
    assert result.places == 22_132
    osm_report = result.runs[0][1].reports[0]
    # 930 inside + the 7 border points, + (issue 15) 46 schools and 18 state institutions
    assert osm_report.added == 1001 and not osm_report.rejected
    register = result.runs[1][1].reports[0]
    assert register.added == 180
    assert held_municipalities(conn) >= 59


def test_setup_from_the_command_line(shared_data, tmp_path):
    db = tmp_path / "cli.db"
    out = CliRunner().invoke(make_cli(), ["--db", str(db), "setup", "lithuania", "--from", str(shared_data)],
                             catch_exceptions=False, env={"ATVIRA_CACHE_DIR": str(tmp_path / "cache")})
    assert out.exit_code == 0, out.output
    held = re.search(r"(\d+) of 60 municipalities hold facilities", out.output)
    assert "0 rejected" in out.output and held and int(held.group(1)) >= 59
    conn = connect(db, readonly=True)
    assert held_municipalities(conn) >= 59
    assert conn.execute("SELECT count(*) FROM places").fetchone()[0] == 22_132 + 614


def test_setup_refuses_a_directory_without_the_files(tmp_path):
    out = CliRunner().invoke(make_cli(), ["--db", str(tmp_path / "x.db"), "setup", "lithuania", "--from",
                                          str(tmp_path)])
    assert out.exit_code == 2 and "--from" in out.output and "govlt-powerbi-map-lt" in out.output


# --- border points ---------------------------------------------------------------------------

def test_the_seven_border_points_are_placed(lt):
    _settings, conn, _result = lt
    rows = conn.execute(
        f"SELECT source_id, municipality_code, eldership_code FROM facilities WHERE source = 'osm'"
        f" AND source_id IN ({','.join('?' * len(BORDER_NODES))})", sorted(BORDER_NODES)).fetchall()
    assert {r["source_id"] for r in rows} == BORDER_NODES
    assert all(r["municipality_code"] and r["eldership_code"] for r in rows)
    assert conn.execute("SELECT count(*) FROM facilities WHERE lon IS NOT NULL AND municipality_code IS NULL"
                        ).fetchone()[0] == 0


def test_border_rule_needs_the_outline_and_stays_within_the_tolerance(shared_data):
    areas = read_areas(shared_data / "govlt-powerbi-map-lt")
    outline = read_outline(shared_data / "mledoze-countries" / "ltu.geo.json")
    near_salcininkai = (25.3734342, 54.2704967)  # node/5214054359: 184 m outside the polygons
    assert AreaLocator(areas).locate(*near_salcininkai) == (None, None)  # no outline: rejected as before
    assert AreaLocator(areas, outline=outline, border_tolerance_m=0).locate(*near_salcininkai) == (None, None)
    loc = AreaLocator(areas, outline=outline)
    mun, eld = loc.locate(*near_salcininkai)
    assert loc.area(mun).name == "Šalčininkų r. sav."
    assert loc.area(eld, level="eldership").parent_code == mun  # its nearest eldership, of that municipality
    assert AreaLocator(areas, outline=outline, border_tolerance_m=100).locate(*near_salcininkai) == (None, None)
    assert loc.locate(25.45, 54.20) == (None, None)  # Belarus, ~10 km from the border
    assert loc.locate(24.94, 60.17) == (None, None)  # Helsinki
    assert loc.locate(25.28, 54.68) == AreaLocator(areas).locate(25.28, 54.68)  # inside: unchanged


def test_border_tolerance_is_a_setting():
    assert Settings.from_env({"ATVIRA_BORDER_TOLERANCE_M": "500"}).border_tolerance_m == 500.0
    assert Settings().border_tolerance_m == 2000.0


# --- place search ----------------------------------------------------------------------------

@pytest.mark.parametrize("typed, name, kind", [
    ("Antakalnis", "Antakalnio sen.", "eldership"),
    ("antakalnio", "Antakalnio sen.", "eldership"),
    ("Zirmunai", "Žirmūnų sen.", "eldership"),
    ("Žirmūnų", "Žirmūnų sen.", "eldership"),
    ("Kaunas", "Kaunas", "city"),
    ("Kauno", "Kaunas", "city"),
    ("Vilnius", "Vilnius", "city"),
    ("Naujamiestis", "Naujamiesčio sen.", "eldership"),
])
def test_places_api_puts_the_right_place_first(api, typed, name, kind):
    got = api.get("/api/places", query_string={"q": typed})
    assert got.status_code == 200
    body = got.get_json()
    assert (body["name"], body["kind"]) == (name, kind)
    assert (body["suggestions"][0]["name"], body["suggestions"][0]["kind"]) == (name, kind)


def test_places_api_suggests_as_the_user_types(api):
    body = api.get("/api/places", query_string={"q": "Antak", "limit": "5"}).get_json()
    assert body["suggestions"][0]["name"] == "Antakalnio sen." and len(body["suggestions"]) == 5
    body = api.get("/api/places", query_string={"q": "Vil"}).get_json()
    assert body["suggestions"][0]["name"] == "Vilnius"
    assert api.get("/api/places", query_string={"q": "x", "limit": "0"}).get_json()["where"] == "limit"
    assert api.get("/api/places", query_string={"q": "x", "colour": "red"}).get_json()["where"] == "colour"


def test_place_keys_fold_case_endings_and_area_words():
    assert places.key_words("Antakalnio sen.") == places.key_words("antakalnis") == ["antakaln"]
    assert places.key_words("Žirmūnų seniūnija") == places.key_words("Zirmunai") == ["zirmun"]
    assert places.key_words("Kauno m. sav.") == places.key_words("Kaunas") == ["kaun"]
    assert places.key_words("Vilniaus r. sav.") == places.key_words("Vilnius") == ["viln"]
    assert places.key_words("Naujamiesčio sen.") == places.key_words("Naujamiestis")


# --- search by need --------------------------------------------------------------------------

def test_vocabulary_covers_every_category_and_feature_in_both_languages():
    cats, feats = covered_slugs()
    assert set(CATEGORIES) <= cats and set(FEATURES) <= feats
    for need, lt_words, en_words in VOCABULARY:
        assert lt_words and en_words, need


@pytest.mark.parametrize("text, categories, features", [
    ("darželis", ("kindergarten",), ()),
    ("darzelis", ("kindergarten",), ()),
    ("darželiai", ("kindergarten",), ()),
    ("darželių", ("kindergarten",), ()),
    ("lopšelis", ("kindergarten", "childcare"), ()),
    ("lopšelis-darželis", ("kindergarten",), ()),
    ("tualetas", ("toilet",), ()),
    ("WC", ("toilet",), ()),
    ("toilets", ("toilet",), ()),
    ("žaidimų aikštelė", ("playground",), ()),
    ("zaidimu aikstele", ("playground",), ()),
    ("vystymo stalas", (), ("changing_table",)),
    ("mamos kambarys", ("baby_room",), ()),
    ("library", ("library",), ()),
    ("bibliotekos", ("library",), ()),
    ("toilet changing table", ("toilet",), ("changing_table",)),
])
def test_need_words_map_to_filters(text, categories, features):
    got = match_needs(text)
    assert (got.categories, got.features, got.rest) == (categories, features, ())


def test_word_stem_folds_inflections():
    assert {word_stem(w) for w in ("Vilnius", "Vilniaus", "Vilniuje")} == {"viln"}
    assert {word_stem(w) for w in ("Kaunas", "Kauno", "Kaune")} == {"kaun"}


def facilities(api, **args):
    body = api.get("/api/facilities", query_string={"limit": "5000", **args}).get_json()
    return body, body["features"]


def test_darzelis_returns_the_vilnius_kindergartens(api, lt):
    _settings, conn, _result = lt
    register = {r[0] for r in conn.execute("SELECT id FROM facilities WHERE source = 'vilnius-darzeliai'")}
    assert len(register) == 180
    for word in ("darzelis", "darželis", "darželiai"):
        body, feats = facilities(api, q=word)
        assert body["interpreted"]["categories"] == ["kindergarten"] and body["interpreted"]["words"] == ""
        assert register <= {f["id"] for f in feats}, word
        assert all("kindergarten" in f["properties"]["categories"] for f in feats)


def test_darzelis_antakalnis_returns_the_ones_in_antakalnio_seniunija(api, lt):
    _settings, conn, _result = lt
    expected = {r[0] for r in conn.execute(
        "SELECT facilities.id FROM facilities, json_each(facilities.categories) c WHERE c.value = 'kindergarten'"
        " AND eldership_code = (SELECT code FROM areas WHERE name = 'Antakalnio sen.')")}
    assert len(expected) >= 5
    body, feats = facilities(api, q="darželis Antakalnis")
    assert {f["id"] for f in feats} == expected
    assert body["interpreted"]["place"]["name"] == "Antakalnio sen."
    assert body["interpreted"]["categories"] == ["kindergarten"]
    _body, again = facilities(api, q="darzeliai antakalnyje")
    assert {f["id"] for f in again} == expected


def test_need_and_city_and_plain_name_search(api):
    body, feats = facilities(api, q="toilet Kaunas")
    assert feats and all(f["properties"]["municipality_code"] == "19" for f in feats)
    assert body["interpreted"]["place"]["kind"] == "city"
    body, feats = facilities(api, q="Žiogelis")
    assert feats and all("iogel" in f["properties"]["name"] for f in feats)
    assert body["interpreted"] == {"categories": [], "features": [], "place": None, "words": "Žiogelis"}
    body, feats = facilities(api, q="library")
    assert len(feats) == 136
    _body, feats = facilities(api)
    assert "interpreted" not in _body


def test_the_map_clusters_and_downloads_read_q_the_same_way(api, lt):
    _settings, conn, _result = lt
    q = "darželis Antakalnis"
    _body, feats = facilities(api, q=q)
    cl = api.get("/api/facilities/clusters", query_string={"q": q, "bbox": "20,53,27,57", "zoom": "7"}).get_json()
    assert cl["total"] == len(feats)
    csv = api.get("/downloads/facilities.csv", query_string={"q": q}).get_data(as_text=True)
    assert len(csv.strip().splitlines()) == len(feats) + 1
    query, understood = interpret(conn, parse_query({"q": q}))
    assert query.eldership == understood["place"]["area_code"] and query.q is None


def test_places_file_is_overpass_json(shared_data):
    with gzip.open(shared_data / "geodata-lt-osm-nodes" / "lithuania-2019-places.json.gz") as fh:
        doc = json.load(fh)
    assert doc["elements"][0]["type"] == "node"
    outline = read_outline(shared_data / "mledoze-countries" / "ltu.geo.json")
    assert outline.geom_type in ("Polygon", "MultiPolygon") and shapely.bounds(outline)[0] == pytest.approx(20.94, abs=0.01)


def test_docs_list_every_need_word():
    text = (Path(__file__).resolve().parents[1] / "docs" / "search.md").read_text(encoding="utf-8")
    for _need, lt_words, en_words in VOCABULARY:
        for word in (*lt_words, *en_words):
            assert word in text, f"docs/search.md misses {word!r}: regenerate its table from directory/vocabulary.py"


# --- the map (real Chromium) -------------------------------------------------------------------

@pytest.fixture
def lt_server(lt):
    settings, _conn, _result = lt
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.browser
def test_map_reads_need_and_place_and_suggests_places(lt, lt_server, page):
    _settings, conn, _result = lt
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    expected = conn.execute(
        "SELECT count(*) FROM facilities, json_each(facilities.categories) c WHERE c.value = 'kindergarten'"
        " AND eldership_code = (SELECT code FROM areas WHERE name = 'Antakalnio sen.') AND lon IS NOT NULL"
    ).fetchone()[0]
    page.goto(lt_server + "/?lang=en&ll=55.2,23.9&z=7")  # all of Lithuania: the place is far from this view
    expect(page.locator("#status")).to_contain_text("places in view")
    page.fill("#q", "darželis Antakalnis")
    expect(page.locator("#q-understood")).to_contain_text("Kindergarten")
    expect(page.locator("#q-understood")).to_contain_text("Antakalnio sen. (eldership")
    expect(page.locator("#results li")).to_have_count(expected)  # the map moved there and lists them
    page.locator("#place").press_sequentially("Antak")
    expect(page.locator("#place-options option").first).to_have_attribute(
        "value", "Antakalnio sen. (eldership, Vilniaus m. sav.)")
    page.fill("#place", "Antakalnio sen. (eldership, Vilniaus m. sav.)")  # what choosing the option does
    expect(page.locator("#status")).to_contain_text("Nearest first from Antakalnio sen.")
    assert errors == []


def test_places_live_from_overpass_through_the_cache(shared_data, tmp_path):
    """The live gazetteer asks Overpass through the same client and cache as the facilities;
    here the cache holds the answer (no test reaches the internet)."""
    settings = Settings(db=tmp_path / "p.db", cache_dir=tmp_path / "cache", offline=True)
    query = place_files.overpass_query(area="LT")
    path = cache_path(settings.cache_dir / "overpass", endpoint=settings.overpass_url, query=query)
    path.parent.mkdir(parents=True)
    with gzip.open(shared_data / "geodata-lt-osm-nodes" / "lithuania-2019-places.json.gz") as fh:
        path.write_bytes(fh.read())
    conn = connect(settings.db)
    assert runs.load_places(conn, settings=settings) == 22_132
    assert places.suggest(conn, "Kaunas")[0]["kind"] == "city"


def test_setting_up_again_changes_nothing(lt):
    settings, conn, _result = lt
    before = conn.execute("SELECT count(*) FROM changes").fetchone()[0]
    again = runs.setup_lithuania(conn, settings=settings, from_dir=SHARED_DATA)
    for _name, run in again.runs:
        for report in run.reports:
            assert (report.added, report.updated, report.removed) == (0, 0, 0), report.summary()
    assert conn.execute("SELECT count(*) FROM changes").fetchone()[0] == before
    assert again.places == 22_132 and places.suggest(conn, "Antakalnis")[0]["name"] == "Antakalnio sen."


def test_export_reads_q_like_the_api(lt, api, tmp_path):
    settings, _conn, _result = lt
    out = tmp_path / "a.csv"
    res = CliRunner().invoke(make_cli(), ["--db", str(settings.db), "export", "csv", "-o", str(out), "--q",
                                          "darželis Antakalnis"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "place Antakalnio sen." in res.output
    _body, feats = facilities(api, q="darželis Antakalnis")
    assert len(out.read_text(encoding="utf-8").strip().splitlines()) == len(feats) + 1
