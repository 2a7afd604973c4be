"""The audit's five honesty rules (issue 12), each on a small constructed store whose figures can
be worked out by hand: five square municipalities side by side, each with one eldership.

1. ties share a rank, and a count of 0 is never ranked above a count above 0 (it is not ranked);
2. a checklist score only when at least half of the applicable points are known;
3. the checklist applies to the open public institutions only (not to kindergartens);
4. "verified" per source: a register run lists its records, OSM needs check_date/survey:date;
5. a record without a position counts for the municipality its source states.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import shapely
from click.testing import CliRunner

from directory import audit, audit_report, clock
from directory.areas import Area
from directory.areas_store import load_locator, save_areas
from directory.config import Settings
from directory.derived import refresh_derived
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import facility

# code -> (name, population); municipality i is the square lon 21+i .. 21+i+0.5, lat 55 .. 55.5.
MUNICIPALITIES = {"1": ("Alfa", 10_000), "2": ("Beta", 20_000), "3": ("Gama", 10_000),
                  "4": ("Delta", 20_000), "5": ("Epsilon", 10_000)}
ALL_YES = {k: "yes" for k in ("open_foyer", "toilet", "free", "changing_table", "feeding_room",
                              "play_corner", "seating", "wheelchair")}
TODAY = clock.now().date()
NOW = clock.stamp()
LONG_AGO = clock.stamp(clock.now() - timedelta(days=800))


def at(code: str, k: int = 0) -> dict:
    """A point inside municipality `code` (k spreads several apart)."""
    i = int(code) - 1
    return {"lon": 21 + i + 0.1 + 0.01 * k, "lat": 55.25}


def areas() -> list[Area]:
    out = []
    for code, (name, population) in MUNICIPALITIES.items():
        i = int(code) - 1
        square = shapely.box(21 + i, 55, 21 + i + 0.5, 55.5)
        out.append(Area(code=code, level="municipality", name=f"{name} sav.", parent_code="C", population=population,
                        geometry=square, county="Apskritis"))
        out.append(Area(code=f"{code}01", level="eldership", name=f"{name} sen.", parent_code=code,
                        population=population, geometry=square))
    return out


def libraries(code: str, n: int, **fields) -> list:
    return [facility(f"lib-{code}-{k}", name=f"Biblioteka {code}-{k}", categories=["library"], sector="public",
                     **at(code, k), **fields) for k in range(n)]


@pytest.fixture
def honest_db(tmp_path):
    """Libraries per municipality: Alfa 2 (2.0 per 10k), Beta 4 (2.0; one private), Gama 1 (1.0),
    Delta 1 (0.5), Epsilon 0; checklist points as each rule needs; OSM and register records for verification."""
    db = tmp_path / "honest.db"
    conn = connect(db)
    save_areas(conn, areas())
    locator = load_locator(conn)
    # Alfa: one library with every point yes, one with 3 points known (institution: too few).
    alfa = [facility("lib-1-0", name="Visi taip", categories=["library"], sector="public", features=dict(ALL_YES),
                     opening_hours="Mo-Fr 10:00-18:00", **at("1", 0)),
            facility("lib-1-1", name="Trys žinomi", categories=["library"], sector="unknown",
                     features={"open_foyer": "yes", "wheelchair": "no", "toilet": "no"}, **at("1", 1))]
    # Gama: one library with 3 of 8 points known: the municipality has too few known points.
    gama = [facility("lib-3-0", name="Gamos biblioteka", categories=["library"], sector="public",
                     features={"open_foyer": "yes", "wheelchair": "yes", "seating": "yes"}, **at("3"))]
    records = [*alfa, *libraries("2", 3), *gama, *libraries("4", 1),
               # Rule 3: a municipal kindergarten with every point yes is still not scored; a
               # private library is not either; a culture centre of unknown sector is.
               facility("kg-1", name="Darželis", categories=["kindergarten"], sector="public",
                        features=dict(ALL_YES), opening_hours="Mo-Fr 07:00-18:00", **at("1", 5)),
               facility("private-lib", name="Privati biblioteka", categories=["library"], sector="private",
                        features=dict(ALL_YES), **at("2", 4)),
               facility("culture-5", name="Kultūros centras", categories=["culture"], sector="unknown",
                        features={"wheelchair": "yes"}, **at("5", 2))]
    apply_records(conn, records, source="register", scope="libraries", locator=locator, now=NOW)
    # Rule 4: OpenStreetMap places, fetched just now; only check_date/survey:date verifies them.
    osm = [facility("n1", name="Be check_date", categories=["playground"], fetched_at=NOW, **at("2", 6)),
           facility("n2", name="Patikrinta", categories=["playground"], fetched_at=NOW,
                    last_verified=TODAY.isoformat(), **at("2", 7)),
           facility("n3", name="Seniai patikrinta", categories=["playground"], fetched_at=NOW,
                    last_verified=(TODAY - timedelta(days=800)).isoformat(), **at("2", 8))]
    apply_records(conn, osm, source="osm", scope="sample", locator=locator, now=NOW)
    # Rule 4: a register run two years ago whose scope nobody re-ran: not verified since.
    apply_records(conn, [facility("old-1", name="Senas įrašas", categories=["playground"], **at("4", 3))],
                  source="old-register", scope="2024.csv", locator=locator, now=LONG_AGO)
    # Rule 5: a register record without a position whose source states Gama (code 3).
    apply_records(conn, [facility("kg-nopos", name="Be koordinačių", categories=["kindergarten"], lon=None, lat=None,
                                  municipality_code="3")], source="kg-register", scope="kg.csv", locator=locator,
                  now=NOW)
    audit.recompute(conn, today=TODAY)
    conn.close()
    return db


def indicator(conn, code: str, category: str):
    return conn.execute("SELECT * FROM audit_indicators WHERE level = 'municipality' AND code = ? AND category = ?",
                        (code, category)).fetchone()


def test_rule_1_ties_share_a_rank_and_zero_is_never_ranked(honest_db, make_app):
    conn = connect(honest_db, readonly=True)
    ranks = {code: (indicator(conn, code, "library")["count"], indicator(conn, code, "library")["rank"])
             for code in MUNICIPALITIES}
    # 2.0, 2.0, 1.0, 0.5 per 10,000 and a zero: "1, 1, 3, 4" and no rank for the zero.
    assert ranks == {"1": (2, 1), "2": (4, 1), "3": (1, 3), "4": (1, 4), "5": (0, None)}
    # A category nobody has: nobody is ranked (not 60 municipalities "first").
    assert [indicator(conn, code, "toilet")["rank"] for code in MUNICIPALITIES] == [None] * 5
    rows = {r["code"]: r for r in audit_report.municipalities(conn, category="library")}
    assert rows["1"]["ranked_of"] == 4 and rows["5"]["rank"] is None
    # Sorted by rank, the unranked come last in either direction.
    by_rank = [r["code"] for r in audit_report.municipalities(conn, category="library", sort="rank")]
    assert by_rank[-1] == "5"
    detail = next(i for i in audit_report.municipality(conn, "5", category="library")["indicators"]
                  if i["category"] == "library")
    assert detail["municipality"]["rank"] is None and detail["ranked_of"] == 4
    conn.close()

    client = make_app(db=honest_db).test_client()
    html = client.get("/audit?category=library&lang=en").get_data(as_text=True)
    row5 = html[html.index('<tr data-code="5">'):].split("</tr>")[0]
    row2 = html[html.index('<tr data-code="2">'):].split("</tr>")[0]
    assert '<td data-v="">—</td>' in row5 and "1 of 4" in row2
    assert "equal figures share a rank" in html
    page5 = client.get("/audit/5?category=library&lang=en").get_data(as_text=True)
    assert "Rank of 60" not in page5


def test_rule_2_a_score_only_when_half_the_points_are_known(honest_db, make_app):
    conn = connect(honest_db, readonly=True)
    inst = {r["facility_id"]: r for r in conn.execute("SELECT * FROM audit_institutions")}
    assert audit.MIN_KNOWN_SHARE == 0.5 and audit.min_known_points(8) == 4
    assert (inst["register-lib-1-0"]["known"], inst["register-lib-1-0"]["score"]) == (8, 1.0)
    three = inst["register-lib-1-1"]
    assert (three["yes"], three["known"], three["score"]) == (1, 3, None)  # 1 of 3 known: no "33%"
    alfa = audit_report.municipality(conn, "1", category="library")["checklist"]
    assert (alfa["known_points"], alfa["score_status"]) == (11, "scored")  # 11 of 16 known
    assert alfa["score"] == pytest.approx(9 / 11)
    gama = audit_report.municipality(conn, "3", category="library")["checklist"]
    assert (gama["yes_points"], gama["known_points"], gama["score"]) == (3, 3, None)
    assert gama["score_status"] == "too_few_known" and gama["points_needed"] == 4
    rows = {r["code"]: r for r in audit_report.municipalities(conn, category="library")}
    assert rows["3"]["checklist_score"] is None and rows["3"]["checklist_status"] == "too_few_known"
    assert rows["4"]["checklist_status"] == "too_few_known"  # 0 of 8 known: no 0%, no 100%
    conn.close()

    client = make_app(db=honest_db).test_client()
    en = client.get("/audit/3?category=library&lang=en").get_data(as_text=True)
    assert "too few known points (3 of 8 known, at least 4 needed)" in en
    assert "at least 50.0% of the applicable points are known" in en  # the rule, on the page
    table = client.get("/audit?category=library&lang=en").get_data(as_text=True)
    row3 = table[table.index('<tr data-code="3">'):].split("</tr>")[0]
    assert "<td data-v=\"\">too few known points</td>" in row3  # no percentage from 3 known points
    lt = client.get("/audit/3?category=library&lang=lt").get_data(as_text=True)
    assert "per mažai žinomų punktų" in lt and "too few known points" not in lt
    api = client.get("/api/audit/municipalities/3").get_json()
    assert api["checklist"]["score"] is None and api["checklist_rules"]["min_known_share"] == 0.5


def test_rule_3_the_checklist_applies_to_open_public_institutions_only(honest_db, make_app):
    conn = connect(honest_db, readonly=True)
    scored = {r[0] for r in conn.execute("SELECT facility_id FROM audit_institutions")}
    assert "register-kg-1" not in scored  # public, every point yes, but a kindergarten
    assert "register-private-lib" not in scored  # a library, but private
    assert "register-culture-5" in scored  # a culture centre of unknown sector
    assert scored == {"register-lib-1-0", "register-lib-1-1", "register-lib-2-0", "register-lib-2-1",
                      "register-lib-2-2", "register-lib-3-0", "register-lib-4-0", "register-culture-5"}
    assert audit.CHECKLIST_CATEGORIES == ("townhall", "library", "community_centre", "culture", "state_institution")
    conn.close()
    html = make_app(db=honest_db).test_client().get("/audit/1?lang=en").get_data(as_text=True)
    assert "Kindergartens, childcare, day centres and schools serve enrolled children, pupils or clients" in html


def test_rule_4_verified_is_defined_per_source(honest_db):
    conn = connect(honest_db, readonly=True)
    stale = {r["facility_id"] for r in conn.execute("SELECT facility_id FROM audit_quality_records"
                                                     " WHERE problems LIKE '%stale%'")}
    # Register records fetched minutes ago are verified; OSM needs a recent check_date.
    assert not any(fid.startswith("register-") for fid in stale)
    assert "osm-n1" in stale and "osm-n3" in stale and "osm-n2" not in stale
    assert "old-register-old-1" in stale  # its register's last run was two years ago
    q = {r["code"]: r["stale"] for r in conn.execute("SELECT code, stale FROM audit_quality")}
    assert q["2"] == 2 and q["1"] == 0 and q["4"] == 1
    conn.close()

    # The same register re-listing the unchanged record today verifies it (the run counts), and
    # the derived refresh every run ends with recomputes the audit for it although no data changed.
    w = connect(honest_db)
    refresh_derived(w, Settings(db=honest_db), today=TODAY, snapshot=False)
    assert w.execute("SELECT stale FROM audit_quality WHERE code = '4'").fetchone()[0] == 1
    report = apply_records(w, [facility("old-1", name="Senas įrašas", categories=["playground"], **at("4", 3))],
                           source="old-register", scope="2024.csv", locator=load_locator(w), now=NOW)
    assert report.unchanged == 1
    assert "audit (incremental)" in refresh_derived(w, Settings(db=honest_db), today=TODAY, snapshot=False).done
    assert w.execute("SELECT stale FROM audit_quality WHERE code = '4'").fetchone()[0] == 0
    # A confirmation (later: a contribution) is last_verified, the hook every source shares.
    w.execute("UPDATE facilities SET last_verified = ? WHERE id = 'osm-n1'", (TODAY.isoformat(),))
    audit.recompute(w, today=TODAY)
    assert w.execute("SELECT stale FROM audit_quality WHERE code = '2'").fetchone()[0] == 1
    w.close()


def test_rule_5_an_unplaced_record_counts_for_its_stated_municipality(honest_db, tmp_path):
    conn = connect(honest_db)
    fac = conn.execute("SELECT municipality_code, eldership_code, lon FROM facilities"
                       " WHERE id = 'kg-register-kg-nopos'").fetchone()
    assert tuple(fac) == ("3", None, None)
    assert indicator(conn, "3", "kindergarten")["count"] == 1
    # Loading the areas again (which re-places every positioned facility) keeps it there.
    save_areas(conn, areas())
    audit.recompute(conn, today=TODAY)
    assert indicator(conn, "3", "kindergarten")["count"] == 1
    # An unchanged re-run keeps it; a mapping that starts stating a municipality places it.
    conn.execute("UPDATE facilities SET municipality_code = NULL WHERE id = 'kg-register-kg-nopos'")
    apply_records(conn, [facility("kg-nopos", name="Be koordinačių", categories=["kindergarten"], lon=None, lat=None,
                                  municipality_code="3")], source="kg-register", scope="kg.csv",
                  locator=load_locator(conn), now=NOW)
    audit.recompute(conn, today=TODAY)
    assert indicator(conn, "3", "kindergarten")["count"] == 1
    conn.close()


def test_rule_5_a_mapping_states_the_municipality(tmp_path):
    from ingest.mapping import load_mapping
    from ingest.registry import rows_to_records
    from ingest.tabular import Row

    constant = load_mapping("vilnius-darzeliai")
    assert constant.municipality.default == "13"
    path = tmp_path / "m.toml"
    path.write_text('name = "m"\nlicence = "x"\n[columns]\nid = "id"\n[category]\nvalue = "library"\n'
                    '[position]\nlon = "lon"\nlat = "lat"\n'
                    '[municipality]\ncolumn = "sav"\nvalues = { "Alytaus m." = "11" }\n', encoding="utf-8")
    m = load_mapping(path)
    rows = [Row(where="f:2", values={"id": "a", "name": "A", "sav": "Alytaus m.", "lon": "", "lat": ""}),
            Row(where="f:3", values={"id": "b", "name": "B", "sav": "21", "lon": "", "lat": ""}),
            Row(where="f:4", values={"id": "c", "name": "C", "sav": "21", "lon": "25.28", "lat": "54.68"})]
    conv = rows_to_records(rows, m)
    got = {r.source_id: r.municipality_code for r in conv.records}
    # Without a position the stated code is kept; with one, the areas decide (not the column).
    assert got == {"a": "11", "b": "21", "c": None}


def test_cli_says_the_rules(honest_db):
    from tests.clitool import make_cli

    out = CliRunner().invoke(make_cli(), ["--db", str(honest_db), "audit", "--category", "library"])
    assert out.exit_code == 0, out.output
    line5 = next(line for line in out.output.splitlines() if line.strip().startswith("5 "))
    line3 = next(line for line in out.output.splitlines() if line.strip().startswith("3 "))
    assert " — " in line5 and "too few" in line3
    assert "among the 4 municipalities with at least one library" in out.output
    one = CliRunner().invoke(make_cli(), ["--db", str(honest_db), "audit", "3", "--category", "library"])
    assert "too few known points (3 known, 4 needed)" in one.output
