"""The private store: users, sessions and pending contributions, in their own SQLite file.

Personal data (logins, password hashes, session tokens' hashes, contact emails) never enters the
public store, because its snapshots and its SQLite download are published whole. This file sits
beside the store (`<store stem>.private.db`, or ATVIRA_PRIVATE_DB) and is never published.

Migrations work as in `directory.store`: PRAGMA user_version records how far a file got; each
entry of PRIVATE_MIGRATIONS is applied once, in order. Never edit a published one: append.
"""

from __future__ import annotations

import sqlite3

from .config import Settings
from .db import ThreadConnections
from .errors import StoreError
from .store import apply_migrations, write_error

PRIVATE_MIGRATIONS: list[str] = [
    # 1 (issue 11, accounts): editors and admins, their server-side sessions.
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        login TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,        -- werkzeug scrypt; never the password itself
        role TEXT NOT NULL CHECK (role IN ('editor', 'admin')),
        municipalities TEXT NOT NULL DEFAULT '[]', -- JSON array of municipality codes (editors)
        disabled INTEGER NOT NULL DEFAULT 0,
        failed_logins INTEGER NOT NULL DEFAULT 0, -- wrong passwords in a row since the last success
        locked_until TEXT,                  -- ISO instant; refused until then
        created_at TEXT NOT NULL,
        password_changed_at TEXT NOT NULL
    );
    -- id is the SHA-256 of the random token the cookie carries: a copy of this file opens no session.
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE INDEX sessions_expires ON sessions(expires_at);
    """,
    # 2 (issue 11, contributions): pending suggestions (directory.contributions), each with an
    # optional contact email that is never published and is purged after the retention.
    """
    CREATE TABLE contributions (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('add_place', 'report_problem', 'still_here')),
        problem TEXT,                       -- report_problem: closed | moved | wrong_hours | feature_wrong | not_accessible
        facility_id TEXT,                   -- the facility concerned (add_place: the one created on approval)
        municipality_code TEXT,             -- scopes the moderation queue to an editor's municipalities
        proposed TEXT NOT NULL,             -- JSON: field -> proposed value ("position", "features.wheelchair" ...)
        note TEXT NOT NULL DEFAULT '',
        email TEXT,                         -- optional contact: never published; purged after the retention
        via TEXT NOT NULL DEFAULT 'form',   -- form | open311
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
        decided_at TEXT,
        decided_by TEXT,                    -- a role ("editor, Vilniaus m. sav."), never a login
        reason TEXT,                        -- why it was rejected (public in Open311 status_notes)
        run_id INTEGER                      -- the public store's ingest run that applied it
    );
    CREATE INDEX contributions_queue ON contributions(status, municipality_code, id);
    CREATE INDEX contributions_status ON contributions(status, id);  -- an admin's queue, Open311
    CREATE INDEX contributions_created ON contributions(created_at) WHERE email IS NOT NULL;
    """,
]

PRIVATE_SCHEMA_VERSION = len(PRIVATE_MIGRATIONS)


def connect_private(settings: Settings) -> sqlite3.Connection:
    """Open (creating and migrating) the private file: WAL, a busy timeout, foreign keys on.

    Every web worker writes here (sessions, login counters), so one writer waits for another
    (busy_timeout) instead of failing.
    """
    path = settings.private_db_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate_private(conn)
    except sqlite3.Error as exc:
        raise write_error(exc, doing="opening the private store") or StoreError(
            f"cannot open the private store: {exc}", where=str(path)) from exc
    return conn


def migrate_private(conn: sqlite3.Connection) -> int:
    """Bring the private file up to PRIVATE_SCHEMA_VERSION; returns the number of migrations applied."""
    return apply_migrations(conn, PRIVATE_MIGRATIONS, label="private store")


class PrivatePool(ThreadConnections):
    """One private-store connection per serving thread, opened lazily (after gunicorn forks)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__(lambda: connect_private(settings))
