"""The submission limit holds across gunicorn workers when they share a real Redis: past it, one
client address gets 429 from every worker and nothing more is stored. The forms and the Open311
POST share one limit ("submissions"): shown through the test client (gunicorn runs in production
mode, whose Secure session cookie a plain-http test client cannot send back with a form)."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.authtool import csrf_token
from tests.contrib_data import VILNIUS_POINT, build_public, copy_store
from tests.servers import access_lines


@pytest.fixture(scope="module")
def limits_template(tmp_path_factory, shared_data) -> Path:
    d = tmp_path_factory.mktemp("contrib-limits")
    return build_public(d / "public.db", shared_data, d)


def pending(settings) -> int:
    conn = sqlite3.connect(settings.private_db_path())
    try:
        return conn.execute("SELECT count(*) FROM contributions").fetchone()[0]
    finally:
        conn.close()


def test_past_the_submission_limit_one_address_gets_429_across_4_workers_with_redis(
        limits_template, settings, redis_url, gunicorn, tmp_path):
    copy_store(limits_template, settings.db)
    base = gunicorn(settings, workers=4, env={"ATVIRA_RATELIMIT_STORAGE": redis_url,
                                              "ATVIRA_SUBMISSION_LIMIT": "6 per hour"})
    post = {"service_code": "add_place", "lat": VILNIUS_POINT[1], "long": VILNIUS_POINT[0],
            "attribute[category]": "baby_room", "attribute[name]": "Kambarys", "attribute[licence]": "yes"}
    statuses = []
    with requests.Session() as s:
        for _ in range(6):
            # a new connection each time, so gunicorn hands the requests to different workers
            statuses.append(s.post(f"{base}/open311/v2/requests.json", data=post, timeout=30,
                                   headers={"Connection": "close"}).status_code)
        assert statuses == [201] * 6

    def refused_by() -> set[str]:
        return {pid for pid, method, path, status in access_lines(tmp_path / "gunicorn")
                if method == "POST" and status == "429"}

    def over(_: int) -> requests.Response:
        with requests.Session() as http:  # a new connection each: the kernel hands it to any worker
            return http.post(f"{base}/open311/v2/requests.json", data=post, timeout=30,
                             headers={"Connection": "close"})

    # Past the limit, bursts of 6 at once (one after another, an idle machine's kernel hands
    # every connection to the same waiting worker), until two workers have refused: at most 5.
    answers: list[requests.Response] = []
    for _ in range(5):
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers += pool.map(over, range(6))
        for _ in range(50):  # gunicorn writes the access line just after the answer: bounded wait
            if len(refused_by()) >= 2 or sum(1 for _ in access_lines(tmp_path / "gunicorn")) >= 6 + len(answers):
                break
            time.sleep(0.1)
        if len(refused_by()) >= 2:
            break
    assert [r.status_code for r in answers] == [429] * len(answers)
    assert all(int(r.headers["Retry-After"]) > 0 for r in answers)
    assert pending(settings) == 6
    assert len(refused_by()) >= 2, f"the 429s came from one worker only: {refused_by()}"


def test_the_forms_and_open311_share_one_submission_limit(limits_template, settings, make_app):

    copy_store(limits_template, settings.db)
    client = make_app(submission_limit="2 per minute").test_client()
    form = {"category": "baby_room", "name": "Kambarys", "lat": VILNIUS_POINT[1], "lon": VILNIUS_POINT[0],
            "licence": "yes"}
    for _ in range(2):
        resp = client.post("/contribute", data={**form, "csrf_token": csrf_token(client, "/contribute")})
        assert resp.status_code == 303
    resp = client.post("/contribute", data={**form, "csrf_token": csrf_token(client, "/contribute")})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    resp = client.post("/open311/v2/requests.json", data={"service_code": "still_here"})
    assert resp.status_code == 429
    assert pending(settings) == 2
