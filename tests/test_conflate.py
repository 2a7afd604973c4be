"""Conflation: the labelled pair set from the real Vilnius register, and merging in the store."""

from __future__ import annotations

import json
from pathlib import Path

from directory.config import Settings
from directory.conflate import Thresholds, decide, make_matcher, name_score, thresholds_from
from directory.model import Facility
from directory.store import get_facility
from directory.sync import apply_records
from ingest.mapping import load_mapping
from ingest.registry import run_registry

PAIRS = Path(__file__).resolve().parent / "fixtures" / "conflation_pairs.json"


def test_precision_and_recall_on_labelled_pairs(capsys):
    pairs = json.loads(PAIRS.read_text(encoding="utf-8"))
    assert len(pairs) >= 40
    assert sum(p["same"] for p in pairs) >= 20 and sum(not p["same"] for p in pairs) >= 20
    assert any("same address" in p["note"] for p in pairs) and any("school" in p["note"] for p in pairs)
    th = thresholds_from(Settings())
    tp = fp = fn = 0
    for p in pairs:
        same = decide(p["a"], p["b"], th).same
        tp += same and p["same"]
        fp += same and not p["same"]
        fn += (not same) and p["same"]
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    with capsys.disabled():
        print(f"\nconflation on {len(pairs)} labelled pairs: precision {precision:.3f}, recall {recall:.3f}"
              f" (tp {tp}, fp {fp}, fn {fn})")
    assert precision >= 0.95 and recall >= 0.95


def test_name_normalisation():
    assert name_score("Lopšelis-darželis „Aušrelė“", "Ausrele l/d") == 1.0
    assert name_score("VšĮ Žiogelis", "Vilniaus lopšelis-darželis Žiogelis") == 1.0
    assert name_score("Aušrelės darželis", "Aušrelė") >= 0.9
    assert name_score("Pasaka", "Spragtukas") < 0.5
    assert name_score("Lopšelis-darželis", "Lopšelis-darželis") == 0.0  # nothing distinguishing left
    # A school and a kindergarten with the same name in one building stay two.
    a = {"name": "Vaduvos", "categories": ["kindergarten"], "lon": 25.3, "lat": 54.7}
    b = {"name": "Vaduvos gimnazija", "categories": ["kindergarten"], "lon": 25.3, "lat": 54.7}
    assert not decide(a, b, Thresholds()).same


def osm(source_id, **kw):
    base = dict(source="osm", source_id=source_id, name="", categories=["kindergarten"], lon=None, lat=None,
                licence="ODbL-1.0")
    base.update(kw)
    return Facility(**base)


def test_registry_and_osm_merge_into_one_facility(store, settings, shared_data, make_app):
    csv_path = shared_data / "vilnius-darzeliai" / "darzeliai_grupes.csv"
    run_registry(store, load_mapping("vilnius-darzeliai"), [csv_path], settings=settings, locator=None,
                 fetched_at="2026-11-28T12:00:00Z")
    reg = get_facility(store, "vilnius-darzeliai-143")  # Aušrelė, Gerosios Vilties g. 28
    lon, lat = reg["lon"] + 0.0004, reg["lat"] + 0.0002  # ~33 m away
    matcher = make_matcher(thresholds_from(settings))
    records = [
        osm("node/1", name="Lopšelis-darželis „Aušrelė“", lon=lon, lat=lat, opening_hours="Mo-Fr 07:00-18:00",
            features={"wheelchair": "no"}, extra={"website": "https://ausrele.lt"}),
        osm("node/2", name="Aušrelės progimnazija", lon=lon, lat=lat),  # a school in the same building
    ]
    rep = apply_records(store, records, source="osm", scope="vilnius", matcher=matcher)
    assert (rep.added, rep.merged) == (2, 1)
    fac = get_facility(store, "vilnius-darzeliai-143")
    assert get_facility(store, "osm-node-2") is not None and get_facility(store, "osm-node-1") is None
    # Registry wins the name and capacity, OSM the position and opening hours; the conflicts are kept.
    assert fac["name"] == "Aušrelė" and fac["extra"]["capacity"] == reg["extra"]["capacity"]
    assert (fac["lon"], fac["lat"], fac["opening_hours"]) == (lon, lat, "Mo-Fr 07:00-18:00")
    assert fac["extra"]["website"] == "https://ausrele.lt"
    fields = {c["field"]: c for c in fac["conflicts"]}
    assert fields["name"]["values"] == {"vilnius-darzeliai:143": "Aušrelė", "osm:node/1": "Lopšelis-darželis „Aušrelė“"}
    assert fields["name"]["chosen"] == "Aušrelė" and "position" in fields
    match = fac["sources"][1]["match"]
    assert fac["sources"][1]["source"] == "osm" and match["name_score"] == 1.0 and 20 < match["distance_m"] < 50
    # The detail JSON lists both sources with their licences, the merge reason and the conflicts.
    body = make_app().test_client().get("/api/facilities/vilnius-darzeliai-143").get_json()
    props = body["properties"]
    assert {(s["source"], s["licence"]) for s in props["sources"]} == {
        ("vilnius-darzeliai", "Vilnius city open data (licence not stated)"), ("osm", "ODbL-1.0")}
    assert props["licence"] == "Vilnius city open data (licence not stated); ODbL-1.0"
    assert props["sources"][1]["match"]["distance_m"] == match["distance_m"] and props["conflicts"]
    # The detail page shows them too: both names, which one is shown, and why the records were linked.
    page = make_app().test_client().get("/facility/vilnius-darzeliai-143?lang=en").get_data(as_text=True)
    assert "Where the sources disagree" in page and "Lopšelis-darželis „Aušrelė“" in page
    assert "Aušrelė <strong>(shown)</strong>" in page
    assert f"{round(match['distance_m'])} m apart, name similarity 1.00" in page
    # Re-ingesting both changes nothing and keeps the id.
    again = apply_records(store, records, source="osm", scope="vilnius", matcher=matcher)
    assert (again.unchanged, again.added) == (2, 0)
    rerun, _ = run_registry(store, load_mapping("vilnius-darzeliai"), [csv_path], settings=settings, locator=None,
                            fetched_at="2026-11-28T13:00:00Z")
    assert rerun.unchanged == 180 and get_facility(store, "vilnius-darzeliai-143")["opening_hours"] == "Mo-Fr 07:00-18:00"
    # OSM drops it: the place stays (the register still describes it), with the register's values only.
    gone = apply_records(store, [records[1]], source="osm", scope="vilnius", matcher=matcher)
    assert gone.removed == 1
    fac = get_facility(store, "vilnius-darzeliai-143")
    assert fac["status"] == "active" and (fac["lon"], fac["opening_hours"], fac["conflicts"]) == (reg["lon"], None, [])
    # OSM has it again: it links back to the same facility.
    back = apply_records(store, records, source="osm", scope="vilnius", matcher=matcher)
    assert back.added == 1 and get_facility(store, "vilnius-darzeliai-143")["opening_hours"] == "Mo-Fr 07:00-18:00"


def test_removed_only_when_no_source_describes_it(store, settings):
    matcher = make_matcher(thresholds_from(settings))
    reg = Facility(source="reg", source_id="1", name="Dienos centras Saulutė", categories=["day_centre"],
                   lon=25.28, lat=54.68, licence="CC-BY-4.0")
    apply_records(store, [reg], source="reg", scope="s")
    apply_records(store, [osm("n1", name="Saulutė", categories=["day_centre"], lon=25.2801, lat=54.6801)],
                  source="osm", scope="s", matcher=matcher)
    apply_records(store, [], source="reg", scope="s")
    fac = get_facility(store, "reg-1")
    assert fac["status"] == "active" and fac["name"] == "Saulutė"  # OSM still describes it
    apply_records(store, [], source="osm", scope="s")
    assert get_facility(store, "reg-1")["status"] == "removed"
