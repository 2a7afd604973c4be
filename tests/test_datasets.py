"""Dataset metadata: the /datasets page, DCAT-AP catalogue and Frictionless data package, with
licences as the store holds them (OSM: ODbL 1.0 with attribution; every other source listed)."""

from __future__ import annotations

import csv
import io

import pytest

from directory.exports import COLUMN_NAMES
from directory.sync import apply_records
from tests.conftest import FIXTURES, facility


@pytest.fixture
def mixed_client(make_app, store):
    from ingest import osm

    records = (osm.element_to_facility(el, fetched_at="2026-01-02T03:04:05Z")
               for el in osm.read_elements(FIXTURES / "overpass_sample.json", keep=osm.is_of_interest))
    apply_records(store, (r for r in records if r is not None), source="osm", scope="sample")
    apply_records(store, [facility("r1", licence="CC-BY-4.0"), facility("r2", licence="Municipal-Open-1")],
                  source="registry", scope="r")
    return make_app().test_client()


def test_datasets_page_lists_every_licence_and_the_downloads(mixed_client):
    page = mixed_client.get("/datasets?lang=en").get_data(as_text=True)  # English names (LT: translated)
    assert "Open Database License" in page and "OpenStreetMap contributors" in page
    assert "Creative Commons Attribution 4.0" in page and "Municipal-Open-1" in page
    for fmt in ("csv", "geojson", "gpkg", "sqlite"):
        assert f"/downloads/facilities.{fmt}" in page
    assert "/datasets/catalog.jsonld" in page and "/datasets/datapackage.json" in page


def test_dcat_catalogue_describes_each_distribution(mixed_client):
    resp = mixed_client.get("/datasets/catalog.jsonld")
    assert resp.mimetype == "application/ld+json" and resp.headers["Access-Control-Allow-Origin"] == "*"
    doc = resp.get_json(force=True)
    assert doc["@type"] == "dcat:Catalog" and "dcat" in doc["@context"]
    dataset = doc["dcat:dataset"][0]
    assert "POLYGON" in dataset["dct:spatial"]["dcat:bbox"]["@value"]
    assert dataset["dct:modified"]["@value"]
    licences = {entry["@id"] for entry in dataset["dct:license"]}
    assert "https://opendatacommons.org/licenses/odbl/1-0/" in licences and "Municipal-Open-1" in licences
    dists = {d["dct:format"]: d for d in dataset["dcat:distribution"] if "dct:format" in d}
    assert set(dists) == {"CSV", "GEOJSON", "GPKG", "SQLITE"}
    for fmt, d in dists.items():
        assert d["dcat:downloadURL"]["@id"].endswith(f"/downloads/facilities.{fmt.lower()}")
        assert d["dcat:mediaType"]["@id"].startswith("https://www.iana.org/assignments/media-types/")
        assert d["dct:license"] and d["dct:modified"]["@value"]
        assert "OpenStreetMap contributors" in d["dct:rights"]["rdfs:label"]


def test_datapackage_describes_the_csv_exactly(mixed_client):
    pkg = mixed_client.get("/datasets/datapackage.json").get_json()
    resource = pkg["resources"][0]
    fields = resource["schema"]["fields"]
    header = next(csv.reader(io.StringIO(mixed_client.get(resource["path"].replace("http://localhost", ""))
                                         .get_data().decode("utf-8-sig"))))
    assert [f["name"] for f in fields] == header == list(COLUMN_NAMES)
    assert {f["name"]: f["type"] for f in fields}["latitude"] == "number"
    assert resource["encoding"] == "utf-8-sig" and resource["schema"]["primaryKey"] == ["id"]
    assert {lic["name"] for lic in pkg["licenses"]} == {"ODbL-1.0", "CC-BY-4.0", "Municipal-Open-1"}


def test_nav_links_to_open_data(mixed_client):
    assert 'href="/datasets"' in mixed_client.get("/").get_data(as_text=True)


def test_frictionless_validates_the_csv_against_the_datapackage(mixed_client, tmp_path):
    """The data package really describes the file: frictionless checks every cell's type."""
    import json as _json

    from frictionless import Package

    (tmp_path / "facilities.csv").write_bytes(mixed_client.get("/downloads/facilities.csv").get_data())
    pkg = mixed_client.get("/datasets/datapackage.json").get_json()
    pkg["resources"][0]["path"] = "facilities.csv"  # the same file, read locally (no network in tests)
    (tmp_path / "datapackage.json").write_text(_json.dumps(pkg))
    report = Package(str(tmp_path / "datapackage.json")).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    assert report.tasks[0].stats["rows"] == 6


def test_catalogue_is_real_json_ld_with_dcat_terms(mixed_client):
    """rdflib reads the catalogue as RDF: a dcat:Dataset with distributions, media types and licences."""
    from rdflib import Graph, Namespace
    from rdflib.namespace import DCAT, DCTERMS, RDF

    g = Graph().parse(data=mixed_client.get("/datasets/catalog.jsonld").get_data(as_text=True), format="json-ld")
    datasets = list(g.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == 1
    dists = list(g.objects(datasets[0], DCAT.distribution))
    assert len(dists) == 5  # four downloads and the API
    for d in dists:
        assert (d, DCAT.mediaType, None) in g and (d, DCTERMS.license, None) in g
    assert (datasets[0], DCTERMS.spatial, None) in g and (datasets[0], DCTERMS.modified, None) in g
    odbl = Namespace("https://opendatacommons.org/licenses/odbl/")
    assert (datasets[0], DCTERMS.license, odbl["1-0/"]) in g
