"""Overpass fetch half: query building and a polite client, with a fake session (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from directory.errors import BadRequest, FetchError
from ingest.osm import overpass_selectors, parse_overpass_json
from ingest.overpass import USER_AGENT, build_query, cache_path, fetch

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOOD = (FIXTURES / "overpass_sample.json").read_bytes()
REMARK = (FIXTURES / "overpass_remark.json").read_bytes()
ENDPOINT = "https://overpass.example/api/interpreter"
QUERY = build_query(area="LT")


class FakeResponse:
    def __init__(self, status_code: int = 200, content: bytes = GOOD, headers: dict[str, str] | None = None,
                 reason: str = "") -> None:
        self.status_code, self.content, self.headers, self.reason = status_code, content, headers or {}, reason


class FakeSession:
    """Answers .post with the next canned response, or raises it when it is an exception."""

    def __init__(self, *answers: FakeResponse | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def post(self, url: str, **kwargs: Any) -> FakeResponse:
        self.calls.append({"url": url, **kwargs})
        if not self.answers:
            raise AssertionError("unexpected request")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def run(session: FakeSession, cache_dir: Path | None = None, sleeps: list[float] | None = None,
        **kw: Any) -> bytes:
    return fetch(QUERY, session=session, endpoint=ENDPOINT, cache_dir=cache_dir,
                 sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **kw)


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


def test_success_sends_form_field_and_user_agent(tmp_path: Path) -> None:
    session = FakeSession(FakeResponse())
    assert run(session, tmp_path, timeout=33.0) == GOOD
    (call,) = session.calls
    assert call["url"] == ENDPOINT and call["data"] == {"data": QUERY} and call["timeout"] == 33.0
    ua = call["headers"]["User-Agent"]
    assert ua == USER_AGENT and ua.startswith("Atvira/") and "open-data directory" in ua and "+http" in ua
    assert [e.key for e in parse_overpass_json(GOOD, where=ENDPOINT)][:2] == ["node/1001", "way/2002"]


def test_retry_on_429_then_success_honours_retry_after(tmp_path: Path) -> None:
    sleeps: list[float] = []
    session = FakeSession(FakeResponse(429, b"rate limited", {"Retry-After": "7"}, "Too Many Requests"),
                          FakeResponse())
    assert run(session, tmp_path, sleeps) == GOOD
    assert len(session.calls) == 2 and sleeps == [7.0]


def test_504_every_time_gives_fetch_error_after_max_retries_plus_one() -> None:
    sleeps: list[float] = []
    session = FakeSession(*[FakeResponse(504, b"<html>Gateway Timeout</html>", reason="Gateway Timeout")] * 10)
    with pytest.raises(FetchError) as info:
        run(session, None, sleeps, max_retries=3, backoff=2.0)
    assert len(session.calls) == 4
    assert sleeps == [2.0, 4.0, 8.0]  # exponential, and no sleep after the last attempt
    msg = str(info.value)
    assert ENDPOINT in msg and "after 4 attempts" in msg
    assert all(f"attempt {i}: HTTP 504 Gateway Timeout" in msg for i in range(1, 5))


def test_timeouts_and_connection_errors_are_retried() -> None:
    session = FakeSession(requests.Timeout("read timed out"), requests.ConnectionError("refused"), FakeResponse())
    assert run(session) == GOOD and len(session.calls) == 3
    session = FakeSession(*[requests.Timeout("read timed out")] * 3)
    with pytest.raises(FetchError, match="no answer within 200 s") as info:
        run(session, max_retries=2)
    assert len(session.calls) == 3 and "after 3 attempts" in str(info.value)


def test_non_retryable_status_fails_at_once() -> None:
    page = b"<html><body><p><strong>Error</strong>: line 3: parse error: ';' expected</p></body></html>"
    session = FakeSession(FakeResponse(400, page, reason="Bad Request"), FakeResponse())
    with pytest.raises(FetchError, match=r"HTTP 400: Error : line 3: parse error: ';' expected"):
        run(session)
    assert len(session.calls) == 1


def test_error_remark_is_retried_within_bound_and_never_cached(tmp_path: Path) -> None:
    session = FakeSession(*[FakeResponse(200, REMARK)] * 3)
    with pytest.raises(FetchError, match="Query timed out") as info:
        run(session, tmp_path, max_retries=2)
    assert len(session.calls) == 3 and "after 3 attempts" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    session = FakeSession(FakeResponse(200, REMARK), FakeResponse())
    assert run(session, tmp_path) == GOOD
    assert cache_path(tmp_path, endpoint=ENDPOINT, query=QUERY).read_bytes() == GOOD


def test_truncated_200_is_retried() -> None:
    session = FakeSession(FakeResponse(200, GOOD[:100]), FakeResponse())
    assert run(session) == GOOD and len(session.calls) == 2


def test_cache_hit_makes_no_request(tmp_path: Path) -> None:
    assert run(FakeSession(FakeResponse()), tmp_path) == GOOD
    assert [p.name for p in tmp_path.iterdir()] == [cache_path(tmp_path, endpoint=ENDPOINT, query=QUERY).name]
    assert run(FakeSession(), tmp_path) == GOOD  # FakeSession() fails on any request
    assert run(FakeSession(), tmp_path, offline=True) == GOOD
    refreshed = json.dumps({"elements": []}).encode()
    assert run(FakeSession(FakeResponse(200, refreshed)), tmp_path, refresh=True) == refreshed
    assert run(FakeSession(), tmp_path) == refreshed


def test_cache_key_depends_on_endpoint_and_query(tmp_path: Path) -> None:
    a = cache_path(tmp_path, endpoint=ENDPOINT, query=QUERY)
    assert a != cache_path(tmp_path, endpoint="https://other.example/api/interpreter", query=QUERY)
    assert a != cache_path(tmp_path, endpoint=ENDPOINT, query=build_query(area="LV"))


def test_offline_miss_is_a_fetch_error(tmp_path: Path) -> None:
    session = FakeSession()
    with pytest.raises(FetchError, match="not in cache"):
        run(session, tmp_path, offline=True)
    with pytest.raises(FetchError, match="not in cache"):
        run(session, None, offline=True)
    assert session.calls == []


def test_retry_after_http_date_and_cap() -> None:
    sleeps: list[float] = []
    session = FakeSession(FakeResponse(503, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                          FakeResponse(503, b"", {"Retry-After": "99999"}), FakeResponse())
    assert run(session, None, sleeps) == GOOD
    assert sleeps == [0.0, 600.0]  # a date in the past means now; huge values are capped
