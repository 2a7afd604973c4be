"""Issue 12's defects outside the browser: `atvira status` as text, the outlines endpoint, the
favicon, error pages in the reader's language, Babel's numbers, and `lang` accepted everywhere."""

from __future__ import annotations

import json

from click.testing import CliRunner

from directory.store import connect
from directory.sync import apply_records
from tests.clitool import make_cli
from tests.conftest import derive, facility


def test_status_is_text_and_json_on_request(settings):
    conn = connect(settings.db)
    apply_records(conn, [facility("a"), facility("b")], source="test", scope="s")
    conn.close()
    cli = make_cli()
    text = CliRunner().invoke(cli, ["--db", str(settings.db), "status"])
    assert text.exit_code == 0, text.output
    assert "2 facilities" in text.output and "{" not in text.output
    as_json = CliRunner().invoke(cli, ["--db", str(settings.db), "status", "--json"])
    doc = json.loads(as_json.output)
    assert doc["counts"]["facilities"] == 2 and isinstance(doc["runs"], list)


def test_outlines_are_simplified_bounded_and_cacheable(make_app, audit_db):
    client = make_app(db=audit_db).test_client()
    resp = client.get("/api/areas/outlines?level=municipality")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    assert "max-age=86400" in resp.headers["Cache-Control"] and resp.headers.get("ETag")
    body = resp.get_json(force=True)
    assert len(body["features"]) == 60 and len(resp.data) < 300_000
    vilnius = client.get("/api/areas/outlines?level=eldership&bbox=25.2,54.65,25.3,54.7").get_json(force=True)
    assert 0 < len(vilnius["features"]) <= 150
    assert {f["properties"]["level"] for f in vilnius["features"]} == {"eldership"}
    assert client.get("/api/areas/outlines?level=eldership&bbox=20,53,27,57").get_json(force=True)["features"]


def test_favicon_is_served(client):
    resp = client.get("/favicon.ico")
    assert resp.status_code == 200 and resp.data[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert client.get("/static/favicon.svg").status_code == 200
    assert 'rel="icon"' in client.get("/").get_data(as_text=True)


def test_error_pages_speak_the_readers_language(client):
    lt = client.get("/no-such-page?lang=lt")
    assert lt.status_code == 404 and "<h1>Nerasta</h1>" in lt.get_data(as_text=True)
    en = client.get("/no-such-page?lang=en").get_data(as_text=True)
    assert "<h1>Not found</h1>" in en and "There is no page at this address." in en
    bad = client.get("/audit?category=nope&lang=lt").get_data(as_text=True)
    assert "Adrese kažkas negerai" in bad and 'Techninė informacija (anglų kalba): <span lang="en">' in bad


def test_lang_is_accepted_by_every_api(make_app, settings):
    conn = connect(settings.db)
    apply_records(conn, [facility("a")], source="test", scope="s")
    derive(conn)
    conn.close()
    client = make_app().test_client()
    for url in ("/api/facilities?lang=en", "/api/changes?lang=en", "/api/facilities/clusters?zoom=5&bbox=20,53,27,57&lang=lt",
                "/api/areas?lang=en", "/api/snapshots?lang=en", "/changes?lang=en", "/downloads/facilities.csv?lang=en"):
        assert client.get(url).status_code == 200, url


def test_numbers_follow_the_page_language(make_app):
    from directory.web.i18n import number, plural_forms

    app = make_app()
    with app.test_request_context("/?lang=lt"):
        assert number(1234.5, "rate") == "1\xa0234,50" and number(0.125, "share") == "12,5\xa0%"
        assert number(None, "count") == "n/d"
        forms = plural_forms("%(n)s place in view", "%(n)s places in view", n="{n}")
        assert forms == {"one": "Matomoje srityje {n} vieta", "few": "Matomoje srityje {n} vietos",
                         "other": "Matomoje srityje {n} vietų"}
    with app.test_request_context("/?lang=en"):
        assert number(1234.5, "rate") == "1,234.50" and number(0.125, "share") == "12.5%"
        assert plural_forms("%(n)s place in view", "%(n)s places in view", n="{n}") == {
            "one": "{n} place in view", "other": "{n} places in view"}
