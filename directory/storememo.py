"""Small facts about the store's content, kept per serving connection until the store changes.

A map page runs about seven small statements besides its page (the content version for its
ETag, whether the map grid exists, the grid's total for the filter, max(rid), the open-state
table's version ...): each a few microseconds, together a tenth of the request, and they change
only when the store does. A serving reader (db.open_reader) keeps them here, and one
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
from typing import Any

# Keyed by id(conn): sqlite3 connections take no attributes and no weak references. The entry
# holds the connection, so its id is not reused while the entry lives.
_MEMOS: dict[int, tuple[sqlite3.Connection, list[Any]]] = {}
_MAX_ENTRIES = 256  # connections come and go in tests; a server keeps one per thread


def enable(conn: sqlite3.Connection) -> None:
    """Keep facts for this read-only connection (it must never commit to the store)."""
    if len(_MEMOS) >= _MAX_ENTRIES:
        _MEMOS.clear()
    _MEMOS[id(conn)] = (conn, [_data_version(conn), {}])


def refresh(conn: sqlite3.Connection) -> None:
    """Drop the connection's facts if another connection committed since the last call (one
    cheap pragma): call it once per request, before the request reads anything."""
    entry = _MEMOS.get(id(conn))
    if entry is None or entry[0] is not conn:
        return
    version = _data_version(conn)
    state = entry[1]
    if version != state[0]:
        state[0], state[1] = version, {}


def memo(conn: sqlite3.Connection) -> dict[Any, Any] | None:
    """The connection's facts (a dict to read and fill), or None when it keeps none."""
    entry = _MEMOS.get(id(conn))
    if entry is None or entry[0] is not conn:
        return None
    return entry[1][1]


def _data_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA data_version").fetchone()[0]
