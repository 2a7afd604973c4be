"""Bad-input scenarios for sign-in, sessions and CSRF (adapter "auth" in tests/bad_inputs/manifest.toml).

Each scenario builds the app over the case's copy of the seeded store (the harness checks that
store is unchanged afterwards), with its own private store, and returns the final response (or
its page after a redirect). A case's `input` names its scenario here; `status` and `expect` are
checked on what the user finally sees (body, or the Location header of a redirect).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app import create_app
from directory import accounts
from directory.config import Settings
from directory.private_store import connect_private
from tests.authtool import PASSWORD, add_account, csrf_token, sign_in


def make_client(db: Path, tmp: Path, **changes):
    settings = Settings(db=db, cache_dir=tmp / "cache", offline=True, tile_url="", private_db=tmp / "private.db",
                        **changes)
    add_account(settings, login="vilnius", municipalities=["13"])
    app = create_app(settings)
    app.testing = True
    return app, app.test_client(), settings


def _post_login(client, *, token: str | None, login: str = "vilnius", password: str = "wrong password 1",
                **extra):
    data = {"login": login, "password": password, **extra}
    if token is not None:
        data["csrf_token"] = token
    return client.post("/login?lang=en", data=data)


def csrf_missing(db, tmp):
    _app, client, _ = make_client(db, tmp)
    csrf_token(client)
    return _post_login(client, token=None, password=PASSWORD)


def csrf_forged(db, tmp):
    _app, client, _ = make_client(db, tmp)
    csrf_token(client)
    return _post_login(client, token="IjEyMzQ1Ig.forged.token", password=PASSWORD)


def csrf_other_key(db, tmp):
    """A well-formed token signed with another secret key (another site, an old deployment)."""
    _app, client, _ = make_client(db, tmp)
    csrf_token(client)
    with client.session_transaction() as sess:
        raw = sess["csrf_token"]
    token = URLSafeTimedSerializer("some other secret key entirely", salt="wtf-csrf-token").dumps(raw)
    return _post_login(client, token=token, password=PASSWORD)


class _LongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 30 * 24 * 3600  # signed a month ago


def csrf_expired(db, tmp):
    """The right token for this session, but signed long before the form's time limit."""
    app, client, _ = make_client(db, tmp)
    csrf_token(client)
    with client.session_transaction() as sess:
        raw = sess["csrf_token"]
    token = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token", signer=_LongAgo).dumps(raw)
    return _post_login(client, token=token, password=PASSWORD)


def csrf_token_without_session(db, tmp):
    """A valid-looking token posted by a client that kept no cookie (token and session must pair)."""
    app, client, _ = make_client(db, tmp)
    token = csrf_token(client)
    fresh = app.test_client()
    return _post_login(fresh, token=token, password=PASSWORD)


def csrf_replayed_across_sessions(db, tmp):
    """Alice's token posted with Bob's session cookie: tokens are bound to their session."""
    app, alice, _ = make_client(db, tmp)
    token = csrf_token(alice)
    bob = app.test_client()
    csrf_token(bob)
    return _post_login(bob, token=token, password=PASSWORD)


def logout_without_token(db, tmp):
    _app, client, _ = make_client(db, tmp)
    sign_in(client, "vilnius")
    return client.post("/logout?lang=en")


def _expire_sessions(settings: Settings) -> None:
    conn = connect_private(settings)
    conn.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00Z'")
    conn.close()


def session_expired_page(db, tmp):
    """A signed-in editor whose session passed its lifetime: back to the sign-in page, told why."""
    _app, client, settings = make_client(db, tmp)
    sign_in(client, "vilnius")
    _expire_sessions(settings)
    return client.get("/account?lang=en", follow_redirects=True)


def session_expired_json(db, tmp):
    _app, client, settings = make_client(db, tmp)
    sign_in(client, "vilnius")
    _expire_sessions(settings)
    return client.get("/account?lang=en", headers={"Accept": "application/json"})


def session_idle(db, tmp):
    """Idle longer than ATVIRA_SESSION_IDLE_MINUTES: logged out too."""
    _app, client, settings = make_client(db, tmp)
    sign_in(client, "vilnius")
    conn = connect_private(settings)
    conn.execute("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00Z'")
    conn.close()
    return client.get("/account?lang=en", follow_redirects=True)


def session_token_unknown(db, tmp):
    """A correctly signed cookie whose session token was never issued (or was logged out)."""
    _app, client, _ = make_client(db, tmp)
    with client.session_transaction() as sess:
        sess["atvira_session"] = "never-issued-token"
    return client.get("/account?lang=en", follow_redirects=True)


def session_cookie_forged(db, tmp):
    """A session cookie signed with another key: ignored, so not signed in."""
    app, client, _ = make_client(db, tmp)
    other = Flask("other")
    other.secret_key = "another key the attacker chose"
    serializer = other.session_interface.get_signing_serializer(other)
    client.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"),
                      serializer.dumps({"atvira_session": "x"}), domain="localhost")
    return client.get("/account?lang=en", follow_redirects=True)


def logged_out_session_reused(db, tmp):
    """The cookie saved before logout, replayed afterwards, opens nothing."""
    app, client, _ = make_client(db, tmp)
    sign_in(client, "vilnius")
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session")).value
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    thief = app.test_client()
    thief.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), cookie, domain="localhost")
    return thief.get("/account?lang=en", follow_redirects=True)


def wrong_password_many(db, tmp):
    """Ten wrong passwords, then the right one: refused, the account is locked."""
    _app, client, _ = make_client(db, tmp, login_limit="100 per hour")
    for i in range(10):
        _post_login(client, token=csrf_token(client), password=f"wrong password {i}")
    return _post_login(client, token=csrf_token(client), password=PASSWORD)


def wrong_login(db, tmp):
    """An unknown login reads exactly like a wrong password (no hint which was wrong)."""
    _app, client, _ = make_client(db, tmp)
    return _post_login(client, token=csrf_token(client), login="nobody", password=PASSWORD)


def wrong_password(db, tmp):
    _app, client, _ = make_client(db, tmp)
    return _post_login(client, token=csrf_token(client), password="not the password")


def password_100kb(db, tmp):
    """100 KB of password: refused as wrong, without hashing it (no CPU to burn)."""
    _app, client, _ = make_client(db, tmp)
    return _post_login(client, token=csrf_token(client), password="p" * 100_000)


def login_html(db, tmp):
    """Markup as a login: refused, and echoed back escaped, never as HTML."""
    _app, client, _ = make_client(db, tmp)
    return _post_login(client, token=csrf_token(client), login='<script>alert(1)</script>')


def login_rate_limit(db, tmp):
    _app, client, _ = make_client(db, tmp, login_limit="3 per hour")
    resp = None
    for _ in range(4):
        resp = _post_login(client, token=csrf_token(client), login="nobody")
    return resp


def open_redirect(db, tmp):
    """`next` pointing off-site: after signing in, the user stays on this site."""
    _app, client, _ = make_client(db, tmp)
    return _post_login(client, token=csrf_token(client), password=PASSWORD, next="//evil.example/phish")


def disabled_account(db, tmp):
    _app, client, settings = make_client(db, tmp)
    conn = connect_private(settings)
    accounts.disable_user(conn, "vilnius")
    conn.close()
    return _post_login(client, token=csrf_token(client), password=PASSWORD)


SCENARIOS: dict[str, Callable] = {f.__name__.replace("_", "-"): f for f in (
    csrf_missing, csrf_forged, csrf_other_key, csrf_expired, csrf_token_without_session,
    csrf_replayed_across_sessions, logout_without_token, session_expired_page, session_expired_json,
    session_idle, session_token_unknown, session_cookie_forged, logged_out_session_reused,
    wrong_password_many, wrong_login, wrong_password, password_100kb, login_html, login_rate_limit,
    open_redirect, disabled_account,
)}


def run_auth(case: dict, db: Path, tmp: Path) -> None:
    resp = SCENARIOS[case["input"]](db, tmp)
    body = resp.get_data(as_text=True)
    assert resp.status_code == case["status"], (resp.status_code, body[-600:])
    seen = body + " " + resp.headers.get("Location", "")
    assert case["expect"] in seen, seen[-800:]
    assert "Traceback" not in body
    if resp.status_code == 429:
        assert int(resp.headers["Retry-After"]) > 0
