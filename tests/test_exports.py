"""Downloads: each format read back by the tool a journalist would use equals the API's answer."""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3

import pytest

from directory.exports import COLUMN_NAMES
from directory.sync import apply_records
from tests.conftest import facility

HYPERLINK = '=HYPERLINK("http://example.com","x")'
FILTER = "category=playground,baby_room&bbox=25.0,54.5,25.5,54.9"


def api_features(client, params: str) -> list[dict]:
    """Every feature of a filtered API query, following `next` page by page."""
    url, out = f"/api/facilities?{params}&limit=2", []
    while url:
        page = client.get(url).get_json(force=True)
        out += page["features"]
        url = page["next"] and page["next"].replace("http://localhost", "")
    return out


@pytest.fixture
def od_client(make_app, store):
    store.execute("INSERT INTO areas(code, level, name, geometry) VALUES ('13', 'municipality', 'Vilniaus m. sav.', '{}')")
    records = [
        facility("p1", name="Žaidimų aikštelė, \"Saulė\"", lon=25.28, lat=54.68, municipality_code="13",
                 features={"wheelchair": "yes", "changing_table": "no"}, opening_hours="Mo-Su 08:00-20:00",
                 sector="public", operator="Vilniaus m. sav."),
        facility("p2", name=HYPERLINK, lon=25.30, lat=54.70, address="+37060000000", operator="-minus",
                 municipality_code="13"),
        facility("b1", name="Baby room\nsecond line", categories=["baby_room", "library"], lon=25.1, lat=54.6,
                 features={"changing_table": "yes", "feeding_room": "limited"}, operator="@handle"),
        facility("far", name="Outside the box", lon=21.14, lat=55.70),  # Klaipėda: not in FILTER's bbox
        facility("lib", name="Library", categories=["library"], lon=25.29, lat=54.69),  # wrong category
        facility("nopos", name="No position", lon=None, lat=None),
    ]
    apply_records(store, records, source="test", scope="fixture")
    # A second source describes p1 too: the export lists both records and both licences.
    store.execute(
        "INSERT INTO source_records(source, source_id, facility_id, scope, licence, fetched_at, content_hash, data)"
        " VALUES ('osm', 'node/9', 'test-p1', 'x', 'ODbL-1.0', '2026-01-01T00:00:00Z', 'h', '{}')"
    )
    return make_app().test_client()


def read_csv(body: bytes) -> list[dict]:
    assert body.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM, so Excel reads the letters right"
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_csv_read_with_pandas_equals_the_api(od_client):
    import pandas as pd

    resp = od_client.get(f"/downloads/facilities.csv?{FILTER}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert 'attachment; filename="atvira-facilities-filtered-' in resp.headers["Content-Disposition"]
    body = resp.get_data()
    assert body.endswith(b"\r\n") and body.count(b"\r\n") == 4, "RFC 4180: CRLF after the header and each of 3 rows"
    df = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert tuple(df.columns) == COLUMN_NAMES
    api = {f["id"]: f for f in api_features(od_client, FILTER)}
    assert sorted(df["id"]) == sorted(api) == ["test-b1", "test-p1", "test-p2"]
    for row in df.to_dict("records"):
        f = api[row["id"]]
        p = f["properties"]
        assert float(row["longitude"]) == f["geometry"]["coordinates"][0]
        assert float(row["latitude"]) == f["geometry"]["coordinates"][1]
        assert row["categories"].split(";") == p["categories"]
        assert row["status"] == p["status"] and row["sector"] == p["sector"]
        assert row["opening_hours"] == (p["opening_hours"] or "")
        for name in ("changing_table", "feeding_room", "wheelchair"):
            assert row[f"feature_{name}"] == p["features"].get(name, "")
        assert row["fetched_at"] == (p["fetched_at"] or "")
        if not row["name"].startswith("'"):
            assert row["name"] == p["name"]
    p1 = df.set_index("id").loc["test-p1"]
    assert p1["name"] == 'Žaidimų aikštelė, "Saulė"'  # comma and quotes survive RFC 4180 quoting
    assert p1["municipality"] == "Vilniaus m. sav." and p1["municipality_code"] == "13"
    assert sorted(p1["sources"].split("; ")) == ["osm:node/9", "test:p1"]
    assert sorted(p1["licences"].split("; ")) == ["CC-BY-4.0", "ODbL-1.0"]
    assert df.set_index("id").loc["test-b1", "name"] == "Baby room\nsecond line"


def test_a_formula_name_is_inert_text_in_csv(od_client):
    rows = {r["id"]: r for r in read_csv(od_client.get("/downloads/facilities.csv").get_data())}
    p2, b1 = rows["test-p2"], rows["test-b1"]
    assert p2["name"] == "'" + HYPERLINK  # a spreadsheet shows the text; it never runs HYPERLINK
    assert p2["address"] == "'+37060000000" and p2["operator"] == "'-minus" and b1["operator"] == "'@handle"
    assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows.values() for v in r.values()
                   if v and not v.lstrip("-").replace(".", "").isdigit())
    # Only the spreadsheet format is neutralised: GeoJSON keeps the source's text exactly.
    gj = od_client.get("/downloads/facilities.geojson").get_json(force=True)
    assert {f["properties"]["name"] for f in gj["features"]} >= {HYPERLINK}


def test_geojson_is_rfc7946_and_equals_the_api(od_client):
    resp = od_client.get(f"/downloads/facilities.geojson?{FILTER}")
    assert resp.mimetype == "application/geo+json"
    doc = json.loads(resp.get_data())
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in json.dumps(doc), "RFC 7946 has no crs member (WGS84 is implied)"
    api = {f["id"]: f for f in api_features(od_client, FILTER)}
    assert sorted(f["id"] for f in doc["features"]) == sorted(api)
    for f in doc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
        lon, lat = f["geometry"]["coordinates"]
        assert 25.0 <= lon <= 25.5 and 54.5 <= lat <= 54.9, "lon first, then lat"
        assert f["geometry"] == api[f["id"]]["geometry"]
        for key in ("name", "categories", "features", "opening_hours", "status", "sector", "municipality_code"):
            assert f["properties"][key] == api[f["id"]]["properties"][key]
        assert all(s["licence"] for s in f["properties"]["sources"])
    whole = json.loads(od_client.get("/downloads/facilities.geojson").get_data())
    nopos = [f for f in whole["features"] if f["id"] == "test-nopos"]
    assert nopos and nopos[0]["geometry"] is None  # RFC 7946 allows an unlocated feature


def test_geopackage_read_with_geopandas_equals_the_api(od_client, tmp_path):
    import geopandas as gpd

    resp = od_client.get(f"/downloads/facilities.gpkg?{FILTER}")
    assert resp.status_code == 200 and resp.mimetype == "application/geopackage+sqlite3"
    path = tmp_path / "slice.gpkg"
    path.write_bytes(resp.get_data())
    gdf = gpd.read_file(path, layer="facilities")
    assert gdf.crs.to_epsg() == 4326
    api = {f["id"]: f for f in api_features(od_client, FILTER)}
    assert len(gdf) == len(api) == 3 and sorted(gdf["id"]) == sorted(api)
    def value(v):  # GeoPackage NULL reads back as NaN or None
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    for row in gdf.itertuples():
        f = api[row.id]
        p = f["properties"]
        assert [row.geometry.x, row.geometry.y] == f["geometry"]["coordinates"]
        assert row.name == p["name"] and row.categories.split(";") == p["categories"]
        assert row.status == p["status"] and value(row.opening_hours) == p["opening_hours"]
        assert value(row.feature_changing_table) == p["features"].get("changing_table")
        assert value(row.municipality_code) == p["municipality_code"] and row.sector == p["sector"]
    with sqlite3.connect(path) as gpkg:  # the spatial index QGIS uses
        ext = gpkg.execute("SELECT table_name, extension_name FROM gpkg_extensions").fetchall()
        assert ("facilities", "gpkg_rtree_index") in ext
        assert gpkg.execute("SELECT count(*) FROM rtree_facilities_geom").fetchone()[0] == 3


def test_empty_slice_is_still_a_valid_geopackage(od_client, tmp_path):
    import geopandas as gpd

    path = tmp_path / "empty.gpkg"
    path.write_bytes(od_client.get("/downloads/facilities.gpkg?q=nothingmatchesthis").get_data())
    gdf = gpd.read_file(path)
    assert len(gdf) == 0 and "id" in gdf.columns


def test_sqlite_download_is_a_consistent_store_copy_or_a_flat_slice(od_client, tmp_path):
    whole = tmp_path / "whole.sqlite"
    whole.write_bytes(od_client.get("/downloads/facilities.sqlite").get_data())
    with sqlite3.connect(whole) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM facilities").fetchone()[0] == 6
        assert db.execute("SELECT count(*) FROM source_records").fetchone()[0] == 7
    part = tmp_path / "part.sqlite"
    part.write_bytes(od_client.get(f"/downloads/facilities.sqlite?{FILTER}").get_data())
    with sqlite3.connect(part) as db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(facilities)")]
        assert tuple(cols) == COLUMN_NAMES
        assert sorted(r[0] for r in db.execute("SELECT id FROM facilities")) == ["test-b1", "test-p1", "test-p2"]


def test_bad_download_parameters_are_json_400s_naming_the_parameter(od_client):
    for url, where in [("/downloads/facilities.xlsx", "format"), ("/downloads/facilities.csv?limit=10", "limit"),
                       ("/downloads/facilities.csv?bbox=1,2,3", "bbox"), ("/downloads/facilities.csv?colour=red", "colour")]:
        resp = od_client.get(url)
        assert resp.status_code == 400, url
        assert resp.get_json()["where"] == where


def test_export_cli_writes_the_same_csv(od_client, db_path, tmp_path):
    from click.testing import CliRunner

    from tests.clitool import make_cli
    cli = make_cli()

    out = tmp_path / "cli.csv"
    result = CliRunner().invoke(cli, ["--db", str(db_path), "export", "csv", "-o", str(out),
                                      "--category", "playground,baby_room", "--bbox", "25.0,54.5,25.5,54.9"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == od_client.get(f"/downloads/facilities.csv?{FILTER}").get_data()


def test_cors_etag_and_304(od_client):
    first = od_client.get("/api/facilities?category=playground")
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    etag = first.headers["ETag"]
    # features carry open_state: their ETag also holds the next opening-hours boundary, and a
    # date (Last-Modified) cannot say that (issue 14); the store's other answers share one ETag
    assert etag and "Last-Modified" not in first.headers
    again = od_client.get("/api/facilities?category=playground", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    areas = od_client.get("/api/areas")
    assert areas.headers["Last-Modified"]
    dl = od_client.get("/downloads/facilities.csv", headers={"If-None-Match": areas.headers["ETag"]})
    assert dl.status_code == 304
    since = od_client.get("/api/areas", headers={"If-Modified-Since": areas.headers["Last-Modified"]})
    assert since.status_code == 304
    pre = od_client.options("/api/facilities", headers={"Origin": "https://newsroom.example",
                                                       "Access-Control-Request-Method": "GET",
                                                       "Access-Control-Request-Headers": "If-None-Match"})
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "If-None-Match" in pre.headers["Access-Control-Allow-Headers"]
    assert "ETag" in first.headers["Access-Control-Expose-Headers"]


def test_etag_changes_when_the_store_changes(od_client, store):
    etag = od_client.get("/api/facilities").headers["ETag"]
    apply_records(store, [facility("new")], source="test", scope="other")
    resp = od_client.get("/api/facilities", headers={"If-None-Match": etag})
    assert resp.status_code == 200 and resp.headers["ETag"] != etag


def test_small_pages_give_the_same_files(od_client, store):
    """Keyset pages of 2 rows (bbox and plain scans) join into the same CSV and valid GeoJSON."""
    from directory.exports import csv_chunks, geojson_chunks
    from directory.query import parse_query

    for params in ({}, {"bbox": "25.0,54.5,25.5,54.9"}):
        query = parse_query(params)
        whole = b"".join(csv_chunks(store, query))
        assert b"".join(csv_chunks(store, query, batch=2)) == whole
        paged = json.loads(b"".join(geojson_chunks(store, query, batch=2)))
        ids = [f["id"] for f in paged["features"]]
        assert len(ids) == len(set(ids)) == len(read_csv(whole))


def test_whole_geopackage_is_built_once_per_store_version(od_client, store, settings):
    cache = settings.cache_dir / "exports"
    first = od_client.get("/downloads/facilities.gpkg").get_data()
    built = sorted(cache.glob("facilities-*.gpkg"))
    assert len(built) == 1 and built[0].read_bytes() == first
    mtime = built[0].stat().st_mtime_ns
    assert od_client.get("/downloads/facilities.gpkg").get_data() == first
    assert built[0].stat().st_mtime_ns == mtime  # served from the cache, not rebuilt
    apply_records(store, [facility("late")], source="test", scope="late")
    od_client.get("/downloads/facilities.gpkg").get_data()
    rebuilt = sorted(cache.glob("facilities-*.gpkg"))
    assert len(rebuilt) == 1 and rebuilt != built  # the new version replaced the old file
    assert not list(cache.glob("building-*"))


def test_licence_texts_with_commas_are_kept_whole_in_csv(od_client, store):
    """Licences are joined with '; ' and each is written as the source gave it (commas included)."""
    store.execute(
        "INSERT INTO source_records(source, source_id, facility_id, scope, licence, fetched_at, content_hash, data)"
        " VALUES ('muni', '7', 'test-p1', 'x', 'CC BY 4.0, attribution: Vilnius', NULL, 'h', '{}')"
    )
    store.execute("UPDATE source_records SET licence = 'CC BY 4.0, attribution: Vilnius' WHERE facility_id = 'test-p2'")
    rows = {r["id"]: r for r in read_csv(od_client.get("/downloads/facilities.csv").get_data())}
    assert set(rows["test-p1"]["licences"].split("; ")) == {"CC-BY-4.0", "ODbL-1.0", "CC BY 4.0, attribution: Vilnius"}
    assert rows["test-p2"]["licences"] == "CC BY 4.0, attribution: Vilnius"
