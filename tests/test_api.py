"""The HTTP API: GeoJSON shape, keyset paging links, 400s that name the parameter, detail, areas."""

from __future__ import annotations

from directory.store import connect
from directory.sync import apply_records
from tests.conftest import facility


def fill(settings, records):
    conn = connect(settings.db)
    apply_records(conn, records, source="test", scope="s")
    conn.close()


def test_facilities_geojson_and_paging(settings, client):
    fill(settings, [facility(str(i), lon=25.0 + i / 100, lat=54.7) for i in range(5)])
    resp = client.get("/api/facilities?bbox=24.9,54.6,25.2,54.8&limit=2")
    assert resp.status_code == 200
    assert resp.mimetype == "application/geo+json"
    body = resp.get_json(force=True)
    assert body["type"] == "FeatureCollection" and "crs" not in body
    assert [f["id"] for f in body["features"]] == ["test-0", "test-1"]
    f0 = body["features"][0]
    assert f0["geometry"] == {"type": "Point", "coordinates": [25.0, 54.7]}  # lon, lat order
    assert f0["properties"]["licence"] == "CC-BY-4.0"
    seen = [f["id"] for f in body["features"]]
    while body["next"]:
        assert body["links"][0]["rel"] == "next"
        body = client.get(body["next"]).get_json(force=True)
        seen += [f["id"] for f in body["features"]]
    assert seen == [f"test-{i}" for i in range(5)]


def test_bad_parameter_is_a_400_naming_it(settings, client):
    resp = client.get("/api/facilities?bbox=25,54,24")
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["where"] == "bbox" and "west,south,east,north" in body["message"]
    resp = client.get("/api/facilities?category=spa")
    assert resp.status_code == 400 and resp.get_json()["where"] == "category"


def test_detail_and_404(settings, client):
    fill(settings, [facility("x", name="<img src=x onerror=alert(1)>", features={"changing_table": "yes"})])
    body = client.get("/api/facilities/test-x").get_json(force=True)
    assert body["properties"]["name"] == "<img src=x onerror=alert(1)>"
    assert body["properties"]["sources"][0]["licence"] == "CC-BY-4.0"
    resp = client.get("/api/facilities/nope")
    assert resp.status_code == 404 and resp.get_json()["error"] == "NotFound"
    assert client.get("/api/nothing-here").status_code == 404


def test_map_page_is_offline_and_small(settings, client):
    html = client.get("/").get_data(as_text=True)
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert "cdn.jsdelivr" not in html and "code.jquery" not in html and "bootstrapcdn" not in html
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200
