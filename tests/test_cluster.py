"""The social-cluster view (issue 15): sector with provenance, the two new kinds, the stored
kind x sector figures, partner suggestions, the API and the CSV."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3

import pandas as pd
import pytest
from pyproj import Geod

from directory import sectors, social_cluster
from directory.areas_store import load_locator
from directory.conflate import Thresholds, make_matcher
from directory.model import CATEGORIES
from directory.store import connect
from directory.sync import apply_records
from ingest.mapping import load_mapping
from ingest.osm import OsmElement, element_to_facility
from ingest.registry import rows_to_records
from ingest.tabular import read_rows
from tests.cluster_data import DARZELIAI, UTENA, VILNIUS
from tests.conftest import ROOT, derive, facility

NOW = "2026-11-28T12:00:00Z"
GEOD = Geod(ellps="WGS84")


@pytest.fixture
def ro(cluster_db):
    conn = connect(cluster_db, readonly=True)
    yield conn
    conn.close()


def osm(tags: dict[str, str], *, id: int = 1, lon: float = 25.28, lat: float = 54.68):
    return element_to_facility(OsmElement("node", id, tags, lon, lat), fetched_at=NOW)


# --- sector: each rule, and the table ---------------------------------------------------------


def test_sector_from_each_rule_with_its_provenance() -> None:
    d = sectors.decide
    assert d(register="municipal") == sectors.Sector("public", "municipal", "register", {"register": "municipal"})
    assert (d(name_prefix="private", register_default="public").source,
            d(name_prefix="private", register_default="public").sector) == ("name_prefix", "private")
    assert d(operator_type="religious").detail == "religious" and d(operator_type="religious").sector == "civic"
    assert d(operator="UAB „Akropolis LT“").source == "legal_form_operator"
    assert d(operator="UAB „Akropolis LT“").sector == "private"
    assert d(name="Šv. Jono Krikštytojo parapija").sector == "civic"
    assert d(name="Utenos rajono savivaldybės viešoji biblioteka").detail == "municipal"
    assert d(name="VšĮ Vaikų dienos centras").detail == "ngo"
    assert d(name="Labdaros ir paramos fondas „Maisto bankas“").detail == "ngo"
    assert d(name="Vilniaus apygardos administracinis teismas").detail == "government"
    assert d(name="Kaimo bendruomenė „Ąžuolas“").detail == "community"
    assert d(register_default="public").source == "register_default"
    # A Roman numeral is not a legal form; a name with no word for its operator stays unknown.
    assert d(name="Jono Pauliaus II gimnazija") == sectors.Sector()
    assert sectors.Sector().sector == "unknown" and sectors.Sector().source == "none"
    # The strongest rule wins; the others are kept as evidence when they disagree.
    mixed = d(operator_type="private", name="Šv. Mykolo parapija")
    assert (mixed.sector, mixed.source) == ("private", "operator_type")
    assert mixed.conflicting == {"legal_form_name": "religious"}
    assert mixed.extra()["sector_evidence"] == {"operator_type": "private", "legal_form_name": "religious"}
    assert "sector_evidence" not in d(register="public", name="Savivaldybė").extra()


def test_the_documented_table_is_the_code() -> None:
    assert (ROOT / "docs" / "sectors.md").read_text(encoding="utf-8") == sectors.markdown()


def test_osm_sector_from_operator_type_then_legal_forms() -> None:
    f = osm({"amenity": "library", "operator:type": "community", "operator": "UAB Knygynas"})
    assert f.sector == "civic" and (f.extra["sector_detail"], f.extra["sector_source"]) == ("community", "operator_type")
    assert f.extra["sector_evidence"] == {"operator_type": "community", "legal_form_operator": "private"}
    g = osm({"amenity": "community_centre", "operator": "Vilniaus arkivyskupijos Caritas"})
    assert (g.sector, g.extra["sector_source"]) == ("civic", "legal_form_operator")
    h = osm({"amenity": "toilets"})
    assert (h.sector, h.extra["sector_detail"], h.extra["sector_source"]) == ("unknown", "unknown", "none")


def test_new_kinds_from_osm_tags() -> None:
    assert osm({"amenity": "school", "name": "Utenos Aukštakalnio progimnazija"}).categories == ["school"]
    assert osm({"office": "government", "government": "tax"}).categories == ["state_institution"]
    assert osm({"amenity": "courthouse"}).categories == ["state_institution"]
    assert osm({"office": "government"}) is None  # which government office is not said: not mapped
    assert list(CATEGORIES)[:11] == ["day_centre", "kindergarten", "childcare", "playground", "indoor_play",
                                     "baby_room", "toilet", "library", "community_centre", "townhall", "culture"]


def test_register_sector_from_the_real_vilnius_file(shared_data) -> None:
    """The city's register: every row public by the mapping's default, unless its name has a
    legal form (a mapping prefix, then the general table)."""
    m = load_mapping("vilnius-darzeliai")
    conv = rows_to_records(read_rows(shared_data / DARZELIAI, fmt="csv"), m, fetched_at=NOW)
    facs = [r for r in conv.records if hasattr(r, "extra")]
    assert len(facs) == 180
    by_source = {}
    for f in facs:
        by_source.setdefault(f.extra["sector_source"], []).append(f)
    assert {f.sector for f in by_source["register_default"]} == {"public"}
    for f in by_source.get("name_prefix", []):
        assert f.sector == "private" and sectors.fold(f.name).startswith(("vsi", "uab", "privatus"))
    assert set(by_source) <= {"register_default", "name_prefix", "legal_form_name"}


# --- conflicts between sources -----------------------------------------------------------------


def test_a_conflict_between_sources_is_kept_and_shown(store, client, settings) -> None:
    reg = facility("k1", source="register", name="Lopšelis-darželis „Pušelė“", categories=["kindergarten"],
                   sector="public", extra={"sector_detail": "municipal", "sector_source": "register"})
    apply_records(store, [reg], source="register", scope="r")
    same = osm({"amenity": "kindergarten", "name": "Pušelė", "operator:type": "private"}, lon=25.2801, lat=54.6801)
    apply_records(store, [same], source="osm", scope="o", matcher=make_matcher(Thresholds()))
    row = store.execute("SELECT sector, extra, conflicts FROM facilities").fetchall()
    assert len(row) == 1  # merged: one place
    conflict = [c for c in json.loads(row[0]["conflicts"]) if c["field"] == "sector"]
    assert conflict == [{"field": "sector", "values": {"register:k1": "public", "osm:node/1": "private"},
                         "chosen": "public"}]
    extra = json.loads(row[0]["extra"])
    assert (row[0]["sector"], extra["sector_detail"], extra["sector_source"]) == ("public", "municipal", "register")
    social_cluster.recompute(store)
    assert store.execute("SELECT sector_conflicts FROM cluster_areas WHERE code = 'LT'").fetchone()[0] == 0  # no areas
    detail = json.dumps(client.get("/api/facilities/register-k1").get_json())
    assert '"field": "sector"' in detail


def test_osm_sector_fills_in_when_the_register_says_nothing(store) -> None:
    reg = facility("k2", source="register", name="Darželis „Eglutė“", categories=["kindergarten"])
    apply_records(store, [reg], source="register", scope="r")
    same = osm({"amenity": "kindergarten", "name": "Eglutė", "operator:type": "religious"}, lon=25.2801, lat=54.6801)
    apply_records(store, [same], source="osm", scope="o", matcher=make_matcher(Thresholds()))
    row = store.execute("SELECT sector, extra FROM facilities").fetchone()
    extra = json.loads(row["extra"])
    assert (row["sector"], extra["sector_detail"], extra["sector_source"]) == ("civic", "religious", "operator_type")


# --- the real-data store: kinds, figures, suggestions -------------------------------------------


def test_schools_from_the_country_sample_are_a_kind(ro) -> None:
    n = ro.execute("SELECT count(*) FROM facilities f, json_each(f.categories) c WHERE c.value = 'school'"
                   " AND f.source = 'osm'").fetchone()[0]
    # SOURCES.md: 46 amenity=school nodes; a few near the border may fall outside the polygons.
    assert 40 <= n <= 46
    counted = ro.execute("SELECT sum(count) FROM cluster_counts WHERE level = 'country' AND category = 'school'"
                         ).fetchone()[0]
    assert counted == n


def test_no_school_merges_into_a_kindergarten(ro, shared_data) -> None:
    # In the store built from the real register and the real sample: no facility is both.
    both = ro.execute("SELECT count(*) FROM facilities WHERE categories LIKE '%\"school\"%'"
                      " AND categories LIKE '%\"kindergarten\"%'").fetchone()[0]
    assert both == 0
    linked = ro.execute(
        "SELECT count(*) FROM source_records s JOIN facilities f ON f.id = s.facility_id"
        " WHERE s.source = 'osm' AND s.data LIKE '%\"school\"%' AND f.source = 'vilnius-darzeliai'").fetchone()[0]
    assert linked == 0


def test_a_school_at_each_real_kindergarten_stays_apart(tmp_path, shared_data) -> None:
    """The hard case: for every kindergarten of the real Vilnius register, an OSM school in the
    same building named after it ("<name> gimnazija" / "mokykla"), and an OSM record of the
    kindergarten itself. The kindergartens merge; no school does."""
    conn = connect(tmp_path / "s.db")
    m = load_mapping("vilnius-darzeliai")
    conv = rows_to_records(read_rows(shared_data / DARZELIAI, fmt="csv"), m, fetched_at=NOW)
    kgs = [r for r in conv.records if hasattr(r, "extra") and r.lon is not None]
    apply_records(conn, kgs, source="vilnius-darzeliai", scope="f")
    records = []
    for i, kg in enumerate(kgs):
        records.append(element_to_facility(OsmElement("node", 10_000 + i, {
            "amenity": "school", "name": f"{kg.name} {'gimnazija' if i % 2 else 'mokykla'}"},
            kg.lon + 0.00005, kg.lat), fetched_at=NOW))
        records.append(element_to_facility(OsmElement("node", 20_000 + i, {"amenity": "kindergarten", "name": kg.name},
                                                      kg.lon - 0.00005, kg.lat), fetched_at=NOW))
    report = apply_records(conn, records, source="osm", scope="o", matcher=make_matcher(Thresholds()))
    assert report.merged == len(kgs)  # each kindergarten found its register record
    schools = conn.execute("SELECT count(*) FROM facilities WHERE categories = '[\"school\"]'").fetchone()[0]
    assert schools == len(kgs)
    assert conn.execute("SELECT count(*) FROM facilities WHERE categories LIKE '%school%kindergarten%'"
                        " OR categories LIKE '%kindergarten%school%'").fetchone()[0] == 0
    conn.close()


def _pairs(conn: sqlite3.Connection) -> pd.DataFrame:
    df = pd.read_sql_query("SELECT id, categories, sector, status, municipality_code, eldership_code FROM facilities",
                           conn)
    df = df[df["status"].isin(["active", "unknown"])].copy()
    df["category"] = df["categories"].map(json.loads)
    return df.explode("category")


def test_kind_by_sector_table_equals_an_independent_pandas_groupby(ro) -> None:
    df = _pairs(ro)
    for level, column in (("municipality", "municipality_code"), ("eldership", "eldership_code")):
        expected = df.dropna(subset=[column]).groupby([column, "category", "sector"]).size()
        stored = pd.read_sql_query("SELECT code, category, sector, count FROM cluster_counts"
                                   " WHERE level = ? AND category != '*'", ro, params=(level,))
        got = stored.set_index(["code", "category", "sector"])["count"]
        got.index.names = expected.index.names
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False,
                                       check_dtype=False)
    country = df.groupby(["category", "sector"]).size()
    # The page's table (every kind x sector, zeros included) for Vilnius and Utena.
    for code in (VILNIUS, UTENA):
        table = social_cluster.kind_sector_table(ro, "municipality", code)
        sub = df[df["municipality_code"] == code].groupby(["category", "sector"]).size()
        for kind in CATEGORIES:
            for sector in social_cluster.ALL_SECTORS:
                assert table[kind][sector] == int(sub.get((kind, sector), 0)), (code, kind, sector)
    lt = social_cluster.kind_sector_table(ro, "country", "LT")
    assert sum(v for row in lt.values() for v in row.values()) == int(country.sum())
    assert int(country.sum()) > 1000 and lt["kindergarten"]["public"] >= 170


def test_partner_suggestions_are_the_true_nearest(ro) -> None:
    live = ro.execute("SELECT id, lon, lat, sector, categories FROM facilities"
                      " WHERE status IN ('active', 'unknown') AND lon IS NOT NULL").fetchall()
    checked = 0
    for code in (UTENA, VILNIUS, "1306", "8201"):
        report = social_cluster.area_report(ro, code)
        lon, lat = report["reference_point"]
        assert report["suggestions"], code

        def brute(kinds, partners, lon=lon, lat=lat):
            cands = [(GEOD.inv(lon, lat, r["lon"], r["lat"])[2], r["id"]) for r in live
                     if r["sector"] in partners and set(json.loads(r["categories"])) & set(kinds)]
            return [i for _, i in sorted(cands)[:social_cluster.SUGGESTIONS]]

        for s in report["suggestions"]:
            assert [p["id"] for p in s["has_it"]] == brute([s["category"]], s["partner_sectors"])
            assert [p["id"] for p in s["could_host"]] == brute(s["host_kinds"], s["partner_sectors"])
            for p in (*s["has_it"], *s["could_host"]):
                assert p["sector"] in s["partner_sectors"]
                # a sector's gap is filled by the others; a kind no sector has here, by any of them
                assert p["sector"] not in s["missing_sectors"] or len(s["missing_sectors"]) == 3
                assert p["sources"] and p["distance_m"] >= 0
            checked += 1
    assert checked >= 10


def test_what_each_sector_alone_provides(ro) -> None:
    only = social_cluster.only_one_sector({"baby_room": {"public": 0, "private": 2, "civic": 0, "unknown": 5},
                                           "library": {"public": 3, "private": 0, "civic": 1, "unknown": 0},
                                           "toilet": {"public": 0, "private": 0, "civic": 0, "unknown": 9}})
    assert only == {"public": [], "private": ["baby_room"], "civic": []}
    vilnius = social_cluster.area_report(ro, VILNIUS)
    table = {r["category"]: r["counts"] for r in vilnius["table"]}
    for sector, kinds in vilnius["only_one_sector"].items():
        for kind in kinds:
            assert table[kind][sector] > 0 and all(table[kind][s] == 0 for s in ("public", "private", "civic")
                                                   if s != sector)


def test_the_national_overview_puts_the_pilots_first(ro) -> None:
    d = social_cluster.national(ro)
    assert [m["name"] for m in d["municipalities"][:4]] == ["Biržų r. sav.", "Druskininkų sav.", "Prienų r. sav.",
                                                           "Utenos r. sav."]
    assert len(d["municipalities"]) == 60 and not any(m["pilot"] for m in d["municipalities"][4:])
    for m in d["municipalities"]:
        known = m["public"] + m["private"] + m["civic"]
        assert m["known"] == known
        assert m["share_outside_public"] == (None if not known else (m["private"] + m["civic"]) / known)
    # One kind per municipality (the page's selector) equals the full per-kind counts of the JSON.
    kg = social_cluster.national(ro, category="kindergarten")
    for m, full in zip(kg["municipalities"], d["municipalities"]):
        counts = full["kinds"].get("kindergarten", dict.fromkeys(social_cluster.ALL_SECTORS, 0))
        assert {s: m["selected"][s] for s in social_cluster.ALL_SECTORS} == counts
    vilnius = next(m for m in kg["municipalities"] if m["code"] == VILNIUS)["selected"]
    assert vilnius["public"] >= 170 and vilnius["share_outside_public"] < 0.05


# --- web: page, API, CSV, filters --------------------------------------------------------------


@pytest.fixture
def cluster_client(cluster_db, make_app, tmp_path):
    db = tmp_path / "copy.db"
    shutil.copy(cluster_db, db)
    return make_app(db=db).test_client(), db


def test_api_has_the_same_figures_as_the_page(cluster_client) -> None:
    client, db = cluster_client
    api = client.get(f"/api/cluster/{UTENA}").get_json()
    conn = connect(db, readonly=True)
    assert api == json.loads(json.dumps(social_cluster.area_report(conn, UTENA), ensure_ascii=False))
    conn.close()
    page = client.get(f"/cluster/{UTENA}?lang=en").get_data(as_text=True)
    assert api["name"] in page and "Partner suggestions" in page
    for row in api["table"]:
        assert f'data-kind="{row["category"]}"' in page
    first = api["suggestions"][0]
    assert first["has_it"] or first["could_host"]
    assert client.get("/api/cluster/nope").status_code == 404
    national = client.get("/api/cluster").get_json()
    assert national["municipalities"][0]["name"] == "Biržų r. sav."
    assert client.get("/cluster").status_code == 200


def test_csv_rows_match_the_api_and_formulas_are_inert(cluster_client) -> None:
    client, db = cluster_client
    conn = connect(db)
    apply_records(conn, [facility("evil", name="=HYPERLINK(\"http://x\")", categories=["baby_room"],
                                  sector="private", lon=25.5996, lat=55.4976, operator="@SUM(A1)")],
                  source="test", scope="evil", locator=load_locator(conn))
    derive(conn)
    conn.close()
    text = client.get(f"/cluster/{UTENA}.csv").get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    evil = [r for r in rows if r["facility_id"] == "test-evil"]
    assert evil and evil[0]["name"] == "'=HYPERLINK(\"http://x\")" and evil[0]["operator"] == "'@SUM(A1)"
    api = client.get(f"/api/cluster/{UTENA}").get_json()
    table = [r for r in rows if r["section"] == "table"]
    for row in api["table"]:
        for sector in social_cluster.ALL_SECTORS:
            cells = {int(r["count"]) for r in table if r["category"] == row["category"] and r["sector"] == sector}
            assert cells == {row["counts"][sector]}


def test_sector_filter_and_sector_columns_in_downloads(cluster_client) -> None:
    client, _ = cluster_client
    public = client.get("/api/facilities?sector=public&limit=5000").get_json()
    assert public["features"] and {f["properties"]["sector"] for f in public["features"]} == {"public"}
    fine = client.get("/api/facilities?sector=municipal,religious&limit=5000").get_json()
    assert {f["properties"]["sector_detail"] for f in fine["features"]} <= {"municipal", "religious"}
    assert client.get("/api/facilities?sector=nope").status_code == 400
    assert client.get("/api/facilities?sector=nope").get_json()["where"] == "sector"
    text = client.get("/downloads/facilities.csv?sector=civic").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {r["sector"] for r in rows} == {"civic"}
    assert all(r["sector_source"] in sectors.SOURCES and r["sector_detail"] in sectors.DETAILS for r in rows)
    geo = json.loads(client.get("/downloads/facilities.geojson?sector=civic").get_data(as_text=True))
    assert {f["properties"]["sector_source"] for f in geo["features"]} <= set(sectors.SOURCES)
