"""open_state without a Python call per row: a per-connection temp table of hours string -> state.

A page of features joins its rows' opening_hours to `temp.atvira_open_now` (see
features.page_feature_sql), so a row costs an index look-up, and a row without hours nothing.
The table holds every distinct hours string the map grid knows (map_grid's zoom-0 'hours:' keys:
the distinct strings of the facilities on the map), each evaluated once with the instant it
holds until (hours.HoursState.next_change). A request re-evaluates only the strings whose window
its instant left (an opening or closing time passed), so a busy server evaluates a string about
twice a day; a new content version (a run) adds the strings it brought. A string the table lacks
(not on the map yet, e.g. before the grid is refreshed) falls back to atvira_open_state.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from . import clock, storememo
from .hours import TIMEZONE, HoursEvaluator

TABLE = "temp.atvira_open_now"
# next_change looks at most 8 days ahead (hours.parse); re-check a string at least this often.
MAX_VALID = timedelta(hours=6)


@dataclass
class _Cache:
    token: str
    version: int = -1
    # hours -> (state, valid from, valid until)
    states: dict[str, tuple[str, datetime, datetime]] = field(default_factory=dict)
    lo: datetime = datetime.max.replace(tzinfo=UTC)  # the latest "valid from"
    hi: datetime = datetime.min.replace(tzinfo=UTC)  # the earliest "valid until"


# Keyed by id(conn): sqlite3 connections take no attributes and no weak references. A token row
# in the temp table tells a reused id (a new connection) from the one the cache was built on.
_CACHES: dict[int, _Cache] = {}
_TOKEN_KEY = "\x00token"


def _evaluate(hours: list[str], now: datetime) -> dict[str, tuple[str, datetime, datetime]]:
    evaluator = HoursEvaluator(now)
    out = {}
    for h in hours:
        st = evaluator.state(h)
        until = now + MAX_VALID
        if st.next_change is not None and st.next_change < until:
            until = st.next_change
        out[h] = (st.state, now, until)
    return out


def _attach(conn: sqlite3.Connection) -> _Cache:
    cache = _CACHES.get(id(conn))
    try:
        row = conn.execute(f"SELECT state FROM {TABLE} WHERE hours = ?", (_TOKEN_KEY,)).fetchone()
    except sqlite3.OperationalError:  # no such table: a new connection
        row = None
        # until: the Unix time the state holds until (an answer built from it may be cached that long).
        # WITHOUT ROWID: a page's look-up per row with hours ends in the key's own b-tree.
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS atvira_open_now"
                     " (hours TEXT PRIMARY KEY, state TEXT NOT NULL, until REAL) WITHOUT ROWID")
    if cache is None or row is None or row[0] != cache.token:
        cache = _Cache(token=f"{id(conn)}-{datetime.now(UTC).timestamp()}")
        conn.execute(f"DELETE FROM {TABLE}")
        conn.execute(f"INSERT INTO {TABLE}(hours, state) VALUES (?, ?)", (_TOKEN_KEY, cache.token))
        if len(_CACHES) > 256:  # connections come and go in tests; servers keep a few
            _CACHES.clear()
        _CACHES[id(conn)] = cache
    return cache


def _write(conn: sqlite3.Connection, cache: _Cache, fresh: dict[str, tuple[str, datetime, datetime]]) -> None:
    if not fresh:
        return
    cache.states.update(fresh)
    conn.executemany(f"INSERT OR REPLACE INTO {TABLE}(hours, state, until) VALUES (?, ?, ?)",
                     [(h, f'"{s}"', b.timestamp()) for h, (s, _a, b) in fresh.items()])
    cache.lo = max(v[1] for v in cache.states.values())
    cache.hi = min(v[2] for v in cache.states.values())


def prepare(conn: sqlite3.Connection, now: datetime | None = None) -> None:
    """Make `temp.atvira_open_now` hold every known hours string's state at `now` (default: now)."""
    now = now or clock.now()
    if now.tzinfo is None:
        now = now.replace(tzinfo=TIMEZONE)
    # Python's sqlite3 opens a transaction before a DML statement; on a reader that would pin
    # its view of the store, so what this opens, it commits (a caller's own transaction stays).
    owned = not conn.in_transaction
    try:
        _prepare(conn, now)
    finally:
        if owned and conn.in_transaction:
            conn.commit()


def _prepare(conn: sqlite3.Connection, now: datetime) -> None:
    memo = storememo.memo(conn)
    cache = _CACHES.get(id(conn))
    # A reader's memo (storememo) remembers that this cache was attached and at which store
    # version: while the store is unchanged, neither needs a statement.
    if memo is None or cache is None or memo.get("open_now") != cache.token:
        cache = _attach(conn)
        version = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
    else:
        version = cache.version
    if version != cache.version:
        known = [r[0][6:] for r in conn.execute(
            "SELECT category FROM map_grid WHERE zoom = 0 AND category > 'hours:' AND category < 'hours;'")]
        _write(conn, cache, _evaluate([h for h in known if h not in cache.states], now))
        cache.version = version
    if memo is not None:
        memo["open_now"] = cache.token
    if cache.states and not cache.lo <= now < cache.hi:
        expired = [h for h, (_s, a, b) in cache.states.items() if not a <= now < b]
        _write(conn, cache, _evaluate(expired, now))
