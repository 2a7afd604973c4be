"""The map's page request on the WSGI fast path: what it keeps between requests (the origin
per Host, the next link's quoting) gives exactly what computing it each time gives."""

from __future__ import annotations

import json
import random
import re
from urllib.parse import urlencode

from directory.store import connect
from directory.sync import apply_records
from directory.web.api import query_text
from tests.conftest import derive, facility


def _answer(app, fast: bool, url: str, **kw):
    app.wsgi_app.enabled = fast
    resp = app.test_client().get(url, **kw)
    headers = [(k, re.sub(r"'nonce-[^']+'", "'nonce-N'", v)) for k, v in resp.headers.items()]
    return resp.status_code, headers, resp.get_data()


def test_next_link_query_is_urlencode():
    """query_text writes what urllib's urlencode writes, plain values or not."""
    values = ["", "25,54.5,25.6,54.9", "-25.1,54", "a b", "a+b", "50%", "ą,č", "x/y?z=1&w", "~_.-", "Šv. Jono g.",
              "1e-05", "\x00", "a,,b", "closed,active"]
    rng = random.Random(3)
    for _ in range(300):
        args = {rng.choice(["bbox", "limit", "after", "q x", "category", "ž"]): rng.choice(values) for _ in range(4)}
        assert query_text(args) == urlencode(args), args


def test_a_query_string_as_flask_reads_it(settings, make_app):
    """Repeated, blank, percent-encoded and undecodable parameters: the fast path reads the
    query string as request.args does (or leaves the request to Flask)."""
    conn = connect(settings.db)
    apply_records(conn, [facility(str(i), lon=25.1 + i / 100, lat=54.6) for i in range(12)], source="test", scope="s")
    derive(conn)
    conn.close()
    app = make_app()
    box = "25,54.5,25.6,54.9"
    for url in (f"/api/facilities?bbox={box}&limit=4&limit=2", f"/api/facilities?bbox={box.replace(',', '%2C')}&limit=3",
                f"/api/facilities?limit=3&bbox={box}&after=", f"/api/facilities?bbox=&bbox={box}",
                f"/api/facilities?bbox={box}&limit=3&category=%C5%BE", f"/api/facilities?bbox={box}&limit=3&category=%FF",
                f"/api/facilities?bbox={box}&limit=3&status=active&status=closed", f"/api/facilities?bbox={box};limit=3"):
        assert _answer(app, True, url) == _answer(app, False, url), url


def test_each_trusted_host_gets_its_own_origin(settings, make_app):
    """The fast path keeps each (scheme, Host)'s origin: a page asked through another trusted
    Host, or over https, links to that origin, as Flask's view does."""
    conn = connect(settings.db)
    rng = random.Random(5)
    records = [facility(str(i), lon=round(25.0 + rng.random() * 0.6, 7), lat=round(54.5 + rng.random() * 0.4, 7))
               for i in range(40)]
    apply_records(conn, records, source="test", scope="s")
    derive(conn)
    conn.close()
    app = make_app(trusted_hosts="a.example,b.example")
    url = "/api/facilities?bbox=25,54.5,25.6,54.9&limit=3"
    for base in ("http://a.example", "http://b.example", "https://a.example", "http://a.example"):
        fast = _answer(app, True, url, base_url=base)
        assert fast == _answer(app, False, url, base_url=base), base
        assert json.loads(fast[2])["next"].startswith(f"{base}/api/facilities?"), base
    # the Host check is kept per Host (FastPages.host): an untrusted one is refused every time,
    # before and after the trusted ones were kept, and a port is a Host of its own
    for base in ("http://evil.example", "http://a.example", "http://evil.example", "http://a.example:8080",
                 "http://b.example.evil"):
        fast = _answer(app, True, url, base_url=base)
        assert fast == _answer(app, False, url, base_url=base), base
        assert fast[0] == (200 if base in ("http://a.example", "http://a.example:8080") else 400), base
