"""Rate limits (Flask-Limiter) on sign-in: per client address, shared across gunicorn workers
through a real redis-server; and the production secret key."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from click.testing import CliRunner

from app import create_app
from directory.config import Settings
from directory.errors import ConfigError
from directory.serving import ROOT, gunicorn_command, gunicorn_environment
from directory.store import connect
from tests.authtool import PASSWORD, add_account, csrf_token
from tests.clitool import make_cli
from tests.servers import access_lines


def _login(client, *, login="nobody", password="wrong password", addr="10.0.0.1", headers=None, lang="en"):
    env = {"REMOTE_ADDR": addr}
    token = csrf_token(client)
    return client.post(f"/login?lang={lang}", data={"login": login, "password": password, "csrf_token": token},
                       environ_base=env, headers=headers or {})


def test_login_limit_answers_429_with_retry_after_in_the_page_language(make_app):
    app = make_app(login_limit="3 per hour")
    client = app.test_client()
    assert [_login(client).status_code for _ in range(3)] == [401, 401, 401]
    resp = _login(client)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) > 0 and resp.headers["X-RateLimit-Limit"] == "3"
    assert "Too many requests from your address" in resp.get_data(as_text=True)
    lt = _login(client, lang="lt")
    assert lt.status_code == 429 and "Iš jūsų adreso gauta per daug užklausų" in lt.get_data(as_text=True)
    as_json = _login(client, headers={"Accept": "application/json"})
    assert as_json.status_code == 429 and as_json.get_json()["error"] == "TooManyRequests"
    # Another address has its own budget; the right password is limited like any other try.
    assert _login(client, addr="10.0.0.2").status_code == 401


def test_the_limit_counts_the_client_behind_a_trusted_proxy_only(make_app):
    app = make_app(login_limit="2 per hour", forwarded_allow_ips="127.0.0.1")
    client = app.test_client()
    via_proxy = {"X-Forwarded-For": "203.0.113.7"}
    assert [_login(client, addr="127.0.0.1", headers=via_proxy).status_code for _ in range(3)] == [401, 401, 429]
    # Another client behind the same proxy is not blocked by the first.
    assert _login(client, addr="127.0.0.1", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 401
    # A client may prepend anything; only the address our proxy appended (the last) counts.
    forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert _login(client, addr="127.0.0.1", headers=forged).status_code == 429
    # From an untrusted peer the header is ignored: each forged value is still the same peer.
    for i in range(2):
        assert _login(client, addr="192.0.2.9", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code == 401
    assert _login(client, addr="192.0.2.9", headers={"X-Forwarded-For": "198.51.100.99"}).status_code == 429


def test_login_limit_holds_across_four_gunicorn_workers_with_redis(db_path, tmp_path, redis_url, gunicorn):
    """N+1 sign-in attempts from one address, each on a new connection and several at a time, so
    they land on different workers: exactly N get through, the next is 429. With memory:// each
    worker would count alone and let 4 x N through."""
    connect(db_path).close()
    settings = Settings(db=db_path, private_db=tmp_path / "private.db")
    add_account(settings, login="vilnius", municipalities=["13"])
    limit = 12
    base = gunicorn(settings, workers=4, env={"ATVIRA_RATELIMIT_STORAGE": redis_url,
                                              "ATVIRA_LOGIN_LIMIT": f"{limit} per hour"})

    def attempt(i: int, headers: dict[str, str] | None = None) -> requests.Response:
        with requests.Session() as http:  # a new connection each: the kernel hands it to any worker
            http.headers["Connection"] = "close"
            http.headers.update(headers or {})
            page = http.get(f"{base}/login?lang=en", timeout=30)
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            # The production cookie is Secure; over this plain-http loopback, send it by hand.
            # An unknown login: always 401 (no lockout), so any 429 is the limiter's.
            return http.post(f"{base}/login?lang=en", timeout=30, allow_redirects=False,
                             cookies={"session": page.cookies["session"]},
                             data={"login": "nobody", "password": f"wrong {i}", "csrf_token": token})

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(r.status_code for r in pool.map(attempt, range(limit + 1)))
    assert statuses == [401] * limit + [429], statuses
    again = attempt(99)
    assert again.status_code == 429 and "Too many requests from your address" in again.text
    assert int(again.headers["Retry-After"]) > 0
    # The limit is per client, not global: another client (named by the trusted proxy's
    # X-Forwarded-For) still gets through.
    assert attempt(100, {"X-Forwarded-For": "203.0.113.5"}).status_code == 401
    posts: list = []
    for _ in range(100):  # gunicorn writes the access line just after the answer: bounded wait
        posts = [line for line in access_lines(tmp_path / "gunicorn") if line[1:3] == ("POST", "/login")]
        if len(posts) == limit + 3:
            break
        time.sleep(0.1)
    assert len(posts) == limit + 3, posts
    assert len({pid for pid, *_ in posts}) >= 2, posts  # the tries were served by more than one worker


def test_memory_storage_would_not_hold_across_workers_documented(tmp_path):
    """The README and gunicorn.conf.py name redis for production (memory:// is per process)."""
    readme = (ROOT / "README.md").read_text()
    assert "ATVIRA_RATELIMIT_STORAGE" in readme and "redis://" in readme
    assert "ATVIRA_RATELIMIT_STORAGE" in (ROOT / "gunicorn.conf.py").read_text()


# --- the production secret key -----------------------------------------------------------------


def test_create_app_refuses_production_without_secret_key(settings):
    with pytest.raises(ConfigError, match="ATVIRA_SECRET_KEY is not set"):
        create_app(settings.with_(production=True))
    with pytest.raises(ConfigError, match="ATVIRA_SECRET_KEY is too short"):
        create_app(settings.with_(production=True, secret_key="short"))
    app = create_app(settings.with_(production=True, secret_key="k" * 40))
    assert app.secret_key == "k" * 40 and app.config["SESSION_COOKIE_SECURE"] is True
    assert "k" * 40 not in repr(settings.with_(secret_key="k" * 40))  # never printed with the settings


def test_development_gets_a_per_process_key(settings):
    a, b = create_app(settings), create_app(settings)
    assert a.secret_key and a.secret_key == b.secret_key and len(a.secret_key) >= 32
    assert a.config["SESSION_COOKIE_SECURE"] is False


def test_serve_production_refuses_without_secret_key(db_path):
    result = CliRunner().invoke(make_cli(), ["--db", str(db_path), "serve", "--production"],
                                env={"ATVIRA_SECRET_KEY": ""})
    assert result.exit_code == 2
    assert "error: ATVIRA_SECRET_KEY: ATVIRA_SECRET_KEY is not set: production refuses to start" in result.output
    assert not db_path.exists()  # refused before touching anything


def test_gunicorn_refuses_without_secret_key(db_path, tmp_path):
    connect(db_path).close()
    env = gunicorn_environment(Settings(db=db_path), port=1)
    env.pop("ATVIRA_SECRET_KEY", None)
    proc = subprocess.run(gunicorn_command(), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "error: ATVIRA_SECRET_KEY: ATVIRA_SECRET_KEY is not set" in proc.stderr, proc.stderr[-2000:]


def test_private_store_is_not_the_public_store(settings, make_app):
    """Accounts never land in the published file (its snapshots and download go out whole)."""
    add_account(settings, login="vilnius", municipalities=["13"])
    make_app()
    public = sqlite3.connect(settings.db)
    tables = {r[0] for r in public.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"users", "sessions"}
    assert PASSWORD.encode() not in settings.db.read_bytes()


def test_each_app_counts_in_its_own_storage(make_app):
    """Two apps in one process (memory://) do not share or reset each other's counters."""
    first = make_app(login_limit="2 per hour")
    a = first.test_client()
    assert [_login(a).status_code for _ in range(2)] == [401, 401]
    second = make_app(login_limit="2 per hour")  # binding another app must not reset the first
    b = second.test_client()
    assert _login(a).status_code == 429
    assert _login(b).status_code == 401
