"""Everything derived from the facilities, refreshed in one place after every run.

`refresh_derived` brings the data's extent, the map grid, the stored audit (with the social-cluster
figures) and the snapshot up
to the change log. Each is keyed on what it was computed from (the change log's last `seq`, the
areas' signature, and for the audit also the date its 12-month cut-off was taken on and the last
successful run, whose listing verifies a register's records), stored in
`meta`, so:

- every caller (the CLI, a Python caller, bench, tests, an approved contribution) gets the same
  store by calling the same function;
- a crash between a run's commit and this refresh leaves the keys behind, and the next call
  (any later run, `atvira status`, `atvira audit`, the server's start) repairs it, instead of a
  date-keyed audit staying stale for the rest of the day;
- a call with nothing new does nothing but read a few keys.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from . import audit, clock, social_cluster
from .clusters import grid_point, refresh_map_data, refresh_map_sources, update_grid
from .config import Settings
from .errors import StoreError
from .ready import DERIVED_META, READY_VERSION, refresh_ready
from .snapshots import create_snapshot, last_seq, repair_snapshots
from .store import connect, get_meta, refresh_extent, set_meta, transaction

# An incremental refresh reads each changed facility's rows; past this many, one pass over the
# whole table (the full rebuild) is cheaper, and it is the same result.
INCREMENTAL_MAX = 20_000
# The fields the map grid, the extent and the audit's area assignment read from a facility.
_TRACKED = ("lon", "lat", "status", "categories", "features", "opening_hours", "municipality_code")

META_KEY = DERIVED_META


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
    """A cheap fingerprint of the loaded areas (614 rows for Lithuania): changes when they do.

    Read from the covering index areas_signature (the WHERE is what lets the planner take it),
    not the table: the geometries' lengths would cost ~30 ms (megabytes of text) per refresh."""
    sql = ("SELECT count(*), total(population), total(length(geometry)), total(min_lon), total(max_lat)"
           " FROM areas {} WHERE length(geometry) >= 0")
    try:
        return list(conn.execute(sql.format("INDEXED BY areas_signature")).fetchone())
    except sqlite3.OperationalError:  # a read-only store older than the index: the same figures, slower
        return list(conn.execute(sql.format("")).fetchone())


def audit_key(conn: sqlite3.Connection, *, seq: int, areas: list[Any], today: str) -> list[Any]:
    """What the stored audit depends on: the change log, the areas, the day (its 12-month cut-off)
    and the last successful run: a register run that changed nothing still verified every record
    it listed (audit rule 4), so the "not verified" counts move with it."""
    # Only a register run that listed records verifies anything: OSM is verified by its own
    # check_date tags, and a run whose every record was rejected listed nothing.
    # newest first: the scan stops at the first match (one approved contribution is one run)
    found = conn.execute(
        "SELECT id FROM ingest_runs WHERE status = 'ok' AND source != 'osm'"
        " AND coalesce(json_extract(counts, '$.added'), 0) + coalesce(json_extract(counts, '$.updated'), 0)"
        " + coalesce(json_extract(counts, '$.unchanged'), 0) > 0 ORDER BY id DESC LIMIT 1"
    ).fetchone()
    last_run = None if found is None else found[0]
    return [seq, areas, today, last_run]


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
    if keys.get("audit") != audit_key(conn, seq=seq, areas=areas, today=today_s):
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


def _interval_passed(conn: sqlite3.Connection, settings: Settings) -> bool:
    """Whether ATVIRA_SNAPSHOT_INTERVAL seconds have passed since the newest snapshot (always,
    when 0). A store receiving one change at a time (approved contributions) sets it, so a
    change costs the grid and audit rows it touches, not a whole-store copy; the snapshot stays
    due and the first refresh after the interval (any run, `atvira status`, the server's start,
    `atvira snapshots create`) writes it."""
    if settings.snapshot_interval <= 0:
        return True
    newest = conn.execute("SELECT max(created_at) FROM snapshots").fetchone()[0]
    if newest is None:
        return True
    try:
        at = datetime.fromisoformat(newest.replace("Z", "+00:00"))
    except ValueError:
        return True
    return (clock.now() - at).total_seconds() >= settings.snapshot_interval


PARTS = ("map", "audit", "snapshot")


def refresh_derived(conn: sqlite3.Connection, settings: Settings, *, today: date | None = None,
                    snapshot: bool = True, force: tuple[str, ...] = ()) -> DerivedReport:
    """Bring extent, map grid, audit and snapshot up to the store's change log.

    `conn` must be a writer with no transaction open (the snapshot's copy is its own read
    transaction; on a store in WAL mode it is written alongside the grid and the audit).
    `snapshot=False` leaves the snapshot for a later call (it stays due). `force` names parts to
    rebuild even when current ("map", "audit": `atvira map rebuild`, `atvira audit --recompute`).
    """
    unknown = set(force) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown derived parts {sorted(unknown)}; known are {PARTS}")
    seq = last_seq(conn)
    report = DerivedReport(seq=seq)
    keys = state(conn)
    if keys.get("ready") != READY_VERSION:
        # rows written before the ready feature text existed, or by a different feature SQL
        started = time.perf_counter()
        with transaction(conn):
            refresh_ready(conn)
            keys["ready"] = READY_VERSION
            set_meta(conn, META_KEY, keys)
        report.done["ready features"] = time.perf_counter() - started
    today = today or clock.now().date()

    def map_and_audit() -> None:
        _refresh_map_and_audit(conn, keys, report, seq=seq, today=today, force=force)

    if snapshot and _snapshot_due(conn, seq) and _interval_passed(conn, settings):
        # The copy reads only the published tables (facilities, their source records, the
        # areas), which neither the grid nor the audit writes: it is written alongside them.
        started, before = time.perf_counter(), sum(report.done.values())
        run_id = conn.execute("SELECT max(id) FROM ingest_runs WHERE status = 'ok'").fetchone()[0]
        report.snapshot = create_snapshot(conn, settings, run_id=run_id, alongside=map_and_audit)
        # the time the snapshot added: its copy beyond the grid and audit, and the bookkeeping
        report.done["snapshot"] = time.perf_counter() - started - (sum(report.done.values()) - before)
    else:
        map_and_audit()
    return report


def _refresh_map_and_audit(conn: sqlite3.Connection, keys: dict[str, Any], report: DerivedReport, *, seq: int,
                           today: date, force: tuple[str, ...]) -> None:
    """The map grid (with the extent and the credited sources) and the audit (with the
    social-cluster figures) brought up to `seq`: incrementally, or whole when that is cheaper."""
    if keys.get("map") != seq or "map" in force:
        started = time.perf_counter()
        with transaction(conn):
            since = keys.get("map")
            changed = None if "map" in force or since is None else changed_since(conn, since)
            if changed is None:
                refresh_extent(conn)
                refresh_map_data(conn)
                how = "map grid"
            else:
                _update_map(conn, changed)
                how = "map grid (incremental)"
            keys["map"] = seq
            set_meta(conn, META_KEY, keys)
        report.done[how] = time.perf_counter() - started
    key = audit_key(conn, seq=seq, areas=areas_signature(conn), today=today.isoformat())
    if keys.get("audit") != key or "audit" in force:
        started = time.perf_counter()
        runs = conn.execute("SELECT coalesce(max(id), 0) FROM ingest_runs").fetchone()[0]
        ids = None if "audit" in force else audit_changed(conn, keys, key, today=today)
        if ids is None:
            # The whole recompute: the first time, after the areas changed, or past
            # INCREMENTAL_MAX facilities. The social-cluster figures (issue 15) read the same
            # facilities and areas: refreshed with the audit, on the same key.
            audit.recompute(conn, today=today)
            social_cluster.recompute(conn)
            how = "audit"
        else:
            audit.update(conn, ids, today=today)
            report.done["audit (incremental)"] = time.perf_counter() - started
            started = time.perf_counter()
            social_cluster.update(conn, ids)
            how = "social cluster (incremental)"
        with transaction(conn):
            keys.update({"audit": key, "audit_runs": runs, "audit_facts": audit.FACTS_VERSION})
            set_meta(conn, META_KEY, keys)
        report.done[how] = time.perf_counter() - started


def repair(settings: Settings) -> tuple[DerivedReport | None, list[str]]:
    """What the server's start and `atvira status --repair` run: remove what a killed snapshot
    left behind, then bring every derived part up to the change log (one writer, once).

    Returns (the refresh's report, the snapshot repairs); (None, [reason]) when the store
    cannot be written here (a read-only published copy is served as it is, and says so).
    """
    try:
        conn = connect(settings.db)
    except StoreError as exc:
        return None, [f"derived data not checked: {exc.message}"]
    try:
        fixed = repair_snapshots(conn, settings)
        return refresh_derived(conn, settings), fixed
    except StoreError as exc:
        return None, [f"derived data not repaired: {exc.message}"]
    finally:
        conn.close()


Values = dict[str, Any]


def changed_since(conn: sqlite3.Connection, seq: int) -> dict[str, tuple[Values | None, Values | None]] | None:
    """Each facility the change log touched after `seq`: (its tracked values then, now), None
    for "did not exist" / "does not exist"; None overall when too many changed (rebuild whole).

    "Then" is the row now with each later change's `old` values laid over it, newest first (the
    log holds every changed field's value before and after), so nothing but the log and the
    changed rows is read.
    """
    ids = [r[0] for r in conn.execute(
        "SELECT DISTINCT facility_id FROM changes WHERE seq > ? LIMIT ?", (seq, INCREMENTAL_MAX + 1))]
    if len(ids) > INCREMENTAL_MAX:
        return None
    out: dict[str, tuple[Values | None, Values | None]] = {}
    for fid in ids:
        row = conn.execute(f"SELECT {', '.join(_TRACKED)} FROM facilities WHERE id = ?", (fid,)).fetchone()
        now = None if row is None else _decoded({k: row[k] for k in _TRACKED})
        then = None if now is None else dict(now)
        for kind, old in conn.execute(
                "SELECT kind, old FROM changes WHERE facility_id = ? AND seq > ? ORDER BY seq DESC", (fid, seq)):
            if old is None:
                then = None if kind == "added" else then
                continue
            then = dict(then or {})
            then.update({k: v for k, v in json.loads(old).items() if k in _TRACKED})
        out[fid] = (then, now)
    return out


def audit_changed(conn: sqlite3.Connection, keys: dict[str, Any], key: list[Any], *,
                  today: date) -> list[str] | None:
    """The facilities whose audit and social-cluster rows may have moved since the stored audit
    (computed on `keys["audit"]`), or None when only a whole recompute will do (never computed,
    computed by an older version, the areas changed, or more than INCREMENTAL_MAX facilities).

    Three things move a facility's rows: a change to it (the change log after the audit's seq);
    a successful run of a source whose listing verifies (audit rule 4) re-lists every live
    record of its source and scope, so their "not verified in 12 months" may flip; and a new
    day moves the 12-month cut-off past the facilities verified between the two cut-offs.
    """
    was = keys.get("audit")
    if (not isinstance(was, list) or len(was) != len(key) or was[1] != key[1]
            or keys.get("audit_facts") != audit.FACTS_VERSION or "audit_runs" not in keys):
        return None
    seq, day = was[0], was[2]
    ids: dict[str, None] = dict.fromkeys(r[0] for r in conn.execute(
        "SELECT DISTINCT facility_id FROM changes WHERE seq > ? LIMIT ?", (seq, INCREMENTAL_MAX + 1)))
    skip = list(audit.FETCH_DOES_NOT_VERIFY)
    for source, scope in conn.execute(
            "SELECT DISTINCT source, scope FROM ingest_runs WHERE id > ? AND status = 'ok'"
            f" AND source NOT IN ({', '.join('?' * len(skip))})", (keys["audit_runs"], *skip)).fetchall():
        if len(ids) > INCREMENTAL_MAX:
            break
        ids.update(dict.fromkeys(r[0] for r in conn.execute(
            "SELECT facility_id FROM source_records WHERE source = ? AND scope = ? AND removed_at IS NULL LIMIT ?",
            (source, scope, INCREMENTAL_MAX + 1))))
    if day != today.isoformat() and len(ids) <= INCREMENTAL_MAX:
        ids.update(dict.fromkeys(audit.window_ids(conn, was=date.fromisoformat(day), now=today,
                                                  limit=INCREMENTAL_MAX + 1)))
    if len(ids) > INCREMENTAL_MAX:
        return None
    return list(ids)


def _decoded(values: Values) -> Values:
    for key in ("categories", "features"):
        if isinstance(values.get(key), str):
            values[key] = json.loads(values[key])
    return values


def _update_map(conn: sqlite3.Connection, changed: dict[str, tuple[Values | None, Values | None]]) -> None:
    """The map grid, extent and credited sources moved by the changed facilities only."""
    points = [(grid_point(then) if then else None, grid_point(now) if now else None)
              for then, now in changed.values()]
    update_grid(conn, [p for p in points if p[0] != p[1]])
    _update_extent(conn, changed)
    pairs = [tuple(r) for r in conn.execute(
        "SELECT DISTINCT source, licence FROM source_records WHERE facility_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(changed)),))]
    refresh_map_sources(conn, pairs)


def _update_extent(conn: sqlite3.Connection, changed: dict[str, tuple[Values | None, Values | None]]) -> None:
    """Grow the stored extent by the changed positions; recompute it whole only when a position
    on its edge moved or went (what refresh_extent does: active, closed and unknown places)."""
    def shown(v: Values | None) -> tuple[float, float] | None:
        if v is None or v.get("lon") is None or v.get("lat") is None or v.get("status") == "removed":
            return None
        return float(v["lon"]), float(v["lat"])

    extent = get_meta(conn, "extent")
    if extent is None:
        refresh_extent(conn)
        return
    west, south, east, north = extent
    for then, now in changed.values():
        old = shown(then)
        if old is not None and old != shown(now) and (old[0] in (west, east) or old[1] in (south, north)):
            refresh_extent(conn)
            return
    for _then, now in changed.values():
        new = shown(now)
        if new is not None:
            west, east = min(west, new[0]), max(east, new[0])
            south, north = min(south, new[1]), max(north, new[1])
    set_meta(conn, "extent", [west, south, east, north])


