"""Bad-input scenarios for contributions (adapter "contribution" in tests/bad_inputs/manifest.toml).

Each scenario gets a client over the case's copy of the seeded store (one area, Vilniaus m. sav.
"13", covering Lithuania; the OSM library `osm-node-101` in it) with its own private store and
two editors (`vilnius` of "13", `kaunas` of "19"). It may prepare (sign in, submit a suggestion
to act on), then returns (response, prepared) where `prepared` is the private store's
contributions as they were just before the bad request. The runner checks the status, the clear
message, that the private store is unchanged since then, and (the harness) that the public store
is unchanged. A scenario whose preparation must change the public store (a first approval,
before its replay) works on its own scratch copy and checks that copy itself.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app import create_app
from directory.config import Settings
from directory.private_store import connect_private
from tests.authtool import add_account, csrf_token, sign_in
from tests.storecheck import store_digest

FACILITY = "osm-node-101"
INSIDE = {"lat": "54.6872", "lon": "25.2797"}
MB100K = "x" * 100 * 1024


def make_client(db: Path, tmp: Path):

    settings = Settings(db=db, cache_dir=tmp / "cache", offline=True, tile_url="", private_db=tmp / "private.db",
                        snapshots_dir=tmp / "snaps", submission_limit="1000 per minute")
    add_account(settings, login="vilnius", municipalities=["13"])
    add_account(settings, login="kaunas", municipalities=["19"])
    app = create_app(settings)
    app.testing = True
    return app, app.test_client(), settings


def contributions(settings: Settings) -> list[tuple]:
    conn = sqlite3.connect(settings.private_db)
    try:
        return [tuple(r) for r in conn.execute("SELECT * FROM contributions ORDER BY id")]
    finally:
        conn.close()


def place(client, **changes) -> dict:
    form = {"csrf_token": csrf_token(client, "/contribute?lang=en"), "category": "baby_room", "name": "Kambarys",
            **INSIDE, "features": ["changing_table"], "opening_hours": "Mo-Fr 08:00-18:00", "note": "",
            "email": "", "licence": "yes", "website": ""}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def _add(**changes) -> Callable:
    def scenario(db, tmp):
        _app, client, settings = make_client(db, tmp)
        form = place(client, **changes)
        before = contributions(settings)
        return client.post("/contribute?lang=en", data=form), before, settings
    return scenario


def _report(facility: str = FACILITY, **fields) -> Callable:
    def scenario(db, tmp):
        _app, client, settings = make_client(db, tmp)
        token = csrf_token(client, "/contribute?lang=en")
        before = contributions(settings)
        return client.post(f"/facility/{facility}/report?lang=en", data={"csrf_token": token, "licence": "yes",
                                                                          **fields}), before, settings
    return scenario


def still_here_unknown(db, tmp):
    _app, client, settings = make_client(db, tmp)
    token = csrf_token(client, "/contribute?lang=en")
    before = contributions(settings)
    return client.post("/facility/no-such-place/still-here?lang=en", data={"csrf_token": token}), before, settings


# --- CSRF -----------------------------------------------------------------------------------------

class _LongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 30 * 24 * 3600


def csrf_missing(db, tmp):
    _app, client, settings = make_client(db, tmp)
    form = place(client, csrf_token=None)
    before = contributions(settings)
    return client.post("/contribute?lang=en", data=form), before, settings


def csrf_forged(db, tmp):
    _app, client, settings = make_client(db, tmp)
    form = place(client, csrf_token="IjEyMzQ1Ig.forged.token")
    before = contributions(settings)
    return client.post("/contribute?lang=en", data=form), before, settings


def csrf_expired(db, tmp):
    app, client, settings = make_client(db, tmp)
    form = place(client)
    with client.session_transaction() as sess:
        raw = sess["csrf_token"]
    form["csrf_token"] = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token", signer=_LongAgo).dumps(raw)
    before = contributions(settings)
    return client.post("/contribute?lang=en", data=form), before, settings


# --- moderation -------------------------------------------------------------------------------------

def _pending(client) -> int:
    resp = client.post("/contribute?lang=en", data=place(client))
    assert resp.status_code == 303, resp.get_data(as_text=True)[-400:]
    return int(resp.headers["Location"].rsplit("id=", 1)[1].split("&")[0])


def approve_outside_area(db, tmp):
    app, client, settings = make_client(db, tmp)
    cid = _pending(client)
    kaunas = app.test_client()
    sign_in(kaunas, "kaunas")
    token = csrf_token(kaunas, "/moderate")
    before = contributions(settings)
    return kaunas.post(f"/moderate/{cid}/approve?lang=en", data={"csrf_token": token}), before, settings


def view_outside_area(db, tmp):
    app, client, settings = make_client(db, tmp)
    cid = _pending(client)
    kaunas = app.test_client()
    sign_in(kaunas, "kaunas")
    before = contributions(settings)
    return kaunas.get(f"/moderate/{cid}?lang=en"), before, settings


def edit_outside_area(db, tmp):
    app, client, settings = make_client(db, tmp)
    sign_in(client, "kaunas")
    token = csrf_token(client, "/moderate")
    before = contributions(settings)
    return client.post(f"/facility/{FACILITY}/edit?lang=en", data={"csrf_token": token, "opening_hours": "24/7"}), \
        before, settings


def edit_bad_value(db, tmp):
    app, client, settings = make_client(db, tmp)
    sign_in(client, "vilnius")
    token = csrf_token(client, "/moderate")
    before = contributions(settings)
    return client.post(f"/facility/{FACILITY}/edit?lang=en", data={"csrf_token": token, "features.wheelchair": "maybe",
                                                                   "opening_hours": "sometimes"}), before, settings


def edit_unknown_facility(db, tmp):
    app, client, settings = make_client(db, tmp)
    sign_in(client, "vilnius")
    token = csrf_token(client, "/moderate")
    before = contributions(settings)
    return client.post("/facility/no-such-place/edit?lang=en", data={"csrf_token": token}), before, settings


def approve_replayed(db, tmp):
    """Approve, then post the same approval again: refused, nothing changes (on a scratch copy,
    since the first approval rightly changes the public store)."""
    scratch = tmp / "scratch.db"
    shutil.copy(db, scratch)
    app, client, settings = make_client(scratch, tmp)
    cid = _pending(client)
    sign_in(client, "vilnius")
    token = csrf_token(client, "/moderate")
    assert client.post(f"/moderate/{cid}/approve", data={"csrf_token": token}).status_code == 303
    before, public = contributions(settings), store_digest(scratch)
    resp = client.post(f"/moderate/{cid}/approve?lang=en", data={"csrf_token": token})
    assert store_digest(scratch) == public, "the replayed approval changed the public store"
    return resp, before, settings


def approve_after_reject(db, tmp):
    app, client, settings = make_client(db, tmp)
    cid = _pending(client)
    sign_in(client, "vilnius")
    token = csrf_token(client, "/moderate")
    client.post(f"/moderate/{cid}/reject", data={"csrf_token": token, "reason": "Dublikatas"})
    before = contributions(settings)
    return client.post(f"/moderate/{cid}/approve?lang=en", data={"csrf_token": token}), before, settings


def approve_unknown(db, tmp):
    app, client, settings = make_client(db, tmp)
    sign_in(client, "vilnius")
    token = csrf_token(client, "/moderate")
    before = contributions(settings)
    return client.post("/moderate/999999/approve?lang=en", data={"csrf_token": token}), before, settings


def reject_without_reason(db, tmp):
    app, client, settings = make_client(db, tmp)
    cid = _pending(client)
    sign_in(client, "vilnius")
    token = csrf_token(client, "/moderate")
    before = contributions(settings)
    return client.post(f"/moderate/{cid}/reject?lang=en", data={"csrf_token": token, "reason": " "}), before, settings


def approve_session_expired(db, tmp):

    app, client, settings = make_client(db, tmp)
    cid = _pending(client)
    sign_in(client, "vilnius")
    token = csrf_token(client, "/moderate")
    conn = connect_private(settings)
    conn.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00Z'")
    conn.close()
    before = contributions(settings)
    return client.post(f"/moderate/{cid}/approve?lang=en", data={"csrf_token": token},
                       follow_redirects=True), before, settings


def approve_csrf_missing(db, tmp):
    app, client, settings = make_client(db, tmp)
    cid = _pending(client)
    sign_in(client, "vilnius")
    before = contributions(settings)
    return client.post(f"/moderate/{cid}/approve?lang=en", data={}), before, settings


def upload_other_municipality(db, tmp):

    app, client, settings = make_client(db, tmp)
    sign_in(client, "vilnius")
    token = csrf_token(client, "/moderate/upload")
    before = contributions(settings)
    body = b"id,name,category,lat,lon\nx-1,Centras,day_centre,54.9,23.9\n"
    return client.post("/moderate/upload?lang=en", data={"csrf_token": token, "municipality": "19",
                                                         "file": (io.BytesIO(body), "u.csv")},
                       content_type="multipart/form-data"), before, settings


# --- Open311 -------------------------------------------------------------------------------------

def _open311(**fields) -> Callable:
    def scenario(db, tmp):
        _app, client, settings = make_client(db, tmp)
        before = contributions(settings)
        data = {"service_code": "add_place", "lat": INSIDE["lat"], "long": INSIDE["lon"],
                "attribute[category]": "baby_room", "attribute[name]": "Kambarys", "attribute[licence]": "yes",
                **fields}
        return client.post("/open311/v2/requests.json", data={k: v for k, v in data.items() if v is not None}), \
            before, settings
    return scenario


SCENARIOS: dict[str, Callable] = {
    "point-outside-every-area": _add(lat="59.437", lon="24.7536"),
    "point-not-numbers": _add(lat="north", lon="east"),
    "point-missing": _add(lat="", lon=""),
    "point-out-of-range": _add(lat="95", lon="25.28"),
    "unknown-category": _add(category="zoo"),
    "unknown-feature": _add(features=["sauna"]),
    "name-100kb": _add(name=MB100K),
    "note-100kb": _add(note=MB100K),
    "name-html": _add(name="<img src=x onerror=alert(1)>"),
    "note-html": _add(note="<script>alert(1)</script>"),
    "note-formula": _add(note='=HYPERLINK("http://example.invalid","x")'),
    "name-formula-plus": _add(name="+SUM(A1:A9)"),
    "name-control-characters": _add(name="Kamba\x00rys"),
    "name-empty": _add(name="   "),
    "hours-unreadable": _add(opening_hours="whenever we feel like it"),
    "email-invalid": _add(email="not-an-email"),
    "licence-not-agreed": _add(licence=None),
    "honeypot-filled": _add(website="http://spam.example"),
    "report-unknown-facility": _report("no-such-place", problem="closed"),
    "still-here-unknown-facility": still_here_unknown,
    "report-unknown-problem": _report(problem="exploded"),
    "report-moved-outside-area": _report(problem="moved", lat="59.437", lon="24.7536"),
    "report-wrong-hours-empty": _report(problem="wrong_hours", opening_hours=""),
    "report-feature-wrong-without-features": _report(problem="feature_wrong"),
    "csrf-missing": csrf_missing,
    "csrf-forged": csrf_forged,
    "csrf-expired": csrf_expired,
    "approve-outside-area": approve_outside_area,
    "view-outside-area": view_outside_area,
    "edit-outside-area": edit_outside_area,
    "edit-bad-values": edit_bad_value,
    "edit-unknown-facility": edit_unknown_facility,
    "approve-replayed": approve_replayed,
    "approve-after-reject": approve_after_reject,
    "approve-unknown-id": approve_unknown,
    "reject-without-reason": reject_without_reason,
    "approve-session-expired": approve_session_expired,
    "approve-csrf-missing": approve_csrf_missing,
    "upload-other-municipality": upload_other_municipality,
    "open311-unknown-service": _open311(service_code="pothole"),
    "open311-point-outside-every-area": _open311(lat="59.437", long="24.7536"),
    "open311-description-100kb": _open311(description=MB100K),
    "open311-without-licence": _open311(**{"attribute[licence]": None}),
}


def run_contribution(case: dict, db: Path, tmp: Path) -> None:
    resp, before, settings = SCENARIOS[case["input"]](db, tmp)
    body = resp.get_data(as_text=True)
    assert resp.status_code == case["status"], (resp.status_code, body[-600:])
    assert case["expect"] in body, body[-800:]
    assert "Traceback" not in body
    for raw in ("<img src=x", "<script>alert"):
        assert raw not in body, "input echoed back as HTML"
    assert contributions(settings) == before, "the private store changed"
