"""Registry exports and municipal uploads on real data: Vilnius kindergartens, dialect variants,
the strict municipal upload, and the data.gov.lt (Spinta) live fetch with recorded pages."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from requests.utils import requote_uri

from directory import areas_store
from directory.store import counts
from ingest.areas import read_areas
from ingest.http import USER_AGENT, make_session
from ingest.mapping import load_mapping
from ingest.registry import UploadRefused, run_registry
from ingest.spinta import next_url
from tests.loopback import Answer, LoopbackServer

NOW = "2026-11-28T12:00:00Z"


@pytest.fixture(scope="module")
def lt_areas(shared_data):
    return read_areas(shared_data / "govlt-powerbi-map-lt")


@pytest.fixture
def placed(store, lt_areas):
    """A store with Lithuania's 60 municipalities and 554 elderships loaded, and its locator."""
    areas_store.save_areas(store, lt_areas)
    return store, areas_store.load_locator(store)


@pytest.fixture
def vilnius_csv(shared_data) -> Path:
    return shared_data / "vilnius-darzeliai" / "darzeliai_grupes.csv"


def run(conn, locator, mapping, files, settings, **kw):
    return run_registry(conn, load_mapping(mapping), files, settings=settings, locator=locator, fetched_at=NOW, **kw)


def facility_rows(conn):
    return {r["id"]: {k: r[k] for k in ("name", "lon", "lat", "address", "extra", "features", "sector",
                                        "municipality_code", "categories")}
            for r in conn.execute("SELECT * FROM facilities ORDER BY id")}


def test_vilnius_kindergartens_one_per_darz_id(placed, vilnius_csv, settings):
    conn, locator = placed
    report, conv = run(conn, locator, "vilnius-darzeliai", [vilnius_csv], settings)
    assert (report.added, report.rejected, report.without_position) == (180, [], 8)
    assert counts(conn)["facilities"] == 180
    # Every positioned one is inside Vilnius city (municipality 13); the 8 without are listed there
    # too, because the mapping states the municipality (`municipality = "13"`), without an eldership.
    by_muni = dict(conn.execute("SELECT coalesce(municipality_code, '-'), count(*) FROM facilities GROUP BY 1").fetchall())
    assert by_muni == {"13": 180}
    assert conn.execute("SELECT count(*) FROM facilities WHERE lon IS NULL AND eldership_code IS NULL"
                        " AND municipality_code = '13'").fetchone()[0] == 8
    assert conn.execute("SELECT count(*) FROM facilities WHERE lon IS NULL AND status = 'active'").fetchone()[0] == 8
    # Capacities, free places and waiting lists are the sums of the groups.
    sums: dict[str, dict[str, int]] = {}
    with vilnius_csv.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            s = sums.setdefault(row["DARZ_ID"], {"capacity": 0, "free_places": 0, "groups": 0})
            s["capacity"] += int(row["CAPACITY"])
            s["free_places"] += int(row["FREE_SPACE"])
            s["groups"] += 1
    for fid, fac in facility_rows(conn).items():
        extra = json.loads(fac["extra"])
        want = sums[fid.removeprefix("vilnius-darzeliai-")]
        assert (extra["capacity"], extra["free_places"], len(extra["groups"])) == (
            want["capacity"], want["free_places"], want["groups"])
    ausrele = json.loads(conn.execute("SELECT extra FROM facilities WHERE id = 'vilnius-darzeliai-143'").fetchone()[0])
    assert ausrele["languages"] == ["Lietuvių"] and ausrele["age_from"] == 1 and ausrele["age_to"] == 7
    assert conn.execute("SELECT count(*) FROM facilities WHERE features LIKE '%wheelchair%yes%'").fetchone()[0] > 0
    assert conn.execute("SELECT sector FROM facilities WHERE name LIKE 'VšĮ%'").fetchone()[0] == "private"
    # A second run changes nothing.
    n_changes = counts(conn)["changes"]
    again, _ = run(conn, locator, "vilnius-darzeliai", [vilnius_csv], settings)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 180, 0)
    assert counts(conn)["changes"] == n_changes


def test_other_axis_and_semicolon_cp1257_decimal_comma_load_identical(placed, vilnius_csv, settings, tmp_path):
    conn, locator = placed
    run(conn, locator, "vilnius-darzeliai", [vilnius_csv], settings)
    reference = facility_rows(conn)
    with vilnius_csv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(list(rows[0]))
    for row in rows:
        r = dict(row)
        # Easting in GIS_X, northing in GIS_Y, with a (meaningless) decimal comma: "580536,0".
        r["GIS_X"], r["GIS_Y"] = (f"{row['GIS_Y']},0" if row["GIS_Y"] not in ("", "0") else row["GIS_Y"],
                                  f"{row['GIS_X']},0" if row["GIS_X"] not in ("", "0") else row["GIS_X"])
        writer.writerow(list(r.values()))
    variant = tmp_path / "darzeliai_cp1257.csv"
    variant.write_bytes(out.getvalue().replace("„", '"').replace("“", '"').encode("cp1257"))
    from directory.store import connect

    other = connect(tmp_path / "other.db")
    areas_store.save_areas(other, areas_store.load_areas(conn))
    report, _ = run(other, areas_store.load_locator(other), "vilnius-darzeliai", [variant], settings)
    assert report.added == 180 and not report.rejected
    assert facility_rows(other) == reference
    # And into the first store: the same facilities, so nothing changes.
    again, _ = run(conn, locator, "vilnius-darzeliai", [variant], settings)
    assert (again.unchanged, again.updated) == (180, 0)


def test_municipal_upload_with_three_bad_rows_is_refused_whole(placed, settings, tmp_path):
    conn, locator = placed
    template = Path("docs/templates/municipal-upload.csv").read_text(encoding="utf-8")
    good, _ = run(conn, locator, "municipal-upload", [Path("docs/templates/municipal-upload.csv")], settings)
    assert good.added == 2
    before = (facility_rows(conn), counts(conn))
    header = template.splitlines()[0]
    bad = tmp_path / "upload.csv"
    bad.write_text("\n".join([
        header,
        template.splitlines()[1],
        "dc-2,Dienos centras Kalvarijų,day_centre,25.2870,54.7010,Kalvarijų g. 1,,public,,,,,,,,,,",  # swapped
        "dc-3,Daugpilio centras,day_centre,55.8750,26.5360,Daugavpils,,public,,,,,,,,,,",  # Latvia
        "dc-4,,day_centre,54.6900,25.2800,Gedimino pr. 1,,public,,,,,,,,,,",  # empty name
        "",
    ]), encoding="utf-8")
    with pytest.raises(UploadRefused) as err:
        run(conn, locator, "municipal-upload", [bad], settings)
    problems = err.value.problems
    assert [(p.where, p.field) for p in problems] == [
        ("upload.csv:3", "lat/lon"), ("upload.csv:4", "position"), ("upload.csv:5", "name")]
    assert "swapped" in problems[0].message and "outside the loaded areas" in problems[1].message
    assert problems[2].message == "empty name"
    assert "nothing was written" in str(err.value)
    assert (facility_rows(conn), counts(conn)) == before


def test_municipal_upload_geojson_template_loads(placed, settings):
    conn, locator = placed
    report, _ = run(conn, locator, "municipal-upload", [Path("docs/templates/municipal-upload.geojson")], settings)
    assert report.added == 2 and report.without_position == 0
    row = conn.execute("SELECT * FROM facilities WHERE source_id = 'mvk-1'").fetchone()
    assert row["municipality_code"] == "13" and json.loads(row["features"])["changing_table"] == "yes"


class FakeResponse:
    def __init__(self, payload, status=200):
        self.status_code, self.content, self.headers = status, json.dumps(payload).encode(), {}


class FakeSession:
    """Answers GETs from recorded pages keyed by URL; records what was asked."""

    def __init__(self, pages):
        self.pages, self.urls = pages, []

    def get(self, url, headers=None, timeout=None):
        self.urls.append(url)
        answer = self.pages[url]
        return answer if isinstance(answer, FakeResponse) else FakeResponse(answer)


def test_spinta_libraries_paged_with_wkt_points(placed, settings):
    conn, locator = placed
    base = "https://get.data.gov.lt/datasets/gov/lnb/bibliotekos/Sarasas?limit(10000)"
    page2 = next_url(base, "eyJpZCI6IDJ9")
    first = {"_type": "datasets/gov/lnb/bibliotekos/Sarasas", "_page": {"next": "eyJpZCI6IDJ9"}, "_data": [
        {"_id": "a1", "_revision": "r", "bibliotekos_id": 1, "padalinio_id": 0, "pavadinimas": "Lietuvos nacionalinė Martyno Mažvydo biblioteka",
         "padalin_pavadinimas": None, "biblioteka_aktyvi": "ACTIVE", "padalin_aktyvus": "ACTIVE",
         "adresas": "Gedimino pr. 51, Vilnius", "url": "https://www.lnb.lt", "koord": "POINT (581797 6061583)"},
        {"_id": "a2", "_revision": "r", "bibliotekos_id": 7, "padalinio_id": 3, "pavadinimas": "Kauno apskrities viešoji biblioteka",
         "padalin_pavadinimas": "Vaikų literatūros skyrius", "padalin_aktyvus": "CLOSED",
         "adresas": "Radastų g. 2, Kaunas", "koord": "POINT (497070 6086660)"},
    ]}
    second = {"_type": "datasets/gov/lnb/bibliotekos/Sarasas", "_page": {}, "_data": [
        {"_id": "a3", "bibliotekos_id": 9, "padalinio_id": 1, "pavadinimas": "Kaimo biblioteka",
         "padalin_aktyvus": "ACTIVE", "adresas": "—", "koord": None},
    ]}
    path = "/datasets/gov/lnb/bibliotekos/Sarasas?limit(10000)"
    path2 = requote_uri(next_url(path, "eyJpZCI6IDJ9"))  # as requests sends it: page(%22...%22)
    script = {path: [Answer(503, b"busy"), Answer(200, json.dumps(first).encode())],
              path2: [Answer(200, json.dumps(second).encode())]}
    waits: list[float] = []
    with LoopbackServer(script) as srv, make_session(retries=2, timeout=10, sleep=waits.append) as session:
        cfg = settings.with_(spinta_url=srv.url)
        report, _ = run(conn, locator, "bibliotekos", [], cfg, session=session)
    assert waits == [2.0]  # one backoff after the 503
    assert [seen.path for seen in srv.seen] == [path, path, path2] and 'page("eyJpZCI6IDJ9")' in page2
    assert all(seen.headers["User-Agent"] == USER_AGENT for seen in srv.seen)
    assert (report.added, report.without_position) == (3, 1)
    lnb = conn.execute("SELECT * FROM facilities WHERE source_id = '1-0'").fetchone()
    assert lnb["municipality_code"] == "13" and lnb["lon"] == pytest.approx(25.27, abs=0.01)
    assert conn.execute("SELECT status, name FROM facilities WHERE source_id = '7-3'").fetchone()[:] == (
        "closed", "Vaikų literatūros skyrius")


def test_spinta_education_register_keeps_preschools_and_schools(placed, settings):
    conn, locator = placed
    url = "https://get.data.gov.lt/datasets/gov/lsd/svietimo_istaigos/SvietimoIstaiga?limit(10000)"
    page = {"_type": "datasets/gov/lsd/svietimo_istaigos/SvietimoIstaiga", "_data": [
        {"_id": "u1", "ins_id": 190001, "ins_pavad_lt": "Vilniaus lopšelis-darželis „Aušrelė“",
         "ins_pagr_tipas": "Lopšelis-darželis", "ins_pask_grupe": "Savivaldybės", "gyv_pav": "Vilnius",
         "sav_pav": "Vilniaus miesto savivaldybė", "ins_isreg_smir_data": None,
         "koord": "POINT (6060144 580536)"},  # the other axis order: still Vilnius
        {"_id": "u2", "ins_id": 190002, "ins_pavad_lt": "Vilniaus Žirmūnų gimnazija",
         "ins_pagr_tipas": "Gimnazija", "koord": "POINT (583000 6063000)"},
        {"_id": "u3", "ins_id": 190003, "ins_pavad_lt": "Uždarytas darželis", "ins_pagr_tipas": "Darželis",
         "ins_pask_grupe": "Privati", "ins_isreg_smir_data": "2020-08-31", "koord": "POINT (583100 6063100)"},
    ]}
    report, conv = run(conn, locator, "svietimo-istaigos", [], settings, session=FakeSession({url: page}))
    # (issue 15) the gymnasium is kept as a school, apart from the kindergarten.
    assert report.added == 3 and conv.skipped == 0
    rows = {r["source_id"]: r for r in conn.execute("SELECT * FROM facilities")}
    assert rows["190002"]["categories"] == '["school"]' and rows["190002"]["sector"] == "unknown"
    assert rows["190001"]["sector"] == "public" and rows["190001"]["municipality_code"] == "13"
    extra = json.loads(rows["190001"]["extra"])
    assert (extra["sector_detail"], extra["sector_source"]) == ("municipal", "register")
    assert rows["190003"]["status"] == "closed" and rows["190003"]["sector"] == "private"
