"""Everything derived from the facilities, refreshed in one place after every run.

`refresh_derived` brings the data's extent, the map grid, the stored audit (with the social-cluster
figures) and the snapshot up
to the change log. Each is keyed on what it was computed from (the change log's last `seq`, the
areas' signature, and for the audit also the date its 12-month cut-off was taken on), stored in
`meta`, so:

- every caller (the CLI, a Python caller, bench, tests, an approved contribution) gets the same
  store by calling the same function;
- a crash between a run's commit and this refresh leaves the keys behind, and the next call
  (any later run, `atvira status`, `atvira audit`, the server's start) repairs it, instead of a
  date-keyed audit staying stale for the rest of the day;
- a call with nothing new does nothing but read a few keys.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from . import audit, clock, social_cluster
from .clusters import refresh_map_data
from .config import Settings
from .snapshots import create_snapshot, last_seq
from .store import get_meta, refresh_extent, set_meta, transaction

META_KEY = "derived"


@dataclass
class DerivedReport:
    """What one refresh did (empty `done` when everything was current)."""

    seq: int
    done: dict[str, float] = field(default_factory=dict)  # part -> seconds
    snapshot: dict[str, Any] | None = None

    def describe(self) -> str:
        if not self.done:
            return f"derived data current (change {self.seq})"
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in self.done.items())
        return f"derived data refreshed to change {self.seq}: {parts}"


def areas_signature(conn: sqlite3.Connection) -> list[Any]:
    """A cheap fingerprint of the loaded areas (614 rows for Lithuania): changes when they do."""
    return list(conn.execute(
        "SELECT count(*), total(population), total(length(geometry)), total(min_lon), total(max_lat) FROM areas"
    ).fetchone())


def state(conn: sqlite3.Connection) -> dict[str, Any]:
    """The keys each derived part was last computed from (empty for a store never refreshed)."""
    return get_meta(conn, META_KEY) or {}


def stale_parts(conn: sqlite3.Connection, *, today: date | None = None) -> list[str]:
    """Which derived parts lag behind the store: for `atvira status` and the server's start."""
    keys = state(conn)
    seq, areas = last_seq(conn), areas_signature(conn)
    today_s = (today or clock.now().date()).isoformat()
    stale = []
    if keys.get("map") != seq:
        stale.append("map")
    if keys.get("audit") != [seq, areas, today_s]:
        stale.append("audit")
    if _snapshot_due(conn, seq):
        stale.append("snapshot")
    return stale


def _snapshot_due(conn: sqlite3.Connection, seq: int) -> bool:
    """A snapshot is due when the change log has moved past the newest snapshot's (and there is
    any change at all: an empty store has nothing to publish)."""
    if seq == 0:
        return False
    newest = conn.execute("SELECT max(last_seq) FROM snapshots").fetchone()[0]
    return newest is None or newest < seq


PARTS = ("map", "audit", "snapshot")


def refresh_derived(conn: sqlite3.Connection, settings: Settings, *, today: date | None = None,
                    snapshot: bool = True, force: tuple[str, ...] = ()) -> DerivedReport:
    """Bring extent, map grid, audit and snapshot up to the store's change log.

    `conn` must be a writer with no transaction open (the snapshot's VACUUM INTO refuses to run
    inside one). `snapshot=False` leaves the snapshot for a later call (it stays due). `force`
    names parts to rebuild even when current ("map", "audit": `atvira map rebuild`,
    `atvira audit --recompute`).
    """
    unknown = set(force) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown derived parts {sorted(unknown)}; known are {PARTS}")
    seq = last_seq(conn)
    report = DerivedReport(seq=seq)
    keys = state(conn)
    if keys.get("map") != seq or "map" in force:
        started = time.perf_counter()
        with transaction(conn):
            refresh_extent(conn)
            refresh_map_data(conn)
            keys["map"] = seq
            set_meta(conn, META_KEY, keys)
        report.done["map grid"] = time.perf_counter() - started
    today = today or clock.now().date()
    audit_key = [seq, areas_signature(conn), today.isoformat()]
    if keys.get("audit") != audit_key or "audit" in force:
        started = time.perf_counter()
        audit.recompute(conn, today=today)
        # The social-cluster figures (issue 15) read the same facilities and areas: refreshed
        # with the audit, on the same key.
        social_cluster.recompute(conn)
        with transaction(conn):
            keys["audit"] = audit_key
            set_meta(conn, META_KEY, keys)
        report.done["audit"] = time.perf_counter() - started
    if snapshot and _snapshot_due(conn, seq):
        started = time.perf_counter()
        run_id = conn.execute("SELECT max(id) FROM ingest_runs WHERE status = 'ok'").fetchone()[0]
        report.snapshot = create_snapshot(conn, settings, run_id=run_id)
        report.done["snapshot"] = time.perf_counter() - started
    return report
