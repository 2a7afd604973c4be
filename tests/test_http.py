"""The one HTTP session (ingest.http) behind all three outside fetches, against a loopback server.

Each client (Overpass, Spinta, the boundary download) is answered 429 with Retry-After, then 200:
the session retries after the asked wait and every request carries the project's User-Agent.
5xx beyond the retry count is a FetchError naming the URL and each attempt.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from directory.errors import FetchError
from ingest import areas, overpass, spinta
from ingest.http import MAX_WAIT, USER_AGENT, PoliteRetry, make_session, request
from tests.loopback import DROP, Answer, LoopbackServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOVLT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "govlt-powerbi-map-lt"
GOOD = (FIXTURES / "overpass_sample.json").read_bytes()
SPINTA_PAGE = json.dumps({"_type": "datasets/gov/x/Model", "_data": [{"_id": "a"}]}).encode()
BUSY = Answer(429, b"Too Many Requests", {"Retry-After": "5"})


def assert_retried_politely(srv: LoopbackServer, waits: list[float], *, paths: list[str]) -> None:
    assert [s.path for s in srv.seen] == paths
    assert waits == [5.0]  # the Retry-After of the one 429, obeyed
    assert {s.headers["User-Agent"] for s in srv.seen} == {USER_AGENT}


def test_overpass_retries_429_with_user_agent() -> None:
    waits: list[float] = []
    with LoopbackServer({"/api/interpreter": [BUSY, Answer(200, GOOD)]}) as srv, \
            make_session(retries=3, timeout=10, sleep=waits.append) as session:
        got = overpass.fetch("[out:json];", session=session, endpoint=srv.url + "/api/interpreter", cache_dir=None)
    assert got == GOOD
    assert_retried_politely(srv, waits, paths=["/api/interpreter"] * 2)
    assert {s.method for s in srv.seen} == {"POST"}  # retried although POST: the query only reads


def test_spinta_retries_429_with_user_agent() -> None:
    path = "/datasets/gov/x/Model?limit(10)"
    waits: list[float] = []
    with LoopbackServer({path: [BUSY, Answer(200, SPINTA_PAGE)]}) as srv, \
            make_session(retries=3, timeout=10, sleep=waits.append) as session:
        pages = list(spinta.fetch_pages(srv.url + path, session=session))
    assert [p["_data"] for _, p in pages] == [[{"_id": "a"}]]
    assert_retried_politely(srv, waits, paths=[path] * 2)


def test_boundary_download_retries_429_with_user_agent(tmp_path: Path) -> None:
    first, *rest = areas.SOURCE_FILES
    script = {f"/{first}": [BUSY, Answer(200, (GOVLT / first).read_bytes())]}
    script |= {f"/{rel}": [Answer(200, (GOVLT / rel).read_bytes())] for rel in rest}
    waits: list[float] = []
    with LoopbackServer(script) as srv, make_session(retries=3, timeout=10, sleep=waits.append) as session:
        dest = areas.fetch_areas(session=session, dest=tmp_path / "areas", base_url=srv.url)
    assert len(areas.read_areas(dest)) == 614
    assert_retried_politely(srv, waits, paths=[f"/{first}", f"/{first}"] + [f"/{rel}" for rel in rest])


@pytest.mark.parametrize("client", ["overpass", "spinta", "areas"])
def test_5xx_beyond_the_retries_is_a_fetch_error_naming_the_url(client: str, tmp_path: Path) -> None:
    path = {"overpass": "/api/interpreter", "spinta": "/datasets/gov/x/Model",
            "areas": f"/{areas.SOURCE_FILES[0]}"}[client]
    waits: list[float] = []
    with LoopbackServer({path: [Answer(502, b"<html><h1>Bad Gateway</h1></html>")]}) as srv, \
            make_session(retries=2, timeout=10, backoff=1.0, sleep=waits.append) as session:
        url = srv.url + path
        with pytest.raises(FetchError) as info:
            if client == "overpass":
                overpass.fetch("[out:json];", session=session, endpoint=url, cache_dir=None)
            elif client == "spinta":
                list(spinta.fetch_pages(url, session=session))
            else:
                areas.fetch_areas(session=session, dest=tmp_path / "areas", base_url=srv.url)
    assert len(srv.seen) == 3 and waits == [1.0, 2.0]  # retries + 1 requests, doubling waits, none after the last
    err = info.value
    assert err.where == url and url in str(err)
    assert "after 3 attempts" in err.message and "attempt 3: HTTP 502 Bad Gateway: Bad Gateway" in err.message
    assert not (tmp_path / "areas" / areas.SOURCE_FILES[0]).exists()  # nothing half-downloaded put in place


def test_dropped_connections_are_retried_then_named() -> None:
    with LoopbackServer({"/x": [DROP]}) as srv, make_session(retries=1, timeout=10, sleep=lambda s: None) as session, \
            pytest.raises(FetchError) as info:
        request(session, "GET", srv.url + "/x")
    assert len(srv.seen) == 2
    assert info.value.where == srv.url + "/x" and "connection failed" in info.value.message
    assert "after 2 attempts" in info.value.message


def test_unreadable_retry_after_falls_back_to_the_backoff() -> None:
    waits: list[float] = []
    script = {"/x": [Answer(503, b"", {"Retry-After": "soon"}), Answer(200, b"ok")]}
    with LoopbackServer(script) as srv, make_session(retries=2, timeout=10, sleep=waits.append) as session:
        assert request(session, "GET", srv.url + "/x").content == b"ok"
    assert len(srv.seen) == 2 and waits == [2.0]


def test_a_request_without_timeout_gets_the_sessions() -> None:
    seen: list[object] = []
    session = make_session(retries=0, timeout=12.5)
    session.send = lambda prepared, **kw: seen.append(kw["timeout"]) or SimpleNamespace(status_code=200)
    session.get("http://127.0.0.1:9/", allow_redirects=False)
    session.get("http://127.0.0.1:9/", timeout=3, allow_redirects=False)
    assert seen == [12.5, 3]


def test_retry_after_is_capped_and_backoff_doubles() -> None:
    retry = PoliteRetry(total=5, backoff_factor=2.0, backoff_max=MAX_WAIT)
    answer = SimpleNamespace(headers={"Retry-After": "86400"})
    assert retry.get_retry_after(answer) == MAX_WAIT
    assert retry.get_retry_after(SimpleNamespace(headers={"Retry-After": "soon"})) is None  # unreadable: backoff
    assert [retry.backoff_for(n) for n in range(1, 12)][:4] == [2.0, 4.0, 8.0, 16.0]
    assert retry.backoff_for(20) == MAX_WAIT
    copy = retry.new(total=4)
    assert copy.max_wait == retry.max_wait and copy.pause is retry.pause  # survives urllib3's copies
