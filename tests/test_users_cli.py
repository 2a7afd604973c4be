"""`atvira users add|list|disable|reset`, permissions and the change-log role label."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from flask import jsonify

from directory import accounts, clock
from directory.accounts import AccountLocked, InvalidCredentials, PermissionDenied
from directory.private_store import PRIVATE_SCHEMA_VERSION, connect_private
from directory.store import connect
from directory.web.auth import editor_for, login_required
from tests.authtool import PASSWORD, add_account, csrf_token, sign_in
from tests.clitool import make_cli

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.fixture
def areas_store(settings):
    """A store with two municipalities (the users command resolves names to codes there)."""
    conn = connect(settings.db)
    for code, name in (("13", "Vilniaus m. sav."), ("15", "Kauno m. sav.")):
        conn.execute("INSERT INTO areas(code, level, name, geometry) VALUES (?, 'municipality', ?, '{}')", (code, name))
    conn.close()
    return settings


def users(settings, *args, input=None):
    env = {"ATVIRA_PRIVATE_DB": str(settings.private_db_path())}
    return CliRunner().invoke(make_cli(), ["--db", str(settings.db), "users", *args], input=input, env=env)


def test_add_list_disable_reset(areas_store):
    s = areas_store
    r = users(s, "add", "vilnius", "--role", "editor", "--municipality", "Vilniaus m. sav.", "--municipality", "15",
              input=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0 and "added vilnius (editor: 13, 15)" in r.output, r.output
    assert PASSWORD not in r.output
    r = users(s, "add", "boss", "--role", "admin", "--password-stdin", input=f"{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in users(s, "list", "--json").output.splitlines()]
    assert [(u["login"], u["role"], u["municipalities"], u["disabled"]) for u in rows] == [
        ("boss", "admin", [], False), ("vilnius", "editor", ["13", "15"], False)]
    assert "password_hash" not in json.dumps(rows) and "scrypt" not in json.dumps(rows)
    assert "vilnius\teditor\t13,15\tactive" in users(s, "list").output

    conn = connect_private(s)
    now = clock.now()  # `users list` shows a lock while it holds, by the real clock
    for i in range(10):
        with pytest.raises((InvalidCredentials, AccountLocked)):
            accounts.authenticate(conn, login="vilnius", password=f"wrong {i}", now=now)
    with pytest.raises(AccountLocked):
        accounts.authenticate(conn, login="vilnius", password=PASSWORD, now=now)
    assert "locked until" in users(s, "list").output
    new = "another long password"
    r = users(s, "reset", "vilnius", input=f"{new}\n{new}\n")
    assert r.exit_code == 0 and "lockout cleared" in r.output, r.output
    assert accounts.authenticate(conn, login="vilnius", password=new, now=now).login == "vilnius"  # unlocked at once

    r = users(s, "disable", "vilnius")
    assert r.exit_code == 0 and "vilnius\teditor\t13,15\tdisabled" in users(s, "list").output
    with pytest.raises(accounts.AccountDisabled):
        accounts.authenticate(conn, login="vilnius", password=new, now=T0)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == PRIVATE_SCHEMA_VERSION


@pytest.mark.parametrize("args, stdin, message", [
    (["add", "x", "--role", "editor", "--password-stdin"], f"{PASSWORD}\n", "an editor needs at least one municipality"),
    (["add", "x", "--role", "editor", "--municipality", "Atlantida", "--password-stdin"], f"{PASSWORD}\n",
     "no municipality 'Atlantida'"),
    (["add", "x", "--role", "admin", "--password-stdin"], "short\n", "at least 10 characters"),
    (["add", "x", "--role", "admin", "--password-stdin"], "", "no password on standard input"),
    (["add", "two words", "--role", "admin", "--password-stdin"], f"{PASSWORD}\n", "without spaces"),
    (["reset", "nobody", "--password-stdin"], f"{PASSWORD}\n", "no user 'nobody'"),
    (["disable", "nobody"], None, "no user 'nobody'"),
])
def test_bad_arguments_are_refused_clearly(areas_store, args, stdin, message):
    r = users(areas_store, *args, input=stdin)
    assert r.exit_code == 2 and message in r.output, r.output
    assert accounts.list_users(connect_private(areas_store)) == []


def test_no_password_argument_and_a_taken_login(areas_store):
    r = users(areas_store, "add", "x", "--role", "admin", "--password", PASSWORD)
    assert r.exit_code == 2 and "No such option" in r.output
    assert users(areas_store, "add", "x", "--role", "admin", "--password-stdin", input=f"{PASSWORD}\n").exit_code == 0
    r = users(areas_store, "add", "X", "--role", "admin", "--password-stdin", input=f"{PASSWORD}\n")
    assert r.exit_code == 2 and "the login 'X' is taken" in r.output  # logins are case-insensitive


def test_can_edit_and_role_label():
    names = {"13": "Vilniaus m. sav.", "15": "Kauno m. sav."}
    vilnius = accounts.User(id=1, login="jonas@example.lt", role="editor", municipalities=("13",))
    admin = accounts.User(id=2, login="root", role="admin", municipalities=())
    assert accounts.can_edit(vilnius, "13") and not accounts.can_edit(vilnius, "15")
    assert not accounts.can_edit(vilnius, None) and not accounts.can_edit(None, "13")
    assert accounts.can_edit(admin, "15") and accounts.can_edit(admin, None)
    with pytest.raises(PermissionDenied):
        accounts.require_edit(vilnius, "15")
    assert accounts.role_label(vilnius, names) == "editor, Vilniaus m. sav."
    assert accounts.role_label(vilnius, names.get) == "editor, Vilniaus m. sav."
    assert accounts.role_label(admin, names) == "admin"
    two = accounts.User(id=3, login="x", role="editor", municipalities=("13", "15"))
    assert accounts.role_label(two, names, municipality="15") == "editor, Kauno m. sav."
    assert "jonas" not in accounts.role_label(vilnius, names)  # never the person


def test_editor_outside_their_area_gets_403_and_strangers_sign_in_first(settings, make_app):
    """`editor_for` and `login_required` as contrib's views use them (routes added for the test)."""
    app = make_app()

    @login_required
    def whoami():
        return "ok"

    def edit(code):
        return jsonify(login=editor_for(code, what="this facility").login)

    app.add_url_rule("/t/whoami", view_func=whoami)
    app.add_url_rule("/t/edit/<code>", view_func=edit)
    app.add_url_rule("/api/t/edit/<code>", endpoint="api_edit", view_func=edit)
    add_account(settings, login="kaunas", municipalities=["15"])
    client = app.test_client()
    r = client.get("/t/whoami")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login?next=/t/whoami")
    assert "expired" not in r.headers["Location"]
    r = client.get("/api/t/edit/13")
    assert r.status_code == 401 and r.get_json()["error"] == "LoginRequired"
    sign_in(client, "kaunas")
    assert client.get("/t/whoami").get_data(as_text=True) == "ok"
    assert client.get("/t/edit/15").get_json() == {"login": "kaunas"}
    page = client.get("/t/edit/13?lang=en")
    assert page.status_code == 403 and "You may not edit this facility: it is outside your municipalities." in \
        page.get_data(as_text=True)
    lt = client.get("/t/edit/13?lang=lt")
    assert lt.status_code == 403 and "tai ne jūsų savivaldybė" in lt.get_data(as_text=True)
    api = client.get("/api/t/edit/13")
    assert api.status_code == 403 and api.get_json()["error"] == "PermissionDenied" and api.get_json()["where"] == "13"
    # After signing out the same cookie jar is a stranger again.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert client.get("/t/whoami").status_code == 303
