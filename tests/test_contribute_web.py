"""The contribution forms, the moderation queue, editors' edits and uploads, and Open311, through
the Flask app (test client): CSRF on every form, 403 outside an editor's area by URL and by form
post, nothing public before approval, attribution by role on /changes and /api/changes."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path

import pytest

from app import create_app
from directory.config import Settings
from tests.authtool import add_account, csrf_token, sign_in
from tests.contrib_data import KAUNAS, KAUNAS_POINT, VILNIUS, VILNIUS_POINT, build_public, copy_store
from tests.storecheck import store_digest

ROOT = Path(__file__).resolve().parents[1]
ACTOR = "public suggestion, approved by editor, Vilniaus m. sav."


@pytest.fixture(scope="session")
def web_template(tmp_path_factory, shared_data) -> Path:
    d = tmp_path_factory.mktemp("contrib-web")
    return build_public(d / "public.db", shared_data, d)


@pytest.fixture
def site(web_template, tmp_path):
    """An app on a copy of the store, with editors of Vilnius and Kaunas."""

    db = copy_store(web_template, tmp_path / "atvira.db")
    settings = Settings(db=db, cache_dir=tmp_path / "cache", offline=True, tile_url="", snapshots_dir=tmp_path / "snaps",
                        submission_limit="1000 per minute")
    add_account(settings, login="vilnius", municipalities=[VILNIUS])
    add_account(settings, login="kaunas", municipalities=[KAUNAS])
    app = create_app(settings)
    app.testing = True
    return type("Site", (), {"app": app, "db": db, "settings": settings,
                             "private": settings.private_db_path()})


def private_rows(site) -> list[tuple]:
    conn = sqlite3.connect(site.private)
    try:
        return [tuple(r) for r in conn.execute("SELECT * FROM contributions ORDER BY id")]
    finally:
        conn.close()


def add_form(client, **changes) -> dict:
    form = {"csrf_token": csrf_token(client, "/contribute"), "category": "baby_room",
            "name": "Motinos ir vaiko kambarys „Ąžuolas“", "lat": f"{VILNIUS_POINT[1]}", "lon": f"{VILNIUS_POINT[0]}",
            "features": ["changing_table", "feeding_room"], "opening_hours": "Mo-Fr 08:00-18:00",
            "note": "Antrame aukšte", "email": "mama@example.lt", "licence": "yes", "website": ""}
    form.update(changes)
    return form


def submitted_id(resp) -> int:
    assert resp.status_code == 303, resp.get_data(as_text=True)[-800:]
    return int(re.search(r"id=(\d+)", resp.headers["Location"]).group(1))


def test_add_place_is_pending_until_approved_then_published_and_attributed(site):
    public = site.app.test_client()
    cid = submitted_id(public.post("/contribute", data=add_form(public)))
    name = "Motinos ir vaiko kambarys „Ąžuolas“"
    bbox = "25.27,54.68,25.29,54.70"
    assert name not in public.get(f"/api/facilities?bbox={bbox}").get_data(as_text=True)
    assert name not in public.get("/downloads/facilities.csv").get_data(as_text=True)

    editor = site.app.test_client()
    sign_in(editor, "vilnius")
    queue = editor.get("/moderate").get_data(as_text=True)
    assert f'data-id="{cid}"' in queue and name in queue and "mama@example.lt" not in queue
    resp = editor.post(f"/moderate/{cid}/approve", data={"csrf_token": csrf_token(editor, "/moderate")})
    assert resp.status_code == 303

    features = public.get(f"/api/facilities?bbox={bbox}").get_json()["features"]
    added = [f for f in features if f["properties"]["name"] == name]
    assert len(added) == 1 and added[0]["id"] == f"contributions-c{cid}"
    csv = public.get("/downloads/facilities.csv").get_data(as_text=True)
    line = next(x for x in csv.splitlines() if name in x)
    assert f"contributions:c{cid}" in line
    changes = public.get("/api/changes").get_json()["changes"]
    assert [c["actor"] for c in changes if c["facility_id"] == f"contributions-c{cid}"] == [ACTOR]
    assert ACTOR in public.get("/changes", headers={"Accept-Language": "en"}).get_data(as_text=True)
    for body in (csv, public.get("/api/changes").get_data(as_text=True), public.get("/changes").get_data(as_text=True)):
        assert "mama@example.lt" not in body and "vilnius" not in body.lower().replace("vilniaus", "")


def test_forms_without_a_csrf_token_are_400_and_store_nothing(site):
    client = site.app.test_client()
    before, before_private = store_digest(site.db), private_rows(site)
    form = add_form(client)
    form.pop("csrf_token")
    assert client.post("/contribute", data=form).status_code == 400
    assert client.post("/facility/osm-node-501/still-here", data={}).status_code == 400
    form["csrf_token"] = "forged." + "x" * 40
    assert client.post("/contribute", data=form).status_code == 400
    assert store_digest(site.db) == before and private_rows(site) == before_private


def test_an_editor_of_kaunas_gets_403_for_vilnius_by_url_and_by_form_post(site):
    public = site.app.test_client()
    cid = submitted_id(public.post("/contribute", data=add_form(public)))
    kaunas = site.app.test_client()
    sign_in(kaunas, "kaunas")
    token = csrf_token(kaunas, "/moderate")
    assert f'data-id="{cid}"' not in kaunas.get("/moderate").get_data(as_text=True)
    before, before_private = store_digest(site.db), private_rows(site)
    assert kaunas.get(f"/moderate/{cid}").status_code == 403
    assert kaunas.post(f"/moderate/{cid}/approve", data={"csrf_token": token}).status_code == 403
    assert kaunas.post(f"/moderate/{cid}/reject", data={"csrf_token": token, "reason": "x"}).status_code == 403
    assert kaunas.get("/facility/osm-node-501/edit").status_code == 403
    resp = kaunas.post("/facility/osm-node-501/edit", data={"csrf_token": token, "opening_hours": "24/7"})
    assert resp.status_code == 403
    assert store_digest(site.db) == before and private_rows(site) == before_private
    # their own library is theirs to edit
    assert kaunas.get("/facility/osm-node-503/edit").status_code == 200


def test_not_signed_in_goes_to_login(site):
    client = site.app.test_client()
    resp = client.get("/moderate")
    assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"]


def test_report_still_here_and_the_detail_page_links(site):
    client = site.app.test_client()
    page = client.get("/facility/osm-node-501?lang=en").get_data(as_text=True)
    assert "/facility/osm-node-501/report" in page and "still-here" in page
    report = client.get("/facility/osm-node-501/report?lang=en").get_data(as_text=True)
    assert "not available yet" not in report and 'name="problem"' in report
    cid = submitted_id(client.post("/facility/osm-node-501/report", data={
        "csrf_token": csrf_token(client, "/facility/osm-node-501/report"), "problem": "closed", "licence": "yes"}))
    sid = submitted_id(client.post("/facility/osm-node-501/still-here", data={
        "csrf_token": csrf_token(client, "/facility/osm-node-501")}))
    assert sid == cid + 1
    editor = site.app.test_client()
    sign_in(editor, "vilnius")
    token = csrf_token(editor, "/moderate")
    assert editor.post(f"/moderate/{cid}/approve", data={"csrf_token": token}).status_code == 303
    fac = client.get("/api/facilities/osm-node-501").get_json()
    assert fac["properties"]["status"] == "closed"
    # a replayed approval: a clear 409, nothing changes
    before = store_digest(site.db)
    resp = editor.post(f"/moderate/{cid}/approve", data={"csrf_token": token})
    assert resp.status_code == 409 and "already approved" in resp.get_data(as_text=True)
    assert store_digest(site.db) == before


def test_bad_form_input_is_listed_and_escaped(site):
    client = site.app.test_client()
    resp = client.post("/contribute", data=add_form(client, name="<script>alert(1)</script>", lat="56.95",
                                                    lon="24.10", category="zoo"))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400
    for needle in ("contains &lt; or &gt;", "&#39;zoo&#39; is not one of", "outside every loaded area"):
        assert needle in body
    assert "<script>alert(1)</script>" not in body


def test_editor_edit_publishes_at_once_attributed_to_the_role(site):
    editor = site.app.test_client()
    sign_in(editor, "vilnius")
    resp = editor.post("/facility/osm-node-501/edit", data={
        "csrf_token": csrf_token(editor, "/facility/osm-node-501/edit"), "opening_hours": "Mo-Fr 10:00-19:00",
        "operator": "", "sector": "public", "status": "active", "features.open_foyer": "yes",
        "features.changing_table": "keep"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[-500:]
    fac = editor.get("/api/facilities/osm-node-501").get_json()["properties"]
    assert fac["features"]["open_foyer"] == "yes" and fac["sector"] == "public"
    change = [c for c in editor.get("/api/changes").get_json()["changes"] if c["facility_id"] == "osm-node-501"]
    assert change[0]["actor"] == "editor, Vilniaus m. sav."


def test_municipal_upload_through_the_web_lists_every_problem_and_refuses_other_municipalities(site, tmp_path):
    editor = site.app.test_client()
    sign_in(editor, "vilnius")
    token = csrf_token(editor, "/moderate/upload")
    template = (ROOT / "docs" / "templates" / "municipal-upload.csv").read_text(encoding="utf-8")
    kaunas_row = f"kdc-1,Kauno centras,day_centre,{KAUNAS_POINT[1]},{KAUNAS_POINT[0]},,,public,,,,,,,,,,\n"
    bad_row = "bad-1,,zoo,54.69,25.28,,,public,,,,,,,,,,\n"
    before = store_digest(site.db)
    resp = editor.post("/moderate/upload", data={"csrf_token": token, "municipality": VILNIUS, "file": (
        io.BytesIO((template + kaunas_row + bad_row).encode()), "upload.csv")},
        content_type="multipart/form-data")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "outside your municipality" in body and "empty name" in body and "unknown value &#39;zoo&#39;" in body
    assert store_digest(site.db) == before
    resp = editor.post("/moderate/upload", data={"csrf_token": token, "municipality": KAUNAS, "file": (
        io.BytesIO(template.encode()), "upload.csv")}, content_type="multipart/form-data")
    assert resp.status_code == 403 and store_digest(site.db) == before
    resp = editor.post("/moderate/upload", data={"csrf_token": token, "municipality": VILNIUS, "file": (
        io.BytesIO(template.encode()), "upload.csv")}, content_type="multipart/form-data")
    assert resp.status_code == 200 and "2 added" in resp.get_data(as_text=True)
    change = [c for c in editor.get("/api/changes").get_json()["changes"] if c["source"] == "municipal-upload"]
    assert {c["actor"] for c in change} == {"editor, Vilniaus m. sav."}


# --- Open311 --------------------------------------------------------------------------------------

GEOREPORT_FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                    "requested_datetime", "updated_datetime", "address", "lat", "long"}


def test_open311_services_and_a_post_creating_a_pending_request(site):
    client = site.app.test_client()
    services = client.get("/open311/v2/services.json").get_json()
    assert {"add_place", "closed", "still_here"} <= {s["service_code"] for s in services}
    for s in services:
        assert {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"} <= s.keys()
    definition = client.get("/open311/v2/services/add_place.json").get_json()
    assert {a["code"] for a in definition["attributes"]} >= {"licence", "category", "name"}
    before = store_digest(site.db)
    resp = client.post("/open311/v2/requests.json", data={
        "service_code": "add_place", "lat": VILNIUS_POINT[1], "long": VILNIUS_POINT[0], "email": "tetis@example.lt",
        "description": "Vystymo stalas", "attribute[category]": "baby_room", "attribute[name]": "Kambarys",
        "attribute[licence]": "yes", "attribute[feature.changing_table]": "yes"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    rid = resp.get_json()[0]["service_request_id"]
    assert store_digest(site.db) == before
    one = client.get(f"/open311/v2/requests/{rid}.json").get_json()
    assert len(one) == 1 and GEOREPORT_FIELDS <= one[0].keys()
    assert one[0]["status"] == "open" and one[0]["service_code"] == "add_place"
    assert (one[0]["lat"], one[0]["long"]) == (VILNIUS_POINT[1], VILNIUS_POINT[0])
    listed = client.get("/open311/v2/requests.json?status=open").get_json()
    assert rid in {r["service_request_id"] for r in listed}
    for body in (client.get("/open311/v2/requests.json").get_data(as_text=True),
                 client.get(f"/open311/v2/requests/{rid}.json").get_data(as_text=True)):
        assert "tetis@example.lt" not in body
    # rejected: closed with the reason as the status notes
    editor = site.app.test_client()
    sign_in(editor, "vilnius")
    editor.post(f"/moderate/{rid}/reject", data={"csrf_token": csrf_token(editor, "/moderate"), "reason": "Dublikatas"})
    one = client.get(f"/open311/v2/requests/{rid}.json").get_json()[0]
    assert one["status"] == "closed" and one["status_notes"] == "rejected: Dublikatas"


def test_open311_errors_use_the_spec_shape(site):
    client = site.app.test_client()
    before = private_rows(site)
    resp = client.post("/open311/v2/requests.json", data={"service_code": "nope"})
    assert resp.status_code == 400 and resp.get_json()[0]["code"] == 400
    resp = client.post("/open311/v2/requests.json", data={"service_code": "add_place", "lat": "56.95", "long": "24.1",
                                                           "attribute[category]": "baby_room",
                                                           "attribute[name]": "x"})
    err = resp.get_json()[0]
    assert resp.status_code == 400 and "licence" in err["description"] and "outside every loaded area" in err["description"]
    assert client.get("/open311/v2/requests/999999.json").status_code == 404
    assert private_rows(site) == before
