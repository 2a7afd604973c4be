"""Small facts about the store's content, kept per serving connection until the store changes.

A map page runs about seven small statements besides its page (the content version for its
ETag, whether the map grid exists, the grid's total for the filter, max(rid), the open-state
table's version ...): each a few microseconds, together a tenth of the request, and they change
only when the store does. A serving reader (db.open_reader, a MemoConnection) keeps them on itself, and one
`PRAGMA data_version` per request (`refresh`, called by db.ReaderPool.get) says whether they
still hold: SQLite changes that number on a connection whenever ANOTHER connection has
committed to the file since the last time it was asked. A reader never writes the store itself
(its own temp-table writes do not count), so the memo is only enabled on readers: a connection
that commits, or rolls back its own uncommitted writes, would not see data_version move.

A store replaced by a new file (rename over the published path) is a new handle, hence a new
memo: an open handle keeps reading the file it opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class MemoConnection(sqlite3.Connection):
    """A connection that can carry its facts (sqlite3.Connection itself takes no attributes):
    the reader's class (db.open_reader), so the facts live and die with their connection."""

    facts: dict[Any, Any] | None = None  # None until `enable`
    data_version: int = -1


def enable(conn: sqlite3.Connection) -> None:
    """Keep facts for this read-only connection (it must never commit to the store)."""
    if not isinstance(conn, MemoConnection):
        raise TypeError("storememo keeps facts on a MemoConnection only (store.connect(factory=...))")
    conn.data_version, conn.facts = _data_version(conn), {}


def refresh(conn: sqlite3.Connection) -> None:
    """Drop the connection's facts if another connection committed since the last call (one
    cheap pragma): call it once per request, before the request reads anything."""
    if getattr(conn, "facts", None) is None:
        return
    version = _data_version(conn)
    if version != conn.data_version:
        conn.data_version, conn.facts = version, {}


def memo(conn: sqlite3.Connection) -> dict[Any, Any] | None:
    """The connection's facts (a dict to read and fill), or None when it keeps none."""
    return getattr(conn, "facts", None)


def kept(conn: sqlite3.Connection, key: Any, compute: Callable[[], T]) -> T:
    """compute()'s answer, made once per store state on a reader that keeps facts (and every
    time on any other connection)."""
    facts = memo(conn)
    if facts is None:
        return compute()
    if key not in facts:
        facts[key] = compute()
    return facts[key]


def _data_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA data_version").fetchone()[0]
