"""Accounts, sign-in, sessions, CSRF and the production secret key (issue 11, accounts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from directory import accounts
from directory.accounts import AccountLocked, InvalidCredentials, SessionExpired
from directory.private_store import connect_private
from tests.authtool import PASSWORD, add_account, csrf_token, sign_in

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.fixture
def private(settings):
    conn = connect_private(settings)
    yield conn
    conn.close()


def test_users_table_holds_no_plain_password(settings, private):
    accounts.add_user(private, login="vilnius", password=PASSWORD, role="editor", municipalities=["13"])
    private.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = settings.private_db_path()
    assert path.name == "atvira.private.db" and path.parent == settings.db.parent
    data = path.read_bytes() + (path.with_name(path.name + "-wal").read_bytes()
                                if path.with_name(path.name + "-wal").exists() else b"")
    assert PASSWORD.encode() not in data
    stored = private.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("scrypt:") and PASSWORD not in stored


def test_ten_wrong_passwords_lock_until_the_lock_expires_and_reset_unlocks(private):
    accounts.add_user(private, login="kaunas", password=PASSWORD, role="editor", municipalities=["15"])
    for i in range(9):
        with pytest.raises(InvalidCredentials):
            accounts.authenticate(private, login="kaunas", password=f"wrong {i}", now=T0)
    with pytest.raises(AccountLocked):  # the tenth wrong one locks
        accounts.authenticate(private, login="kaunas", password="wrong 9", now=T0)
    with pytest.raises(AccountLocked):  # the eleventh, right, is refused while locked
        accounts.authenticate(private, login="kaunas", password=PASSWORD, now=T0 + timedelta(minutes=14))
    user = accounts.authenticate(private, login="kaunas", password=PASSWORD, now=T0 + timedelta(minutes=16))
    assert user.login == "kaunas" and user.municipalities == ("15",)


def test_session_expires(private):
    user = accounts.add_user(private, login="admin", password=PASSWORD, role="admin")
    token = accounts.create_session(private, user, now=T0, hours=8)
    assert accounts.get_session(private, token, now=T0 + timedelta(hours=7)).login == "admin"
    with pytest.raises(SessionExpired):
        accounts.get_session(private, token, now=T0 + timedelta(hours=8, seconds=1))
    assert private.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0


def test_login_without_csrf_token_is_400_and_with_it_signs_in(settings, client):
    add_account(settings, login="vilnius", municipalities=["13"])
    resp = client.post("/login", data={"login": "vilnius", "password": PASSWORD})
    assert resp.status_code == 400 and "Trūksta formos apsaugos žetono" in resp.get_data(as_text=True)
    resp = client.post("/login?lang=en", data={"login": "vilnius", "password": PASSWORD})
    assert resp.status_code == 400 and "security token is missing" in resp.get_data(as_text=True)
    sign_in(client, "vilnius")
    assert "Sign out" in client.get("/?lang=en").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/?lang=en")})
    assert "Sign out" not in client.get("/?lang=en").get_data(as_text=True)


def test_reset_and_disable_end_sessions_and_idle_sessions_end(private):
    user = accounts.add_user(private, login="vilnius", password=PASSWORD, role="editor", municipalities=["13"])
    token = accounts.create_session(private, user, now=T0)
    accounts.reset_password(private, "vilnius", password="a new long password", now=T0)
    with pytest.raises(SessionExpired):
        accounts.get_session(private, token, now=T0)
    token = accounts.create_session(private, user, now=T0)
    assert accounts.get_session(private, token, now=T0 + timedelta(minutes=50), idle_minutes=60).login == "vilnius"
    # Seen at 50 min: the idle clock restarted there.
    assert accounts.get_session(private, token, now=T0 + timedelta(minutes=100), idle_minutes=60).login == "vilnius"
    with pytest.raises(SessionExpired):
        accounts.get_session(private, token, now=T0 + timedelta(minutes=161), idle_minutes=60)
    token = accounts.create_session(private, user, now=T0)
    accounts.disable_user(private, "vilnius")
    with pytest.raises(SessionExpired):
        accounts.get_session(private, token, now=T0)
    # The table holds token hashes only: the token itself opens nothing if the file leaks.
    assert token not in {r[0] for r in private.execute("SELECT id FROM sessions")}


def test_a_right_password_resets_the_count(private):
    accounts.add_user(private, login="kaunas", password=PASSWORD, role="editor", municipalities=["15"])
    for _ in range(2):
        for i in range(9):
            with pytest.raises(InvalidCredentials):
                accounts.authenticate(private, login="kaunas", password=f"wrong {i}", now=T0)
        assert accounts.authenticate(private, login="kaunas", password=PASSWORD, now=T0).login == "kaunas"
