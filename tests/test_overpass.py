"""Overpass fetch half: query building and a polite client, against a loopback server (no internet)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from directory.errors import BadRequest, FetchError
from ingest.http import make_session
from ingest.osm import overpass_selectors, parse_overpass_json
from ingest.overpass import USER_AGENT, build_query, cache_path, fetch
from tests.loopback import DROP, HANG, Answer, LoopbackServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOOD = (FIXTURES / "overpass_sample.json").read_bytes()
REMARK = (FIXTURES / "overpass_remark.json").read_bytes()
ENDPOINT = "https://overpass.example/api/interpreter"
QUERY = build_query(area="LT")


PATH = "/api/interpreter"


@pytest.fixture
def overpass() -> Iterator[Any]:
    """`overpass(*answers, retries=3, timeout=200, cache_dir=None, **fetch_kw)` -> (bytes or error, server, waits)."""
    servers: list[LoopbackServer] = []

    def call(*answers: Any, retries: int = 3, timeout: float = 200.0, backoff: float = 2.0, **kw: Any):
        srv = LoopbackServer({PATH: list(answers)}).__enter__()
        servers.append(srv)
        waits: list[float] = []
        with make_session(retries=retries, timeout=timeout, backoff=backoff, sleep=waits.append) as session:
            try:
                result: Any = fetch(QUERY, session=session, endpoint=srv.url + PATH, **{"cache_dir": None, **kw})
            except FetchError as exc:
                result = exc
        return result, srv, waits

    yield call
    for srv in servers:
        srv.__exit__(None, None, None)


# --------------------------------------------------------------------------- query


def test_bbox_is_reordered_for_overpass() -> None:
    q = build_query(bbox=(25.0, 54.6, 25.45, 54.8))  # west, south, east, north
    lines = [ln for ln in q.splitlines() if ln.strip().startswith("nwr")]
    assert lines and all(ln.endswith("(54.6,25,54.8,25.45);") for ln in lines)  # south, west, north, east
    assert "area[" not in q


def test_area_query() -> None:
    q = build_query(area="lt", timeout=90)
    assert q.startswith("[out:json][timeout:90];\n")
    assert 'area["ISO3166-1"="LT"][admin_level=2][boundary=administrative]->.a;' in q
    assert q.rstrip().endswith("out center tags;")
    for sel in overpass_selectors():  # built from the one tag table
        assert f"  nwr{sel}(area.a);" in q
    assert "baby_hatch" in q and '["access"!~"^(private|no)$"]' in q
    assert 'area["ISO3166-2"="LT-57"]' in build_query(area="LT-57")


def test_area_and_bbox_together() -> None:
    q = build_query(area="LT", bbox=(25.0, 54.6, 25.45, 54.8))
    assert "(area.a)(54.6,25,54.8,25.45);" in q


@pytest.mark.parametrize("kwargs", [
    {}, {"area": "Lithuania"}, {"bbox": (25.4, 54.6, 25.0, 54.8)}, {"bbox": (25.0, 54.8, 25.4, 54.6)},
    {"bbox": (25.0, 54.6, 25.4)}, {"bbox": (25.0, 54.6, 25.4, 95.0)}, {"area": "LT", "timeout": 0},
])
def test_bad_query_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        build_query(**kwargs)


# --------------------------------------------------------------------------- fetch


def test_success_sends_form_field_and_user_agent(overpass, tmp_path: Path) -> None:
    got, srv, waits = overpass(Answer(200, GOOD), cache_dir=tmp_path)
    assert got == GOOD and waits == []
    (seen,) = srv.seen
    assert seen.method == "POST" and parse_qs(seen.body.decode()) == {"data": [QUERY]}
    ua = seen.headers["User-Agent"]
    assert ua == USER_AGENT and ua.startswith("Atvira/") and "open-data directory" in ua and "+http" in ua
    assert [e.key for e in parse_overpass_json(GOOD, where=PATH)][:2] == ["node/1001", "way/2002"]


def test_retry_on_429_then_success_honours_retry_after(overpass, tmp_path: Path) -> None:
    got, srv, waits = overpass(Answer(429, b"rate limited", {"Retry-After": "7"}), Answer(200, GOOD),
                               cache_dir=tmp_path)
    assert got == GOOD
    assert len(srv.seen) == 2 and waits == [7.0]


def test_504_every_time_gives_fetch_error_after_max_retries_plus_one(overpass) -> None:
    err, srv, waits = overpass(Answer(504, b"<html>Gateway Timeout</html>"), retries=3, backoff=2.0)
    assert isinstance(err, FetchError)
    assert len(srv.seen) == 4
    assert waits == [2.0, 4.0, 8.0]  # exponential, and no wait after the last attempt
    msg = str(err)
    assert srv.url + PATH in msg and "after 4 attempts" in msg
    assert all(f"attempt {i}: HTTP 504 Gateway Timeout" in msg for i in range(1, 5))


def test_timeouts_and_connection_errors_are_retried(overpass) -> None:
    got, srv, _ = overpass(HANG, DROP, Answer(200, GOOD), timeout=0.3)
    assert got == GOOD and len(srv.seen) == 3
    err, srv, _ = overpass(HANG, retries=2, timeout=0.3)
    assert isinstance(err, FetchError) and "no answer within 0.3 s" in str(err)
    assert len(srv.seen) == 3 and "after 3 attempts" in str(err)


def test_non_retryable_status_fails_at_once(overpass) -> None:
    page = b"<html><body><p><strong>Error</strong>: line 3: parse error: ';' expected</p></body></html>"
    err, srv, _ = overpass(Answer(400, page), Answer(200, GOOD))
    assert isinstance(err, FetchError) and "HTTP 400: Error : line 3: parse error: ';' expected" in str(err)
    assert len(srv.seen) == 1


def test_error_remark_is_retried_within_bound_and_never_cached(overpass, tmp_path: Path) -> None:
    err, srv, waits = overpass(Answer(200, REMARK), retries=2, cache_dir=tmp_path)
    assert isinstance(err, FetchError) and "Query timed out" in str(err)
    assert len(srv.seen) == 3 and "after 3 attempts" in str(err) and waits == [2.0, 4.0]
    assert list(tmp_path.iterdir()) == []
    got, srv, _ = overpass(Answer(200, REMARK), Answer(200, GOOD), cache_dir=tmp_path)
    assert got == GOOD
    assert cache_path(tmp_path, endpoint=srv.url + PATH, query=QUERY).read_bytes() == GOOD


def test_truncated_200_is_retried(overpass) -> None:
    got, srv, _ = overpass(Answer(200, GOOD[:100]), Answer(200, GOOD))
    assert got == GOOD and len(srv.seen) == 2


def test_cache_hit_makes_no_request(tmp_path: Path) -> None:
    refreshed = json.dumps({"elements": []}).encode()
    with LoopbackServer({PATH: [Answer(200, GOOD), Answer(200, refreshed)]}) as srv, \
            make_session(retries=0, timeout=10) as session:
        endpoint = srv.url + PATH

        def run(**kw: Any) -> bytes:
            return fetch(QUERY, session=session, endpoint=endpoint, cache_dir=tmp_path, **kw)

        assert run() == GOOD
        assert [p.name for p in tmp_path.iterdir()] == [cache_path(tmp_path, endpoint=endpoint, query=QUERY).name]
        assert run() == GOOD and run(offline=True) == GOOD
        assert len(srv.seen) == 1
        assert run(refresh=True) == refreshed
        assert run() == refreshed and len(srv.seen) == 2


def test_cache_key_depends_on_endpoint_and_query(tmp_path: Path) -> None:
    a = cache_path(tmp_path, endpoint=ENDPOINT, query=QUERY)
    assert a != cache_path(tmp_path, endpoint="https://other.example/api/interpreter", query=QUERY)
    assert a != cache_path(tmp_path, endpoint=ENDPOINT, query=build_query(area="LV"))


def test_offline_miss_is_a_fetch_error(tmp_path: Path) -> None:
    with make_session(retries=0, timeout=1) as session:  # no server: any request would fail loudly
        with pytest.raises(FetchError, match="not in cache"):
            fetch(QUERY, session=session, endpoint=ENDPOINT, cache_dir=tmp_path, offline=True)
        with pytest.raises(FetchError, match="not in cache"):
            fetch(QUERY, session=session, endpoint=ENDPOINT, cache_dir=None, offline=True)


def test_retry_after_http_date_and_cap(overpass) -> None:
    got, _, waits = overpass(Answer(503, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                             Answer(503, b"", {"Retry-After": "99999"}), Answer(200, GOOD))
    assert got == GOOD
    assert waits == [0.0, 600.0]  # a date in the past means now; huge values are capped
