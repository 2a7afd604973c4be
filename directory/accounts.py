"""Editor and admin accounts, password checks with lockout, and server-side sessions.

The core of issue 11's accounts (no Flask, no click): `atvira users ...` and the login page are
thin shells around these functions. Everything lives in the private store
(`directory.private_store`), never in the published one.

- Passwords are hashed with Werkzeug's scrypt; the plain password is never stored or logged.
- `authenticate` never says which of login or password was wrong; after `lockout` wrong passwords
  in a row the account is locked for `lock_minutes`, even for the right password.
- A session is a random token; the cookie carries the token, the table only its SHA-256, so a
  copy of the private file opens no session. Sessions end on expiry, idleness, logout, a disabled
  account or a password reset.
- A change is attributed to a role ("editor, Vilniaus m. sav." or "admin"), never to a person.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from werkzeug.security import check_password_hash, generate_password_hash

from . import clock
from .errors import AtviraError, BadRequest, NotFound
from .store import transaction

ROLES = ("editor", "admin")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # scrypt of a huge "password" is a cheap way to burn a worker's CPU
MAX_LOGIN_LENGTH = 64


@functools.cache
def dummy_hash() -> str:
    """The hash checked when the login is unknown, so a wrong login costs as long as a wrong
    password (no timing oracle for which logins exist). Made on first use, not at import: an
    scrypt hash is 0.12 s, which every command and ingest process paid. The web app makes it
    when it starts (web.auth.init_auth), so even a worker's first unknown login costs one check."""
    return generate_password_hash("not a password: equalises the time of unknown logins", method="scrypt")


# --- errors ----------------------------------------------------------------------------------


class AuthError(AtviraError):
    """Login refused. The message never tells whether the login or the password was wrong."""

    status = 401


class InvalidCredentials(AuthError):
    def __init__(self) -> None:
        super().__init__("wrong login or password")


class AccountLocked(AuthError):
    """Too many wrong passwords in a row: refused (even the right password) until `until`."""

    status = 429

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(f"too many wrong passwords: sign-in is locked until {clock.stamp(until)}")


class AccountDisabled(AuthError):
    status = 403

    def __init__(self) -> None:
        super().__init__("this account is disabled; ask an administrator")


class SessionExpired(AuthError):
    """The cookie's session is unknown, past its lifetime, idle too long, or its user disabled."""

    def __init__(self, message: str = "your session has expired; please sign in again") -> None:
        super().__init__(message)


class PermissionDenied(AtviraError):
    """A signed-in user acting outside their role or municipalities."""

    status = 403


# --- users -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    role: str  # editor | admin
    municipalities: tuple[str, ...]  # municipality codes an editor may edit (admins: all)
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _user(row: sqlite3.Row) -> User:
    return User(id=row["id"], login=row["login"], role=row["role"],
                municipalities=tuple(json.loads(row["municipalities"])), disabled=bool(row["disabled"]))


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"the password must be at least {MIN_PASSWORD_LENGTH} characters", where="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(f"the password must be at most {MAX_PASSWORD_LENGTH} characters", where="password")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def add_user(conn: sqlite3.Connection, *, login: str, password: str, role: str,
             municipalities: Iterable[str] = (), now: datetime | None = None) -> User:
    """Create an account. Editors need at least one municipality code; admins need none."""
    login = (login or "").strip()
    if not login or len(login) > MAX_LOGIN_LENGTH or any(c.isspace() for c in login):
        raise BadRequest(f"a login is 1-{MAX_LOGIN_LENGTH} characters without spaces", where="login")
    if role not in ROLES:
        raise BadRequest(f"unknown role {role!r}; one of {', '.join(ROLES)}", where="role")
    codes = tuple(dict.fromkeys(str(c) for c in municipalities))
    if role == "editor" and not codes:
        raise BadRequest("an editor needs at least one municipality", where="municipality")
    _check_password(password)
    at = clock.stamp(now)
    try:
        with transaction(conn):
            cur = conn.execute(
                "INSERT INTO users(login, password_hash, role, municipalities, created_at, password_changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (login, hash_password(password), role, json.dumps(list(codes)), at, at),
            )
    except sqlite3.IntegrityError as exc:
        raise BadRequest(f"the login {login!r} is taken", where="login") from exc
    return User(id=cur.lastrowid, login=login, role=role, municipalities=codes)


def get_user(conn: sqlite3.Connection, login: str) -> User:
    row = conn.execute("SELECT * FROM users WHERE login = ?", (login,)).fetchone()
    if row is None:
        raise NotFound(f"no user {login!r}", where="login")
    return _user(row)


def list_users(conn: sqlite3.Connection) -> list[dict[str, object]]:
    """Every account with its state (never the hash), for `atvira users list`."""
    return [
        {"login": r["login"], "role": r["role"], "municipalities": json.loads(r["municipalities"]),
         "disabled": bool(r["disabled"]), "failed_logins": r["failed_logins"], "locked_until": r["locked_until"],
         "created_at": r["created_at"], "password_changed_at": r["password_changed_at"]}
        for r in conn.execute("SELECT * FROM users ORDER BY login")
    ]


def disable_user(conn: sqlite3.Connection, login: str) -> User:
    """Disable an account and end its sessions at once."""
    user = get_user(conn, login)
    with transaction(conn):
        conn.execute("UPDATE users SET disabled = 1 WHERE id = ?", (user.id,))
        conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
    return get_user(conn, login)


def reset_password(conn: sqlite3.Connection, login: str, *, password: str | None = None,
                   now: datetime | None = None) -> str:
    """Set a new password (or generate one, returned), clear the lockout and end the sessions."""
    user = get_user(conn, login)
    password = password if password is not None else secrets.token_urlsafe(15)
    _check_password(password)
    with transaction(conn):
        conn.execute(
            "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL, password_changed_at = ?"
            " WHERE id = ?",
            (hash_password(password), clock.stamp(now), user.id),
        )
        conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
    return password


def _instant(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def authenticate(conn: sqlite3.Connection, *, login: str, password: str, now: datetime | None = None,
                 lockout: int = 10, lock_minutes: float = 15.0) -> User:
    """The user for this login and password, or InvalidCredentials / AccountLocked / AccountDisabled.

    `lockout` wrong passwords in a row lock the account for `lock_minutes`; while locked even the
    right password is refused. A right password resets the count.
    """
    now = now or clock.now()
    login = (login or "").strip()
    password = password or ""
    row = conn.execute("SELECT * FROM users WHERE login = ?", (login,)).fetchone() if login else None
    if row is None or len(password) > MAX_PASSWORD_LENGTH:
        check_password_hash(dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        raise InvalidCredentials()
    locked_until = _instant(row["locked_until"])
    if locked_until is not None and locked_until > now:
        raise AccountLocked(locked_until)
    if not check_password_hash(row["password_hash"], password):
        with transaction(conn):
            # Counted in SQL, not from the row read above: two workers' wrong tries both count.
            failed = conn.execute("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?"
                                  " RETURNING failed_logins", (row["id"],)).fetchone()[0]
            if lockout > 0 and failed >= lockout:
                until = now + timedelta(minutes=lock_minutes)
                # The count starts again after the lock, so each lock costs `lockout` more tries.
                conn.execute("UPDATE users SET failed_logins = 0, locked_until = ? WHERE id = ?",
                             (clock.stamp(until), row["id"]))
        if lockout > 0 and failed >= lockout:
            raise AccountLocked(until)
        raise InvalidCredentials()
    # Only someone who knows the password learns that the account is disabled.
    if row["disabled"]:
        raise AccountDisabled()
    if row["failed_logins"] or row["locked_until"]:
        with transaction(conn):
            conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", (row["id"],))
    return _user(row)


# --- permissions and attribution ---------------------------------------------------------------


def can_edit(user: User | None, municipality_code: str | None) -> bool:
    """Admins edit everything; an editor edits the facilities of their own municipalities only."""
    if user is None or user.disabled:
        return False
    if user.is_admin:
        return True
    return municipality_code is not None and str(municipality_code) in user.municipalities


def require_edit(user: User | None, municipality_code: str | None, *, what: str = "this") -> None:
    """PermissionDenied unless `can_edit`: the one check every editing core function makes."""
    if not can_edit(user, municipality_code):
        raise PermissionDenied(f"you may not edit {what}: it is outside your municipalities",
                               where=str(municipality_code) if municipality_code else None)


def role_label(user: User, names: Mapping[str, str] | Callable[[str], str | None], *,
               municipality: str | None = None) -> str:
    """How the change log names who changed something: "editor, Vilniaus m. sav." or "admin".

    `names` maps municipality codes to names (the public store's `areas` table; a dict or a
    lookup function). `municipality` picks the one the change concerns; otherwise all of the
    editor's. Never a login, a name or an email.
    """
    if user.is_admin:
        return "admin"
    lookup = names.get if isinstance(names, Mapping) else names
    codes = (municipality,) if municipality else user.municipalities
    return ", ".join(["editor", *[(lookup(code) or code) for code in codes]])


def municipality_names(conn: sqlite3.Connection) -> dict[str, str]:
    """code -> name of every municipality in a (public) store, for `role_label`."""
    return {r[0]: r[1] for r in conn.execute("SELECT code, name FROM areas WHERE level = 'municipality'")}


# --- sessions --------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(conn: sqlite3.Connection, user: User, *, now: datetime | None = None,
                   hours: float = 8.0) -> str:
    """A new session for `user`; returns the token (only its hash is stored). Purges expired rows."""
    now = now or clock.now()
    token = secrets.token_urlsafe(32)
    with transaction(conn):
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (clock.stamp(now),))
        conn.execute(
            "INSERT INTO sessions(id, user_id, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?)",
            (_token_hash(token), user.id, clock.stamp(now), clock.stamp(now + timedelta(hours=hours)),
             clock.stamp(now)),
        )
    return token


# Writing last_seen_at on every request would make each page view a write; once a minute is
# precise enough for an idle limit counted in tens of minutes.
_TOUCH_EVERY = timedelta(seconds=60)


def get_session(conn: sqlite3.Connection, token: str, *, now: datetime | None = None,
                idle_minutes: float = 0.0) -> User:
    """The user of a live session, or SessionExpired (unknown, expired, idle, user disabled)."""
    now = now or clock.now()
    if not token or not isinstance(token, str) or len(token) > 200:
        raise SessionExpired()
    sid = _token_hash(token)
    row = conn.execute(
        "SELECT s.expires_at, s.last_seen_at, u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?",
        (sid,),
    ).fetchone()
    if row is None or row["disabled"]:
        raise SessionExpired()
    last_seen = _instant(row["last_seen_at"])
    idle_out = idle_minutes > 0 and last_seen is not None and now - last_seen > timedelta(minutes=idle_minutes)
    if _instant(row["expires_at"]) <= now or idle_out:
        with transaction(conn):
            conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        raise SessionExpired()
    if last_seen is None or now - last_seen >= _TOUCH_EVERY:
        with transaction(conn):
            conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (clock.stamp(now), sid))
    return _user(row)


def end_session(conn: sqlite3.Connection, token: str) -> None:
    """Logout: the session row goes, so the cookie (even a stolen copy) opens nothing."""
    if token:
        with transaction(conn):
            conn.execute("DELETE FROM sessions WHERE id = ?", (_token_hash(token),))
