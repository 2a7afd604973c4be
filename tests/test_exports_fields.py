"""Exports carry every field (issue 12): the register's extras as typed columns in CSV, GeoJSON
and GeoPackage, area codes as text with their names, read back the documented way and compared
with the detail API, on the real Vilnius register and the real country OSM sample."""

from __future__ import annotations

import html
import json

import pandas as pd
import pytest

from directory import catalog
from directory.config import Settings
from directory.exports import COLUMN_NAMES, COLUMNS
from directory.model import EXTRA_FIELDS
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import facility

INTEGER_EXTRAS = [k for k, (kind, _) in EXTRA_FIELDS.items() if kind == "integer"]
CAPACITY_COLUMNS = ["capacity", "children", "free_places", "waiting_list"]


@pytest.fixture(scope="module")
def fields_db(tmp_path_factory, shared_data):
    """Real areas, the Vilnius kindergarten register (180, 8 without a position) and the country
    OSM sample, plus two hand-made rows for the edge cases."""
    from directory.areas_store import load_locator, save_areas
    from ingest.areas import read_areas
    from ingest.mapping import load_mapping
    from ingest.runs import run_osm, run_registry_files

    db = tmp_path_factory.mktemp("fields") / "fields.db"
    conn = connect(db)
    settings = Settings(db=db)
    save_areas(conn, read_areas(shared_data / "govlt-powerbi-map-lt"))
    run_registry_files(conn, load_mapping("vilnius-darzeliai"),
                       [shared_data / "vilnius-darzeliai" / "darzeliai_grupes.csv"], settings=settings, derive=False)
    run_osm(conn, settings=settings, files=[shared_data / "geodata-lt-osm-nodes" / "lithuania-2019-amenity-leisure.json.gz"],
            derive=False)
    apply_records(conn, [
        # A capacity that is not a whole number stays in the detail API only; a phone starting a
        # formula is guarded; a name "NA" is a name, not a missing value.
        facility("ranged", name="NA", categories=["kindergarten"], lon=25.28, lat=54.68,
                 extra={"capacity": "20-30", "phone": "=1+2", "languages": "Lietuvių"}),
    ], source="test", scope="edge", locator=load_locator(conn))
    conn.close()
    return db


@pytest.fixture(scope="module")
def fields_client(fields_db):
    from app import create_app

    # Its own cache directory: the whole-file GeoPackage cache is keyed on the content version,
    # which two test stores can share.
    app = create_app(Settings(db=fields_db, offline=True, tile_url="", cache_dir=fields_db.parent / "cache"))
    app.testing = True
    return app.test_client()


def detail(client, facility_id: str) -> dict:
    resp = client.get(f"/api/facilities/{facility_id}")
    assert resp.status_code == 200
    return resp.get_json(force=True)["properties"]


def served_as_files(client, tmp_path, name: str = "facilities.csv") -> str:
    """The site's datapackage.json and a download laid out under a file:// base URL, so the
    documented recipe runs unchanged (no network in tests)."""
    (tmp_path / "datasets").mkdir(exist_ok=True)
    (tmp_path / "downloads").mkdir(exist_ok=True)
    (tmp_path / "datasets" / "datapackage.json").write_bytes(client.get("/datasets/datapackage.json").get_data())
    (tmp_path / "downloads" / name).write_bytes(client.get(f"/downloads/{name}").get_data())
    return f"file://{tmp_path}"


def same(cell, value) -> bool:
    """A CSV cell equals the API's value; a missing cell is an absent value."""
    return value is None if pd.isna(cell) else cell == value


def run_recipe(text: str) -> dict:
    scope: dict = {}
    exec(compile(text, "<documented recipe>", "exec"), scope)  # noqa: S102 (our own documented text)
    return scope


def test_pandas_reads_the_csv_as_documented_matching_the_detail_api(fields_client, tmp_path):
    base = served_as_files(fields_client, tmp_path)
    recipe = catalog.pandas_recipe(base_url=base)
    # The recipe on the pages is this very text (with the site's own address).
    page = html.unescape(fields_client.get("/datasets").get_data(as_text=True))
    assert catalog.pandas_recipe(base_url="http://localhost/") in page
    df = run_recipe(recipe)["df"].set_index("id")
    assert list(df.columns) == list(COLUMN_NAMES[1:])
    assert str(df["municipality_code"].dtype) == "string" and str(df["eldership_code"].dtype) == "string"
    for column in INTEGER_EXTRAS:
        assert str(df[column].dtype) == "Int64", column
    assert str(df["latitude"].dtype) == "float64"

    register = df[df["sources"].str.startswith("vilnius-darzeliai:")]
    assert len(register) == 180 and set(register["municipality_code"]) == {"13"}
    assert set(register["municipality"]) == {"Vilniaus m. sav."}
    unplaced = register[register["latitude"].isna()]
    assert len(unplaced) == 8 and unplaced["eldership_code"].isna().all()
    for facility_id, row in register.iterrows():
        api = detail(fields_client, facility_id)
        assert row["municipality_code"] == api["municipality_code"]
        assert (None if pd.isna(row["eldership_code"]) else row["eldership_code"]) == api["eldership_code"]
        for column in INTEGER_EXTRAS:
            assert same(row[column], api["extra"].get(column)), (facility_id, column)
        assert row["groups"].split(";") == api["extra"]["groups"]
        assert row["languages"].split(";") == api["extra"]["languages"]
        assert same(row["elderate"], api["extra"].get("elderate"))
    assert register["capacity"].notna().all() and register["waiting_list"].notna().sum() > 150
    # Codes keep their form: an eldership code is text, never 1301.0.
    assert register["eldership_code"].dropna().str.fullmatch(r"\d{4}").all()

    edge = df.loc["test-ranged"]
    assert edge["name"] == "NA"  # a name, not a missing value
    assert pd.isna(edge["capacity"]) and detail(fields_client, "test-ranged")["extra"]["capacity"] == "20-30"
    assert edge["phone"] == "'=1+2"  # the formula guard, as for every source-written text
    assert edge["languages"] == "Lietuvių"
    osm = df[df["sources"].str.startswith("osm:")]
    assert len(osm) > 900 and osm["capacity"].isna().sum() > 800


def test_plain_read_csv_would_guess_codes_as_numbers(fields_client, tmp_path):
    """Why the recipe exists: a CSV cannot type a column, and pandas guesses from the values."""
    base = served_as_files(fields_client, tmp_path)
    guessed = pd.read_csv(f"{base}/downloads/facilities.csv", encoding="utf-8-sig")
    assert str(guessed["municipality_code"].dtype) != "string"
    body = fields_client.get("/downloads/facilities.csv").get_data()
    assert body.startswith(b"\xef\xbb\xbf") and b"\r\n" in body  # the byte layout is unchanged


def test_geojson_carries_the_extras_typed(fields_client):
    body = fields_client.get("/downloads/facilities.geojson").get_json(force=True)
    by_id = {f["id"]: f["properties"] for f in body["features"]}
    kg = next(p for fid, p in by_id.items() if fid.startswith("vilnius-darzeliai-"))
    api = detail(fields_client, next(fid for fid in by_id if fid.startswith("vilnius-darzeliai-")))
    for key in EXTRA_FIELDS:
        assert key in kg
    for column in CAPACITY_COLUMNS:
        assert kg[column] == api["extra"][column] and isinstance(kg[column], int)
    assert kg["groups"] == api["extra"]["groups"] and isinstance(kg["groups"], list)
    assert kg["municipality_code"] == "13" and kg["municipality"] == "Vilniaus m. sav."
    assert by_id["test-ranged"]["capacity"] is None and by_id["test-ranged"]["languages"] == ["Lietuvių"]


def test_geopackage_has_the_same_columns_and_types(fields_client, tmp_path):
    import pyogrio

    base = served_as_files(fields_client, tmp_path)
    served_as_files(fields_client, tmp_path, "facilities.gpkg")
    info = pyogrio.read_info(tmp_path / "downloads" / "facilities.gpkg", layer="facilities")
    stored = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert list(stored) == list(COLUMN_NAMES)
    for c in COLUMNS:  # the file's own column types follow datapackage.json
        assert stored[c.name] == {"integer": "int64", "number": "float64"}.get(c.type, "object"), c.name

    scope = run_recipe(catalog.pandas_recipe(base_url=base) + catalog.geopandas_recipe(base_url=base))
    gdf, df = scope["gdf"], scope["df"]
    assert list(gdf.columns) == [*COLUMN_NAMES, "geometry"]
    assert dict(gdf.drop(columns="geometry").dtypes.astype(str)) == dict(df.dtypes.astype(str))
    # A CSV cell cannot tell an empty text (an unnamed OSM place's name is "") from no value: the
    # recipe reads both as missing. The GeoPackage keeps the difference; compare what CSV carries.
    flat = gdf.drop(columns="geometry").set_index("id").sort_index()
    texts = [c.name for c in COLUMNS if c.type in ("string", "datetime") and c.name != "id"]
    flat[texts] = flat[texts].mask(flat[texts] == "")
    # And the CSV's formula guard (a leading apostrophe) is for spreadsheets, not in the data.
    csv_frame = df.set_index("id").sort_index()
    csv_frame[texts] = csv_frame[texts].replace(r"^'([=+\-@\t\r])", r"\1", regex=True)
    pd.testing.assert_frame_equal(flat, csv_frame)
    page = html.unescape(fields_client.get("/datasets").get_data(as_text=True))
    assert catalog.geopandas_recipe(base_url="http://localhost/") in page


def test_datapackage_types_the_extras_and_frictionless_validates(fields_client, tmp_path):
    from frictionless import Package

    pkg = fields_client.get("/datasets/datapackage.json").get_json()
    types = {f["name"]: f["type"] for f in pkg["resources"][0]["schema"]["fields"]}
    assert [types[c] for c in CAPACITY_COLUMNS] == ["integer"] * 4
    assert types["municipality_code"] == types["eldership_code"] == "string"
    (tmp_path / "facilities.csv").write_bytes(fields_client.get("/downloads/facilities.csv").get_data())
    pkg["resources"][0]["path"] = "facilities.csv"
    (tmp_path / "datapackage.json").write_text(json.dumps(pkg))
    report = Package(str(tmp_path / "datapackage.json")).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:5]
    assert report.tasks[0].stats["rows"] > 1100
    # Documented: every column on /datasets, and the recipe on /api.
    page = fields_client.get("/datasets?lang=en").get_data(as_text=True)
    for key in EXTRA_FIELDS:
        assert f"<code>{key}</code>" in page
    api_page = html.unescape(fields_client.get("/api").get_data(as_text=True))
    assert catalog.pandas_recipe(base_url="http://localhost", query="?category=playground") in api_page
