"""Helpers for tests that sign in and post forms (CSRF tokens, accounts, sessions).

    user = add_account(settings, login="vilnius", role="editor", municipalities=["13"])
    sign_in(client, "vilnius")                 # GET /login for a token, POST the form
    token = csrf_token(client, "/login")       # the token of any page with a form
    client.post("/x", data={"csrf_token": token, ...})
"""

from __future__ import annotations

import re

from directory import accounts
from directory.config import Settings
from directory.private_store import connect_private

PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_account(settings: Settings, *, login: str, role: str = "editor", municipalities=(),
                password: str = PASSWORD) -> accounts.User:
    conn = connect_private(settings)
    try:
        return accounts.add_user(conn, login=login, password=password, role=role, municipalities=municipalities)
    finally:
        conn.close()


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token a page's form carries (the test client keeps the session cookie)."""
    html = client.get(path).get_data(as_text=True)
    match = _TOKEN.search(html)
    assert match, f"no csrf_token in {path}"
    return match.group(1)


def sign_in(client, login: str, password: str = PASSWORD, *, expect: int = 303):
    resp = client.post("/login", data={"login": login, "password": password, "csrf_token": csrf_token(client)})
    assert resp.status_code == expect, resp.get_data(as_text=True)[-500:]
    return resp
