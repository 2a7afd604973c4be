"""The municipal openness audit on real areas and the real Vilnius kindergarten registry."""

from __future__ import annotations

import csv
import io
import json
import shutil

import geopandas
import pandas
import pytest
from click.testing import CliRunner

from directory import audit, audit_report
from directory.areas_store import load_locator
from directory.model import CATEGORIES
from directory.store import connect
from tests.audit_data import AREAS, DARZELIAI, TODAY, VILNIUS, darzeliai_points


@pytest.fixture
def conn(audit_db):
    c = connect(audit_db, readonly=True)
    yield c
    c.close()


@pytest.fixture
def audit_client(make_app, audit_db):
    return make_app(db=audit_db).test_client()


def test_all_60_municipalities_are_listed_everywhere(conn, audit_client):
    rows = audit_report.municipalities(conn, category="kindergarten")
    assert len(rows) == 60 and len({r["code"] for r in rows}) == 60
    assert sum(r["population"] for r in rows) == 2_810_755

    page = audit_client.get("/audit").get_data(as_text=True)
    assert page.count('<tr data-code="') == 60
    api = audit_client.get("/api/audit/municipalities").get_json()
    assert len(api["municipalities"]) == 60
    assert api["national"]["indicators"]["count"] == 180  # all of the register (rule 5)
    body = audit_client.get("/audit.csv").get_data(as_text=True).lstrip("\ufeff")
    table = list(csv.DictReader(io.StringIO(body)))
    assert len(table) == 60 * len(CATEGORIES)  # every category, the two of issue 15 included
    assert {r["code"] for r in table if r["category"] == "kindergarten"} == {r["code"] for r in rows}


def test_vilnius_kindergartens_per_10k_equal_an_independent_geopandas_computation(conn, shared_data):
    # Independent: points straight from the registry CSV (geopandas reprojects), polygons read by
    # geopandas from the TopoJSON, a spatial join, and the census population from the CSV.
    kgs = darzeliai_points(shared_data / DARZELIAI)
    every = pandas.DataFrame(darzeliai_points(shared_data / DARZELIAI, unplaced=True).values())
    frame = pandas.DataFrame(kgs.values())
    points = geopandas.GeoDataFrame(
        frame, geometry=geopandas.points_from_xy(frame["gis_y"], frame["gis_x"]), crs="EPSG:3346"
    ).to_crs("EPSG:4326")
    munis = geopandas.read_file(shared_data / AREAS / "topojson/LT-savivaldybes-municipalities.json").set_crs(4326)
    munis["code"] = munis["SAV_KODAS"].astype(int).astype(str)
    joined = geopandas.sjoin(points, munis[["code", "geometry"]], predicate="within")
    # The register is all Vilnius (its mapping says so): the ones without coordinates count there.
    count = int((joined["code"] == VILNIUS).sum()) + (len(every) - len(frame))
    census = pandas.read_csv(shared_data / AREAS / "testdata/LT-seniunijos-wards.csv", sep=";", encoding="utf-8-sig")
    population = int(census.loc[census["SAV_KODAS"] == int(VILNIUS), "SEN_GYV"].sum())
    expected = count * 10_000 / population

    stored = conn.execute("SELECT count, population, per_10k FROM audit_indicators"
                          " WHERE level = 'municipality' AND code = ? AND category = 'kindergarten'",
                          (VILNIUS,)).fetchone()
    assert (stored["count"], stored["population"]) == (count, population) == (180, 556_476)
    assert stored["per_10k"] == pytest.approx(expected, abs=1e-12)
    assert round(stored["per_10k"], 2) == round(expected, 2) == 3.23

    # Childcare capacity where the registry publishes it: places per enrolled child.
    cap = conn.execute("SELECT capacity, enrolled, capacity_per_child, capacity_facilities FROM audit_indicators"
                       " WHERE level = 'municipality' AND code = ? AND category = 'kindergarten'",
                       (VILNIUS,)).fetchone()
    assert cap["capacity"] == int(every["capacity"].sum()) and cap["enrolled"] == int(every["children"].sum())
    assert cap["capacity_per_child"] == pytest.approx(every["capacity"].sum() / every["children"].sum())
    assert cap["capacity_facilities"] == 180
    country = audit_report.national(conn, category="kindergarten")["indicators"]
    assert country["capacity_per_child"] == pytest.approx(cap["capacity_per_child"])  # only Vilnius publishes

    # Eldership by eldership, too (the eldership layer read by geopandas as well).
    elds = geopandas.read_file(shared_data / AREAS / "topojson/LT-seniunijos-wards.json").set_crs(4326)
    elds = elds[elds["SAV_KODAS"].astype(int) == int(VILNIUS)].copy()
    elds["code"] = elds["SEN_KODAS"].astype(int).astype(str)
    by_eld = geopandas.sjoin(points, elds[["code", "geometry"]], predicate="within")["code"].value_counts()
    ours = {r["code"]: r["count"] for r in conn.execute(
        "SELECT code, count FROM audit_indicators WHERE level = 'eldership' AND category = 'kindergarten'"
        " AND code IN (SELECT code FROM areas WHERE parent_code = ?)", (VILNIUS,))}
    assert {code: int(n) for code, n in by_eld.items()} == {code: n for code, n in ours.items() if n}
    assert sum(ours.values()) == count - (len(every) - len(frame))  # the unplaced have no eldership


def test_a_municipality_without_baby_rooms_shows_zero_and_its_population_uncovered(conn):
    kaunas = audit_report.municipality(conn, "19", category="baby_room")  # Kauno m. sav.
    baby = next(i for i in kaunas["indicators"] if i["category"] == "baby_room")["municipality"]
    assert baby["count"] == 0 and baby["per_10k"] == 0
    assert baby["population_uncovered"] == kaunas["population"] > 0
    assert baby["share_population_uncovered"] == 1.0
    assert baby["elderships_none"] == baby["elderships"] > 0
    assert {g["code"] for g in kaunas["gaps"]} == {e["code"] for e in kaunas["elderships"] if e["population"]}

    vilnius = audit_report.municipality(conn, VILNIUS, category="baby_room")
    vb = next(i for i in vilnius["indicators"] if i["category"] == "baby_room")["municipality"]
    assert vb["count"] == 1 and vb["elderships_none"] == vb["elderships"] - 1
    assert vb["population_uncovered"] == vilnius["population"] - next(
        e["population"] for e in vilnius["elderships"] if e["count"] == 1)
    national = audit_report.national(conn, category="baby_room")["indicators"]
    assert national["count"] == 1
    assert national["population_uncovered"] == 2_810_755 - (vilnius["population"] - vb["population_uncovered"])


def test_checklist_unknown_is_never_no_and_scores_only_known_points(conn):
    rows = {r["facility_id"]: r for r in conn.execute("SELECT * FROM audit_institutions")}
    townhall = rows["test-townhall-unknown-toilet"]
    assert townhall["free_toilet"] == "unknown"
    assert townhall["changing_table"] == "unknown"
    assert (townhall["open_to_anyone"], townhall["wheelchair"], townhall["hours_published"]) == ("yes", "yes", "yes")
    # 3 of 8 points known: fewer than half, so no score ("too few known points"), counts kept.
    assert (townhall["yes"], townhall["known"], townhall["score"], townhall["meets_all"]) == (3, 3, None, 0)

    paid = rows["test-library-paid-toilet"]
    assert paid["free_toilet"] == "no" and paid["seating"] == "yes" and paid["hours_published"] == "unknown"
    assert (paid["yes"], paid["known"], paid["score"]) == (1, 2, None)

    assert rows["test-library-all-yes"]["meets_all"] == 1 and rows["test-library-all-yes"]["score"] == 1.0
    assert "test-private-theatre" not in rows  # private: not a public institution
    assert "test-baby-room-akropolis" not in rows
    # Kindergartens serve enrolled children: the checklist does not apply, public or not.
    assert "vilnius-darzeliai-143" not in rows

    summary = audit_report.municipality(conn, VILNIUS, category="kindergarten")
    c = summary["checklist"]
    assert c["institutions"] == 3
    assert c["points"]["free_toilet"] == {"yes": 1, "no": 1, "unknown": 1}
    assert (c["yes_points"], c["known_points"]) == (3 + 8 + 1, 3 + 8 + 2)
    assert c["score"] == pytest.approx(12 / 13) and c["score_status"] == "scored"  # 13 of 24 known
    assert [i["facility_id"] for i in summary["meeting_all"]] == ["test-library-all-yes"]


def test_data_quality_counts_worst_records_and_the_conflict_seam(conn, audit_db, tmp_path):
    q = audit_report.municipality(conn, VILNIUS, category="kindergarten")["quality"]
    assert q["facilities"] == 185
    assert q["missing_hours"] == 180 + 2  # kindergartens, the paid-toilet library, the baby room
    assert q["stale"] == 0  # every record was listed by its source's run this morning (rule 4)
    assert q["single_source"] == 185
    assert q["conflicts"] == 0 and q["conflicts_tracked"] is True
    worst = audit_report.municipality(conn, VILNIUS, category="kindergarten")["worst_records"]
    assert len(worst) == audit.WORST_RECORDS
    assert set(worst[0]["problems"]) >= {"missing_hours", "single_source"}

    # When conflict data exists, the one function that reads it makes the counts follow.
    copy = tmp_path / "copy.db"
    shutil.copy(audit_db, copy)
    w = connect(copy)
    # Conflation stores disagreements between sources on the facility (facilities.conflicts).
    w.execute("""UPDATE facilities SET conflicts = '[{"field": "name", "values": {"a": "x", "b": "y"}, "chosen": "x"}]'"""
              " WHERE id = 'vilnius-darzeliai-143'")
    assert audit.unresolved_conflicts_sql(w) is not None
    audit.recompute(w, today=TODAY)
    q2 = audit_report.municipality(w, VILNIUS, category="kindergarten")["quality"]
    assert q2["conflicts"] == 1 and q2["conflicts_tracked"] is True
    w.close()


def test_recompute_is_stable_and_stale_follows_today(audit_db, tmp_path):
    copy = tmp_path / "copy.db"
    shutil.copy(audit_db, copy)
    w = connect(copy)
    before = [tuple(r) for r in w.execute("SELECT * FROM audit_indicators ORDER BY level, code, category")]
    summary = audit.recompute(w, today=TODAY)
    assert summary["shapes_refreshed"] is False  # areas unchanged: shapes kept
    assert [tuple(r) for r in w.execute("SELECT * FROM audit_indicators ORDER BY level, code, category")] == before
    audit.recompute(w, today=TODAY.replace(year=2027))  # the runs were this morning: exactly 12 months
    assert w.execute("SELECT stale FROM audit_quality WHERE code = ?", (VILNIUS,)).fetchone()[0] == 0
    audit.recompute(w, today=TODAY.replace(year=2027, day=29))
    assert w.execute("SELECT stale FROM audit_quality WHERE code = ?", (VILNIUS,)).fetchone()[0] == 185
    w.close()


def test_pages_sort_without_javascript_and_name_bad_parameters(audit_client):
    page = audit_client.get("/audit?category=kindergarten&sort=-per_10k").get_data(as_text=True)
    assert page.index('data-code="13"') < page.index('data-code="19"')
    assert 'aria-sort="descending"' in page
    names = audit_client.get("/api/audit/municipalities?sort=name").get_json()["municipalities"]
    assert [n["name"].casefold() for n in names] == sorted(n["name"].casefold() for n in names)
    by_pop = audit_client.get("/api/audit/municipalities?sort=-population").get_json()["municipalities"]
    assert by_pop[0]["code"] == "13" and by_pop[1]["code"] == "19"

    bad = audit_client.get("/api/audit/municipalities?sort=bogus")
    assert bad.status_code == 400 and bad.get_json()["where"] == "sort"
    bad = audit_client.get("/api/audit/municipalities/13?category=nope")
    assert bad.status_code == 400 and bad.get_json()["where"] == "category"
    assert audit_client.get("/audit?indicator=nope").status_code == 400
    bad = audit_client.get("/api/audit/municipalities/13?institutions_limit=-3")
    assert bad.status_code == 400 and bad.get_json()["where"] == "institutions_limit"
    missing = audit_client.get("/api/audit/municipalities/999")
    assert missing.status_code == 404 and missing.get_json()["where"] == "code"
    assert audit_client.get("/audit/999").status_code == 404
    assert audit_client.get("/audit/999/institutions.csv").status_code == 404


def test_municipality_page_csvs_escaping_and_print_stylesheet(audit_client):
    resp = audit_client.get("/audit/13?category=baby_room&lang=en")  # English assertions below
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Vilniaus m. sav." in html and "Gaps" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Free public toilet" in html
    assert "never counted as no" in html  # the checklist is documented on the page
    assert "Vilniaus apskrities Adomo Mickevičiaus viešoji biblioteka" in html  # meets every point
    assert "https://" not in html.split("<main>")[0].replace("https://www.openstreetmap.org", "")  # no CDN
    assert "@media print" in audit_client.get("/static/css/audit.css").get_data(as_text=True)
    nonce_ok = resp.headers["Content-Security-Policy"]
    assert "'nonce-" in nonce_ok and html.count("<script nonce=") >= 2

    body = audit_client.get("/audit/13/institutions.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 3  # the checklist's categories only (not the kindergartens)
    town = next(r for r in rows if r["facility_id"] == "test-townhall-unknown-toilet")
    assert town["free_toilet"] == "unknown"
    only = audit_client.get("/audit/13/institutions.csv?meets_all=1").get_data(as_text=True).lstrip("\ufeff")
    assert [r["facility_id"] for r in csv.DictReader(io.StringIO(only))] == ["test-library-all-yes"]
    ind = list(csv.DictReader(io.StringIO(
        audit_client.get("/audit/13/indicators.csv").get_data(as_text=True).lstrip("\ufeff"))))
    levels = {r["level"] for r in ind}
    assert levels == {"municipality", "county", "country", "eldership"}
    assert sum(1 for r in ind if r["level"] == "eldership" and r["category"] == "kindergarten") == 21

    detail = audit_client.get("/api/audit/municipalities/13?institutions_limit=all").get_json()
    assert len(detail["institutions"]) == 3 and len(detail["checklist_documentation"]) == 8


def test_cli_prints_the_same_numbers(audit_db, conn):
    from tests.clitool import make_cli
    cli = make_cli()

    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(audit_db), "audit", "--sort=-per_10k"])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line[:4].strip().isdigit()]
    assert len(lines) == 60 and lines[0].split()[0] == "13" and " 3.23 " in lines[0]
    one = runner.invoke(cli, ["--db", str(audit_db), "audit", "Vilniaus m. sav.", "--category", "baby_room"])
    assert one.exit_code == 0, one.output
    assert "kindergarten" in one.output and "180" in one.output and "3.23" in one.output
    assert "conflicts not tracked yet" not in one.output
    bad = runner.invoke(cli, ["--db", str(audit_db), "audit", "Atlantis"])
    assert bad.exit_code == 2 and "Atlantis" in bad.output
    bad = runner.invoke(cli, ["--db", str(audit_db), "audit", "--category", "spa"])
    assert bad.exit_code == 2 and "--category" in bad.output


def test_cli_recompute_then_json(audit_db, tmp_path):
    from tests.clitool import make_cli
    cli = make_cli()

    copy = tmp_path / "copy.db"
    shutil.copy(audit_db, copy)
    out = CliRunner().invoke(cli, ["--db", str(copy), "audit", "--recompute", "--json", "13"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["code"] == "13" and len(data["institutions"]) == 3
    assert "audit recomputed" in out.stderr


def test_areas_load_and_every_ingest_recompute_the_audit(tmp_path, shared_data, settings):
    from tests.clitool import make_cli
    cli = make_cli()
    from directory.derived import refresh_derived
    from directory.sync import apply_records
    from tests.conftest import facility

    db = tmp_path / "s.db"
    out = CliRunner().invoke(cli, ["--db", str(db), "areas", "load", "--from", str(shared_data / AREAS)])
    assert out.exit_code == 0, out.output
    c = connect(db)
    assert audit.computed(c)["municipalities"] == 60
    assert c.execute("SELECT count(*) FROM audit_shapes").fetchone()[0] == 614
    count = "SELECT count FROM audit_indicators WHERE level = 'municipality' AND code = ? AND category = 'baby_room'"
    assert c.execute(count, (VILNIUS,)).fetchone()[0] == 0

    apply_records(c, [facility("b1", categories=["baby_room"], lon=25.28, lat=54.68)],
                           source="test", scope="s", locator=load_locator(c))
    refresh_derived(c, settings.with_(db=db))  # what every run ends with
    assert c.execute(count, (VILNIUS,)).fetchone()[0] == 1
    c.close()


def test_a_store_without_areas_or_audit_says_so_instead_of_failing(client):
    page = client.get("/audit")
    assert page.status_code == 200
    assert "atvira audit --recompute" in page.get_data(as_text=True)
    assert client.get("/api/audit/municipalities").get_json()["municipalities"] == []


def test_the_public_list_of_institutions_meeting_every_point(audit_client):
    page = audit_client.get("/audit/institutions")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Vilniaus apskrities Adomo Mickevičiaus viešoji biblioteka" in html
    assert "Vilniaus miesto savivaldybė" not in html  # toilet unknown: does not meet every point
    assert "Privatus teatras" not in html  # private: not a public institution
    body = audit_client.get("/audit/institutions.csv").get_data(as_text=True).lstrip("\ufeff")
    assert [r["facility_id"] for r in csv.DictReader(io.StringIO(body))] == ["test-library-all-yes"]
    assert "/audit/institutions" in audit_client.get("/audit").get_data(as_text=True)


def test_names_never_reach_a_template_engine_through_the_map(audit_db, tmp_path, make_app):
    # branca compiles every folium element's script as a Jinja template; the shapes (and names)
    # travel in a JSON data block instead, so "{{ 7*7 }}" stays text.
    copy = tmp_path / "copy.db"
    shutil.copy(audit_db, copy)
    w = connect(copy)
    w.execute("UPDATE areas SET name = '{{ 7*7 }} <b>sav.</b>' WHERE code = '13'")
    w.close()
    html = make_app(db=copy).test_client().get("/audit").get_data(as_text=True)
    assert "49 &lt;b" not in html and "49 \\u003cb" not in html
    assert '"name": "{{ 7*7 }} \\u003cb\\u003esav.\\u003c/b\\u003e"' in html  # in the data block
    assert "{{ 7*7 }} &lt;b&gt;sav.&lt;/b&gt;" in html  # in the table
