"""Apply one source's records to the store: idempotent upsert, change log, removal sweep.

Every adapter ends here. A run is one transaction: it is committed whole or not at all, so a
parse error half-way through a file, a kill, or a full disk leaves the previous data serving.
Re-applying the same records changes nothing and logs nothing (upserts compare content hashes).
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from . import clock
from .conflate import merge
from .model import Facility, Rejection, make_facility_id, scalar_json, suffixed_facility_id, validate
from .ready import claim_empty_store, insert_ready, refresh_ready_where
from .store import bulk_insert, deferred_indexes, first_load_journal, transaction

# The facility columns a source record sets; a change to any of them is an "update".
CONTENT_FIELDS = (
    "name", "categories", "lon", "lat", "address", "municipality_code", "eldership_code",
    "operator", "sector", "features", "opening_hours", "status", "last_verified", "licence", "extra",
)


class Locator(Protocol):
    """What the sync needs of the areas: see directory.areas.AreaLocator (whose bulk_locate,
    when a locator has one, the sync uses to ask for a batch of points at once: _located)."""

    @property
    def is_empty(self) -> bool: ...

    def locate(self, lon: float, lat: float) -> tuple[str | None, str | None]: ...


class MatchLike(Protocol):
    """A matcher's answer with its reasons (see directory.conflate.Match)."""

    facility_id: str
    reason: dict[str, Any]


# Given a new record, return the id of an existing facility that is the same place (conflation),
# or None to create a new facility. It may return a MatchLike instead of a bare id: its reason
# (distance, name score ...) is then stored on the source record and shown in the detail JSON.
Matcher = Callable[[sqlite3.Connection, Facility], "str | MatchLike | None"]


@dataclass
class IngestReport:
    source: str
    scope: str
    run_id: int | None = None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    without_position: int = 0
    merged: int = 0  # added records linked to a facility another source already described
    # records whose slugged id another record already held: (source_id, the suffixed id given)
    id_collisions: list[tuple[str, str]] = field(default_factory=list)
    # The sync's own bookkeeping, not a count: changes logged for facilities written with their
    # ready text made (the bulk inserts). When they are all of a run's changes, no facility it
    # changed lacks ready text and _refresh_changed has nothing to look for.
    ready_logged: int = field(default=0, repr=False, compare=False)

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "rejected": len(self.rejected),
            "without_position": self.without_position,
            "merged": self.merged,
        }

    def summary(self) -> str:
        c = self.counts()
        return (
            f"{self.source} [{self.scope}]: {c['added']} added, {c['updated']} updated, "
            f"{c['unchanged']} unchanged, {c['removed']} removed, {c['rejected']} rejected"
            + (f", {c['without_position']} without a map position" if c["without_position"] else "")
            + (f", {c['merged']} merged into places another source describes" if c["merged"] else "")
            + "".join(f"; id {fid} given to {sid!r} (its slug was taken)" for sid, fid in self.id_collisions)
        )


def utcnow() -> str:
    return clock.stamp()


def _row_values(fac: Facility) -> dict[str, Any]:
    return _encode({name: getattr(fac, name) for name in CONTENT_FIELDS})


def _encode(d: dict[str, Any]) -> dict[str, Any]:
    """Facility values (plain Python) as the facilities row stores them."""
    return {
        "name": d.get("name") or "",
        "categories": json.dumps(sorted(set(d["categories"]))),
        "lon": d.get("lon"),
        "lat": d.get("lat"),
        "address": d.get("address"),
        "municipality_code": d.get("municipality_code"),
        "eldership_code": d.get("eldership_code"),
        "operator": d.get("operator"),
        "sector": d.get("sector") or "unknown",
        "features": json.dumps(d.get("features") or {}, sort_keys=True, ensure_ascii=False),
        "opening_hours": d.get("opening_hours"),
        "status": d.get("status") or "active",
        "last_verified": d.get("last_verified"),
        "licence": d.get("licence") or "",
        "extra": json.dumps(d.get("extra") or {}, sort_keys=True, ensure_ascii=False, default=str),
    }


def _diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    before, after = {}, {}
    for key in CONTENT_FIELDS:
        if old.get(key) != new.get(key):
            before[key], after[key] = old.get(key), new.get(key)
    return before, after


def _decode(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key in ("categories", "features", "extra"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


def _place(fac: Facility, locator: Locator | None, where: tuple[str | None, str | None] | None = None) -> str | None:
    """Assign municipality/eldership; the reason a point is refused, or None when it is fine.
    `where`: the locator's answer for this point when it is known already (_located)."""
    if fac.lon is None or fac.lat is None:
        return None
    if locator is None or locator.is_empty:
        return None
    municipality, eldership = where if where is not None else locator.locate(fac.lon, fac.lat)
    if municipality is None:
        return f"point ({fac.lon:.6f}, {fac.lat:.6f}) is outside every loaded area"
    fac.municipality_code, fac.eldership_code = municipality, eldership
    return None


def _located(records: Iterable[Facility | Rejection], locator: Locator | None
             ) -> Iterator[tuple[Facility | Rejection, tuple[str | None, str | None] | None]]:
    """The records, each with the locator's answer for its point (None: not asked), asked for
    BATCH records at a time (the locator's bulk_locate: one vectorised query instead of one
    per record, the same answers). Only plain finite numbers are asked about; anything else is
    left to validate() and, if it passes, to _place's own call."""
    bulk = getattr(locator, "bulk_locate", None)
    if bulk is None or locator is None or locator.is_empty:
        for rec in records:
            yield rec, None
        return
    it = iter(records)
    while chunk := list(islice(it, BATCH)):
        asked = [i for i, rec in enumerate(chunk) if isinstance(rec, Facility)
                 and type(rec.lon) in (float, int) and type(rec.lat) in (float, int)
                 and math.isfinite(rec.lon) and math.isfinite(rec.lat)]
        answers: list = [None] * len(chunk)
        if asked:
            for i, where in zip(asked, bulk([chunk[i].lon for i in asked], [chunk[i].lat for i in asked])):
                answers[i] = where
        yield from zip(chunk, answers)


# An unchanged record now covered by another scope (a file renamed, an area re-cut): (scope, source, source_id).
_RESCOPE_SQL = "UPDATE source_records SET scope = ? WHERE source = ? AND source_id = ?"


@dataclass(slots=True)
class Raw:
    """A source record not mapped yet: its id, the hash of it as the source gave it, and how to
    map it (a Facility, a Rejection, or None: not of interest).

    `raw_hash` must cover everything the mapped record depends on: the raw record itself, the
    mapping rules (their fingerprint: a change maps every record again) and the run's context
    (licence, the areas that place it). apply_records maps it only when the stored source record
    has another raw hash (or none, or is removed): an unchanged re-run then costs one look-up
    per batch, not a mapping, a validation and a content hash per record. The mapped record of
    a skipped one would be the stored one, and its placement by position is the stored one too,
    so only records that carry a position (or are rejected) may come as Raw.

    `stored`: the reader found `raw_hash` among the run's stored raw keys (StoredKeys: read in
    the run's transaction, for its source and scope) under `source_id`, so the store holds this
    raw hash for this live record of this scope and no look-up is needed.

    `run`: several stored records in a row, as one Raw (an unchanged re-run's records are
    counted by the thousand, not one by one): their source ids; `build(j)` then gives the j-th
    one's Raw fields (made only for one met twice in the run), and source_id and raw_hash are
    empty. Only with `stored`.
    """

    source_id: str
    raw_hash: str
    build: Callable[..., Any]  # () -> Facility | Rejection | None; with `run`: (j) -> the j-th Raw's fields
    stored: bool = False
    run: list[str] | None = None


def _skip_unchanged(conn: sqlite3.Connection, records: Iterable[Facility | Rejection | Raw], *, source: str,
                    scope: str, seen: set[str], report: IngestReport,
                    progress: Callable[[int], None] | None, keys: StoredKeys | None = None
                    ) -> Iterator[Facility | Rejection]:
    """The records, with every Raw one whose raw hash the store holds for a live source record
    counted unchanged (and seen, and moved to `scope` if another scope had it) instead of mapped;
    the other Raw ones mapped (None: left out), each Facility carrying its raw hash. A source id
    met twice in the run is never skipped (apply_records rejects the second as a duplicate).
    `keys`: the run's StoredKeys, told how many of its records were skipped as stored."""
    it = iter(records)
    n = 0
    # Source ids handed on that apply_records has not put in `seen` yet (it adds every one it
    # handles): pruned per chunk, so it holds the records in flight, not the whole run.
    passed: set[str] = set()
    look = conn.cursor()
    look.row_factory = None  # plain tuples: this runs once per record of a country extract
    seen_add = seen.add
    # Records per chunk: BATCH, reached by doubling from 1, and cut down after a chunk holding
    # Raw runs (thousands of records each, with their texts) so that a chunk holds about BATCH
    # records whatever comes.
    size = 1
    while chunk := list(islice(it, size)):
        passed = {sid for sid in passed if sid not in seen}
        wanted = [rec.source_id for rec in chunk if type(rec) is Raw and not rec.stored]
        stored: dict[str, tuple[str | None, str]] = {}
        if wanted:
            stored = {row[0]: row[1:] for row in look.execute(
                "SELECT source_id, raw_hash, scope FROM source_records WHERE source = ? AND removed_at IS NULL"
                " AND raw_hash IS NOT NULL AND source_id IN (SELECT value FROM json_each(?))",
                (source, json.dumps(wanted)))}
        rescoped: list[tuple[str, str, str]] = []
        as_stored = 0  # skipped as Raw.stored (in this scope: counted for the sweep, StoredKeys)
        in_runs = 0  # the records Raw runs held beyond one each
        for rec in chunk:
            if type(rec) is not Raw:
                passed.add(rec.source_id)
                yield rec
                continue
            sid = rec.source_id
            if rec.stored:  # in this scope with this raw hash (StoredKeys): nothing to look up
                if (ids := rec.run) is not None:
                    in_runs += len(ids) - 1
                    if seen.isdisjoint(ids) and passed.isdisjoint(ids):
                        before = len(seen)
                        seen.update(ids)
                        if len(seen) - before == len(ids):  # and no id twice among them: all skipped
                            as_stored += len(ids)
                            continue
                        seen.difference_update(ids)  # none was there before
                    # One by one, as the Raw records they stand for (one met twice is made).
                    for j in range(len(ids)):
                        one = Raw(*rec.build(j))
                        if one.source_id not in seen and one.source_id not in passed:
                            as_stored += 1
                            seen_add(one.source_id)
                            continue
                        built = one.build()
                        if built is None:
                            continue
                        passed.add(one.source_id)
                        if isinstance(built, Facility):
                            built.raw_hash = one.raw_hash
                        yield built
                    continue
                if sid not in seen and sid not in passed:
                    as_stored += 1
                    seen_add(sid)
                    continue
                old = None
            else:
                old = stored.get(sid)
            if old is not None and old[0] == rec.raw_hash and sid not in seen and sid not in passed:
                report.unchanged += 1
                seen_add(sid)
                if old[1] != scope:  # now covered by another scope (a file renamed, an area re-cut)
                    rescoped.append((scope, source, sid))
                continue
            built = rec.build()
            if built is None:  # not of interest: never handed on
                continue
            passed.add(sid)
            if isinstance(built, Facility):
                built.raw_hash = rec.raw_hash
            yield built
        report.unchanged += as_stored
        if keys is not None:
            keys.skipped += as_stored
        conn.executemany(_RESCOPE_SQL, rescoped)
        held = len(chunk) + in_runs
        if progress is not None:  # every 10,000 records read
            for at in range(n - n % 10_000 + 10_000, n + held + 1, 10_000):
                progress(at)
        n += held
        size = min(BATCH, 2 * size) if not in_runs else max(1, BATCH * len(chunk) // held)


def stored_raw_hashes(conn: sqlite3.Connection, *, source: str) -> set[str]:
    """The raw hashes of `source`'s live source records: the ones _skip_unchanged finds, for a
    reader that can skip reading what a record so hashed holds (ingest.osm.read_hashed)."""
    look = conn.cursor()
    look.row_factory = None
    return {h for (h,) in look.execute("SELECT raw_hash FROM source_records WHERE source = ? AND removed_at IS NULL"
                                       " AND raw_hash IS NOT NULL", (source,))}


class StoredKeys:
    """The raw hashes of `source`'s live records in `scope` as {16 bytes: source id}, read when
    first called (the raw hashes _skip_unchanged finds there), for a reader that can tell a
    record's id from its raw hash and skip reading the record (ingest.osm.read_hashed; the Raw
    it yields then says `stored`). It must be called inside the run's transaction (BEGIN
    IMMEDIATE: no other writer between this read and the run's): apply_records's records are
    read there. Bytes, not the stored hex: 49 bytes a key instead of 81.

    Given to apply_records too (`stored_keys`), it tells the sweep when there is nothing to
    sweep: when the records skipped as stored (`skipped`, distinct) are as many as the scope's
    live records when it was read (`live`), the run saw every one of them."""

    def __init__(self, conn: sqlite3.Connection, *, source: str, scope: str) -> None:
        self.conn, self.source, self.scope = conn, source, scope
        self.live: int | None = None  # the scope's live records, raw hash or not (None: not read)
        self.skipped = 0  # records _skip_unchanged skipped as stored

    def __call__(self) -> dict[bytes, str]:
        look = self.conn.cursor()
        look.row_factory = None
        fromhex = bytes.fromhex
        keys: dict[bytes, str] = {}
        live = 0
        # One pass over the scope's rows (the sweep's rows): a raw hash that is not 32 hex
        # digits (none is written so) is counted, not kept. (Checked here: a GLOB in the SQL
        # doubled the pass.)
        for raw, sid in look.execute(
                "SELECT raw_hash, source_id FROM source_records WHERE source = ? AND scope = ? AND removed_at IS NULL",
                (self.source, self.scope)):
            live += 1
            if raw is not None and len(raw) == 32:
                try:
                    keys[fromhex(raw)] = sid
                except ValueError:  # not hex
                    pass
        self.live, self.skipped = live, 0
        return keys

    def saw_all(self) -> bool:
        """Every record live in the scope when the keys were read was skipped as stored."""
        return self.live is not None and self.skipped == self.live


def apply_records(
    conn: sqlite3.Connection,
    records: Iterable[Facility | Rejection | Raw],
    *,
    source: str,
    scope: str,
    locator: Locator | None = None,
    full: bool = True,
    matcher: Matcher | None = None,
    now: str | None = None,
    progress: Callable[[int], None] | None = None,
    actor: str | None = None,
    stored_keys: StoredKeys | None = None,
) -> IngestReport:
    """Upsert `records` as the complete content of `source` within `scope`.

    full=True: records of this source and scope that the run did not see (and did not reject)
    are marked removed. Rejected records keep whatever the store had for them.
    A Raw record is mapped only when its raw hash is not the stored one (see Raw).
    `actor`: who made the run, as a role (contributions: "editor, Vilniaus m. sav."), kept on
    the run and shown with its changes; never a name or an email.
    `stored_keys`: the StoredKeys the records' reader was given (for this source and scope): a
    run that skipped every record it holds as stored has nothing to sweep.
    """
    assert stored_keys is None or (stored_keys.source, stored_keys.scope) == (source, scope)
    now = now or utcnow()
    report = IngestReport(source=source, scope=scope)
    seen: set[str] = set()
    pending: list[Facility] = []  # valid records waiting for _upsert_batch
    # A larger page cache for the run (this connection only; memory, not durability): the
    # indexes a run writes (ids, source records, the change log, the R*Tree) stay in memory
    # instead of being spilled to the WAL and re-read half-way through the transaction.
    cache_before = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = {-RUN_CACHE_KIB}")
    # The same for the temp schema, where new facilities are staged (_write_new_bulk: ~3 KB a
    # row, BATCH rows): in SQLite's default 2 MiB each staged batch spilled to a temp file.
    temp_cache_before = conn.execute("PRAGMA temp.cache_size").fetchone()[0]
    conn.execute(f"PRAGMA temp.cache_size = {-RUN_TEMP_CACHE_KIB}")
    # No memory map for the run: a run writes (a mapped page is copied into the cache before it
    # changes) and its reads are index probes the cache holds, while every page the map touches
    # counts in the process's memory (a first run of 1M peaked at 702 MB, 256 MB of it mapped).
    mmap_before = conn.execute("PRAGMA mmap_size").fetchone()[0]
    conn.execute("PRAGMA mmap_size = 0")
    try:
        # A first run writes its pages once, not to the WAL and again at the checkpoint, and
        # builds its secondary indexes after its rows (store.deferred_indexes).
        with first_load_journal(conn), transaction(conn), deferred_indexes(conn) as first:
            if first:
                # Into a store without facilities no record can be conflated: the matcher's only
                # candidates are facilities no live record of this source holds, and every
                # facility this run creates holds one. The same answers, without the R*Tree join.
                matcher = None
            cur = conn.execute(
                "INSERT INTO ingest_runs(source, scope, started_at, status, actor) VALUES (?, ?, ?, 'running', ?)",
                (source, scope, now, actor),
            )
            run_id = report.run_id = cur.lastrowid
            claim_empty_store(conn)  # a first run's rows get current ready text: no rewrite after it
            seq_before = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
            # No live record of this source and scope yet (a first run of a file): every one the
            # run leaves live it handled (saw), so the sweep would read them all to find none.
            sweep = full and conn.execute(
                "SELECT 1 FROM source_records WHERE source = ? AND scope = ? AND removed_at IS NULL LIMIT 1",
                (source, scope)).fetchone() is not None
            unskipped = _skip_unchanged(conn, records, source=source, scope=scope, seen=seen, report=report,
                                        progress=progress, keys=stored_keys)
            for rec, where in _located(unskipped, locator):
                if isinstance(rec, Rejection):
                    report.rejected.append(rec)
                    seen.add(rec.source_id)
                    continue
                rec.source = source
                problems = validate(rec)
                reason = "; ".join(problems) if problems else _place(rec, locator, where)
                if reason:
                    report.rejected.append(Rejection(rec.source_id, reason))
                    seen.add(rec.source_id)
                    continue
                if rec.source_id in seen:
                    report.rejected.append(Rejection(rec.source_id, "duplicate record in this run"))
                    continue
                seen.add(rec.source_id)
                if rec.lon is None:
                    report.without_position += 1
                pending.append(rec)
                if len(pending) >= BATCH:
                    _upsert_batch(conn, pending, run_id=run_id, scope=scope, now=now, matcher=matcher,
                                  report=report, locator=locator)
                    pending.clear()
            _upsert_batch(conn, pending, run_id=run_id, scope=scope, now=now, matcher=matcher, report=report,
                          locator=locator)
            # Every record live in the scope at the start was skipped as stored (so seen): the
            # sweep would read them all to find none.
            if sweep and not (stored_keys is not None and stored_keys.saw_all()):
                _sweep(conn, source=source, scope=scope, seen=seen, run_id=run_id, now=now, report=report,
                       locator=locator)
            _refresh_changed(conn, seq_before=seq_before, ready_logged=report.ready_logged)
            conn.execute("DROP TABLE IF EXISTS temp.sync_new")  # _write_new_bulk's staging, empty
            conn.execute(
                "UPDATE ingest_runs SET finished_at = ?, status = 'ok', counts = ?, rejections = ? WHERE id = ?",
                (
                    utcnow(),
                    json.dumps(report.counts()),
                    json.dumps([{"source_id": r.source_id, "reason": r.reason, "where": r.where} for r in report.rejected]),
                    run_id,
                ),
            )
    except Exception as exc:
        record_failed_run(conn, source=source, scope=scope, now=now, message=str(exc))
        raise
    finally:
        conn.execute(f"PRAGMA cache_size = {cache_before}")
        conn.execute(f"PRAGMA temp.cache_size = {temp_cache_before}")
        conn.execute(f"PRAGMA mmap_size = {mmap_before}")
    return report


# The page cache of an ingest run, in KiB (SQLite's default is 2 MiB).
RUN_CACHE_KIB = 128 * 1024
# The temp schema's page cache during a run, in KiB: a staged batch of new facilities fits in it.
RUN_TEMP_CACHE_KIB = 32 * 1024


def _refresh_changed(conn: sqlite3.Connection, *, seq_before: int, ready_logged: int = 0) -> None:
    """Rewrite what is kept ready per facility (the map feature text) for every facility this
    run changed whose ready text is not already current: the change log since `seq_before`
    names every facility changed, whatever path (add, update, merge, sweep) changed it, and the
    store's triggers empty the ready text of every row written since it was made (new rows have
    none), so one statement does it. Facilities added in bulk got theirs in their batch: when
    their `ready_logged` changes are all the run logged (a first run), there is nothing to do
    (the look would read every new row: 0.3 s per 100k)."""
    if conn.execute("SELECT count(*) FROM changes WHERE seq > ?", (seq_before,)).fetchone()[0] == ready_logged:
        return
    refresh_ready_where(conn, f"f.id IN (SELECT facility_id FROM changes WHERE seq > ?) AND {_NOT_READY}", (seq_before,))


# A facility row some of whose ready text is missing (new, or emptied by a staleness trigger).
_NOT_READY = "(f.feature_head IS NULL OR f.sources_json IS NULL OR f.provenance_csv IS NULL OR f.csv_line IS NULL)"


def record_failed_run(conn: sqlite3.Connection, *, source: str, scope: str, message: str,
                      now: str | None = None) -> None:
    """Note a failed run (its data transaction, if any, is already rolled back).

    A source whose latest run failed is *stale* (see directory.health): its previous data keeps
    serving and `atvira status` says since when. Never masks the real error: when the store
    itself is what failed (read-only, full disk), nothing can be noted and nothing is raised.
    """
    now = now or utcnow()
    try:
        with transaction(conn):
            conn.execute(
                "INSERT INTO ingest_runs(source, scope, started_at, finished_at, status, message)"
                " VALUES (?, ?, ?, ?, 'failed', ?)",
                (source, scope, now, utcnow(), message[:2000]),
            )
    except Exception:  # the store itself may be what failed (read-only, full disk)
        pass


# Records are applied in batches of this many: one look-up of their stored hashes, unchanged ones
# skipped before any per-row work, new ones written by one executemany per table.
BATCH = 2000
_ASK = object()  # _upsert's `found` when the matcher has not been asked yet


def _upsert_batch(
    conn: sqlite3.Connection,
    recs: list[Facility],
    *,
    run_id: int,
    scope: str,
    now: str,
    matcher: Matcher | None,
    report: IngestReport,
    locator: Locator | None = None,
) -> None:
    """Apply a batch of valid records (one source), with the same result as _upsert on each in order.

    Unchanged records (same content hash, not removed) cost their hash and a dict look-up; a new
    record the matcher links to nothing becomes a new facility written with the others in one
    executemany; every other record (changed, re-added, merged into another source's place)
    goes through _upsert. New facilities are written before any later record is handled, so the
    store sees the records in their order (rids, change-log order and matching are unchanged).
    """
    if not recs:
        return
    stored = {r["source_id"]: r for r in conn.execute(
        "SELECT source_id, facility_id, content_hash, removed_at, scope, raw_hash FROM source_records"
        " WHERE source = ? AND source_id IN (SELECT value FROM json_each(?))",
        (recs[0].source, json.dumps([r.source_id for r in recs])))}
    fresh: list[tuple[Facility, str, str, tuple[str, str, str]]] = []
    # The matcher's candidates for all the batch's new records at once, when it can (conflate.Matcher).
    ask = None
    if matcher is not None and hasattr(matcher, "batch"):
        unknown = [rec for rec in recs if rec.source_id not in stored]
        ask = matcher.batch(conn, unknown) if unknown else None
    rescoped: list[str] = []
    placed: list[tuple] = []  # unchanged, position-less records whose mapping states a municipality
    raw_kept: list[tuple[str, str, str]] = []  # unchanged records whose raw hash is new (see Raw)
    for rec in recs:
        old = stored.get(rec.source_id)
        # A record not stored yet is most likely a new facility: its JSON columns come with its
        # content text (Facility.content_json_parts, each encoded once); a stored one is most
        # likely unchanged, and the one-call content_json is ~3 us cheaper when nothing follows.
        columns = None
        if old is None:
            data, *columns = rec.content_json_parts()
        else:
            data = rec.content_json()
        rec_hash = rec.content_hash(data)
        if old is not None and old["content_hash"] == rec_hash and old["removed_at"] is None:
            report.unchanged += 1
            if old["scope"] != scope:  # now covered by another scope (a file renamed, an area re-cut)
                rescoped.append(rec.source_id)
            if rec.lon is None and rec.municipality_code is not None:
                placed.append((rec.municipality_code, rec.eldership_code, old["facility_id"], rec.municipality_code))
            if rec.raw_hash is not None and old["raw_hash"] != rec.raw_hash:
                # Mapped again (new mapping rules, or the first run since raw hashes were kept) to
                # the same content: keep the raw hash, so the next run skips it unmapped.
                raw_kept.append((rec.raw_hash, rec.source, rec.source_id))
            continue
        found = _ASK
        if old is None:
            found = ask(rec) if ask is not None else matcher(conn, rec) if matcher else None
            if found is None:
                fresh.append((rec, data, rec_hash, columns))
                continue
        _insert_new(conn, fresh, run_id=run_id, scope=scope, now=now, report=report)
        fresh.clear()
        linked = _upsert(conn, rec, run_id=run_id, scope=scope, now=now, matcher=matcher, report=report,
                         locator=locator, found=found)
        if ask is not None:
            ask.took(linked)  # it now holds a live record of this source: no longer a candidate
    _insert_new(conn, fresh, run_id=run_id, scope=scope, now=now, report=report)
    conn.executemany(_RESCOPE_SQL,
                     [(scope, recs[0].source, sid) for sid in rescoped])
    conn.executemany("UPDATE source_records SET raw_hash = ? WHERE source = ? AND source_id = ?", raw_kept)
    # A stated municipality is placement, not content (not in the hash): see _upsert.
    if conn.executemany("UPDATE facilities SET municipality_code = ?, eldership_code = ?"
                        " WHERE id = ? AND lon IS NULL AND municipality_code IS NOT ?", placed).rowcount > 0:
        # The staleness triggers emptied the re-placed rows' ready text (the CSV line names the
        # areas) and no change is logged for them, so _refresh_changed would not make it again.
        refresh_ready_where(conn, f"f.id IN (SELECT value FROM json_each(?)) AND {_NOT_READY}",
                            (json.dumps([facility_id for _m, _e, facility_id, _same in placed]),))


# A flush of at least this many new facilities is inserted without the per-row index triggers
# (store.bulk_insert); a smaller one (a few new records between matched ones) keeps them.
BULK_MIN = 64


def _insert_new(conn: sqlite3.Connection, fresh: list[tuple[Facility, str, str, tuple[str, str, str]]], *, run_id: int, scope: str,
                now: str, report: IngestReport) -> None:
    """New facilities from records no stored facility matches: the rows _upsert would write, in
    one executemany per table, and (a large batch) their FTS5, R*Tree and ready text set-wise."""
    if not fresh:
        return
    rows = []
    wanted = [make_facility_id(rec.source, rec.source_id) for rec, _data, _hash, _columns in fresh]
    taken = {r[0] for r in conn.execute("SELECT id FROM facilities WHERE id IN (SELECT value FROM json_each(?))",
                                        (json.dumps(wanted),))}
    for (rec, data, rec_hash, columns), facility_id in zip(fresh, wanted):
        if facility_id in taken:  # two source ids that slug alike: unique by construction (see _upsert)
            facility_id = suffixed_facility_id(rec.source, rec.source_id)
            report.id_collisions.append((rec.source_id, facility_id))
        taken.add(facility_id)
        rows.append(_new_row(rec, facility_id, now, rec_hash, data, columns))
    if len(fresh) >= BULK_MIN:
        _write_new_bulk(conn, rows, run_id=run_id, scope=scope, now=now)
        report.ready_logged += len(rows)
    else:
        _write_new(conn, [row[:_N_NEW] for row in rows],
                   [(source, source_id, fid, scope, licence, fetched_at, rec_hash, data, raw_hash)
                    for fid, *_, source, source_id, fetched_at, _at, licence, rec_hash, data, raw_hash, _new in rows],
                   [(run_id, now, fid, source, source_id, "added", None, new)
                    for fid, *_, source, source_id, _fetched, _at, _licence, _hash, _data, _raw, new in rows])
    report.added += len(fresh)


# The facility columns a new facility's row sets; staged (sync_new) with what its source
# record (licence, content hash, data, raw hash) and its change-log row (`new`) add.
_NEW_COLUMNS = ("id", *CONTENT_FIELDS, "source", "source_id", "fetched_at", "updated_at")
_N_NEW = len(_NEW_COLUMNS)
_STAGED_COLUMNS = (*_NEW_COLUMNS, "record_licence", "content_hash", "data", "raw_hash", "log_new")


def _write_new_bulk(conn: sqlite3.Connection, rows: list[tuple], *, run_id: int, scope: str, now: str) -> None:
    """_write_new for a large batch: the rows (_STAGED_COLUMNS) are staged in a temp table by one
    executemany; the facilities are inserted from it with their ready text made in the same
    statement (ready.insert_ready: no second write of each row), then their source records and
    log rows set-wise, in the staged order, and indexed set-wise (store.bulk_insert).

    Each staged facility is new (its id is held by no facility, so by no source record) and its
    one source record is the one staged with it, naming its own source, source_id, licence (the
    record's; the row's is the same text, `or ""` only where the record's NOT NULL fails anyway)
    and fetched_at: insert_ready(own_record=True) makes its sources text without a probe, so the
    records come after their facilities (no deferred foreign key)."""
    staged = ", ".join(_STAGED_COLUMNS)
    with bulk_insert(conn) as before:
        # One staging table for the run's batches, emptied after each (apply_records drops it at
        # the end of the run; a rollback takes it back with everything else): dropping it after
        # each batch walked and freed its pages, 0.3-0.5 s per 100k (DELETE's truncation does not).
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS sync_new AS SELECT *, NULL AS record_licence,"
                     " NULL AS content_hash, NULL AS data, NULL AS raw_hash, NULL AS log_new FROM facilities WHERE 0")
        try:
            conn.executemany(f"INSERT INTO temp.sync_new({staged}) VALUES ({', '.join('?' * len(_STAGED_COLUMNS))})",
                             rows)
            # Emptied after each batch, the table numbers its rows 1..n again (SQLite: an empty
            # table's first rowid is 1): the facilities get their rids from that, unsorted.
            numbered = conn.execute("SELECT max(rowid) = count(*) FROM temp.sync_new").fetchone()[0] == 1
            insert_ready(conn, "temp.sync_new", _NEW_COLUMNS, own_record=True, rid_base=before if numbered else None)
            conn.execute(
                "INSERT INTO source_records(source, source_id, facility_id, scope, licence, fetched_at, content_hash,"
                " data, raw_hash) SELECT source, source_id, id, ?, record_licence, fetched_at, content_hash, data,"
                " raw_hash FROM temp.sync_new ORDER BY rowid", (scope,))
            conn.execute(
                "INSERT INTO changes(run_id, at, facility_id, source, source_id, kind, old, new)"
                " SELECT ?, ?, id, source, source_id, 'added', NULL, log_new FROM temp.sync_new ORDER BY rowid",
                (run_id, now))
        finally:
            if conn.in_transaction:  # after a failed statement SQLite may have rolled back already
                conn.execute("DELETE FROM temp.sync_new")


def _write_new(conn: sqlite3.Connection, facilities: list[tuple], records: list[tuple], log: list[tuple]) -> None:
    conn.executemany(
        f"INSERT INTO facilities(id, {', '.join(CONTENT_FIELDS)}, source, source_id, fetched_at, updated_at)"
        f" VALUES (?, {', '.join('?' * len(CONTENT_FIELDS))}, ?, ?, ?, ?)", facilities)
    conn.executemany(
        "INSERT INTO source_records(source, source_id, facility_id, scope, licence, fetched_at, content_hash, data,"
        " raw_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", records)
    conn.executemany(
        "INSERT INTO changes(run_id, at, facility_id, source, source_id, kind, old, new) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        log)


def _new_row(rec: Facility, facility_id: str, now: str, rec_hash: str, data: str,
             columns: Sequence[str] | None = None) -> tuple:
    """A new facility's staged row (_STAGED_COLUMNS): its facilities row (_encode(...) of a valid
    record, by the one canonical encoder), then what its source record and its change-log row add.
    `columns`: the categories, features and extra texts Facility.content_json_parts made already.

    The log's `new` is json.dumps(_decode(values), ensure_ascii=False, default=str), as _upsert
    writes it, joined from the texts already made (the JSON columns are canonical already, and
    categories are known ASCII slugs after validate, so ensure_ascii makes no difference there):
    one f-string, each scalar by _log_value (15 calls, a join and three copies of the JSON
    columns a record before)."""
    categories, features, extra = columns or rec.content_json_parts()[1:]
    name, sector, status, licence = rec.name or "", rec.sector or "unknown", rec.status or "active", rec.licence or ""
    lon, lat, address, hours, verified = rec.lon, rec.lat, rec.address, rec.opening_hours, rec.last_verified
    municipality, eldership, operator = rec.municipality_code, rec.eldership_code, rec.operator
    v = _log_value
    new = (f'{{"name": {v(name)}, "categories": {categories}, "lon": {v(lon)}, "lat": {v(lat)},'
           f' "address": {v(address)}, "municipality_code": {v(municipality)}, "eldership_code": {v(eldership)},'
           f' "operator": {v(operator)}, "sector": {v(sector)}, "features": {features},'
           f' "opening_hours": {v(hours)}, "status": {v(status)}, "last_verified": {v(verified)},'
           f' "licence": {v(licence)}, "extra": {extra}}}')
    return (facility_id, name, categories, lon, lat, address, municipality, eldership, operator, sector, features,
            hours, status, verified, licence, extra, rec.source, rec.source_id, rec.fetched_at, now, rec.licence,
            rec_hash, data, rec.raw_hash, new)


# What _log writes (json.dumps(..., ensure_ascii=False, default=str)), made once.
_LOG_JSON = json.JSONEncoder(ensure_ascii=False, default=str).encode
# One value as _LOG_JSON writes it inside the log's object (the usual kinds without a call into it).
_log_value = functools.partial(scalar_json, encode=_LOG_JSON)


def _upsert(
    conn: sqlite3.Connection,
    rec: Facility,
    *,
    run_id: int,
    scope: str,
    now: str,
    matcher: Matcher | None,
    report: IngestReport,
    locator: Locator | None = None,
    found: object = _ASK,
) -> str:
    """Apply one record; the id of the facility it is linked to."""
    data = rec.content_json()
    rec_hash = rec.content_hash(data)
    existing = conn.execute(
        "SELECT facility_id, content_hash, removed_at FROM source_records WHERE source = ? AND source_id = ?",
        (rec.source, rec.source_id),
    ).fetchone()
    if existing is not None and existing["content_hash"] == rec_hash and existing["removed_at"] is None:
        report.unchanged += 1
        # The record may now be covered by another scope (a file renamed, an area re-cut).
        conn.execute(
            "UPDATE source_records SET scope = ? WHERE source = ? AND source_id = ? AND scope != ?",
            (scope, rec.source, rec.source_id, scope),
        )
        if rec.raw_hash is not None:  # mapped again to the same content: see _upsert_batch
            conn.execute("UPDATE source_records SET raw_hash = ? WHERE source = ? AND source_id = ?"
                         " AND raw_hash IS NOT ?", (rec.raw_hash, rec.source, rec.source_id, rec.raw_hash))
        if rec.lon is None and rec.municipality_code is not None:
            # A stated municipality is placement, not content (not in the hash): a mapping that
            # starts stating one places the unchanged, position-less facility too.
            conn.execute(
                "UPDATE facilities SET municipality_code = ?, eldership_code = ?"
                " WHERE id = ? AND lon IS NULL AND municipality_code IS NOT ?",
                (rec.municipality_code, rec.eldership_code, existing["facility_id"], rec.municipality_code),
            )
        return existing["facility_id"]
    values = _row_values(rec)
    if existing is None:
        if found is _ASK:
            found = matcher(conn, rec) if matcher else None
        facility_id = getattr(found, "facility_id", found)
        reason = getattr(found, "reason", None) if found is not None else None
        if facility_id is None:
            facility_id = make_facility_id(rec.source, rec.source_id)
            if conn.execute("SELECT 1 FROM facilities WHERE id = ?", (facility_id,)).fetchone():
                facility_id = suffixed_facility_id(rec.source, rec.source_id)  # unique by construction
                report.id_collisions.append((rec.source_id, facility_id))
            conn.execute(
                f"INSERT INTO facilities(id, {', '.join(values)}, source, source_id, fetched_at, updated_at)"
                f" VALUES (?, {', '.join('?' * len(values))}, ?, ?, ?, ?)",
                (facility_id, *values.values(), rec.source, rec.source_id, rec.fetched_at, now),
            )
        match = None
        if found is not None:
            match = json.dumps({**(reason or {}), "at": now}, sort_keys=True, ensure_ascii=False, default=str)
        conn.execute(
            "INSERT INTO source_records(source, source_id, facility_id, scope, licence, fetched_at, content_hash, data, match,"
            " raw_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.source, rec.source_id, facility_id, scope, rec.licence, rec.fetched_at, rec_hash, data, match,
             rec.raw_hash),
        )
        if found is None:
            _log(conn, run_id, now, facility_id, rec, "added", None, _decode(values))
        else:
            # A further source for a known place: the facility is updated, not new.
            before, after = _refresh(conn, facility_id, now=now, rec=rec, locator=locator)
            after["sources"] = f"+{rec.source}:{rec.source_id}"
            _log(conn, run_id, now, facility_id, rec, "updated", before, after)
            report.merged += 1
        report.added += 1
        return facility_id
    facility_id = existing["facility_id"]
    conn.execute(
        "UPDATE source_records SET scope = ?, licence = ?, fetched_at = ?, content_hash = ?, data = ?, removed_at = NULL,"
        " raw_hash = ? WHERE source = ? AND source_id = ?",
        (scope, rec.licence, rec.fetched_at, rec_hash, data, rec.raw_hash, rec.source, rec.source_id),
    )
    before, after = _refresh(conn, facility_id, now=now, rec=rec, locator=locator)
    kind = "added" if existing["removed_at"] is not None else "updated"
    _log(conn, run_id, now, facility_id, rec, kind, before, after)
    if kind == "added":
        report.added += 1
    else:
        report.updated += 1
    return facility_id


def _refresh(
    conn: sqlite3.Connection,
    facility_id: str,
    *,
    now: str,
    rec: Facility | None = None,
    locator: Locator | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Recompute a facility's fields from all its live source records (directory.conflate.merge),
    store the conflicts between them, and return the (before, after) diff of its fields."""
    old_row = conn.execute("SELECT * FROM facilities WHERE id = ?", (facility_id,)).fetchone()
    old = {k: old_row[k] for k in CONTENT_FIELDS}
    records = [
        json.loads(r["data"])
        for r in conn.execute(
            "SELECT data FROM source_records WHERE facility_id = ? AND removed_at IS NULL ORDER BY rowid",
            (facility_id,),
        )
    ]
    if not records:
        return {}, {}
    merged, conflicts = merge(records)
    position_from = merged.pop("_position_from")
    if merged["lon"] is None and rec is not None and rec.lon is None and rec.municipality_code is not None:
        # No position anywhere: the municipality the source states (a mapping's `municipality`).
        merged["municipality_code"], merged["eldership_code"] = rec.municipality_code, rec.eldership_code
    elif (merged["lon"], merged["lat"]) == (old_row["lon"], old_row["lat"]):
        merged["municipality_code"], merged["eldership_code"] = old_row["municipality_code"], old_row["eldership_code"]
    elif rec is not None and position_from == f"{rec.source}:{rec.source_id}":
        merged["municipality_code"], merged["eldership_code"] = rec.municipality_code, rec.eldership_code
    elif merged["lon"] is not None and locator is not None and not locator.is_empty:
        merged["municipality_code"], merged["eldership_code"] = locator.locate(merged["lon"], merged["lat"])
    values = _encode(merged)
    assignments = ", ".join(f"{k} = ?" for k in values)
    fetched = rec.fetched_at if rec is not None else old_row["fetched_at"]
    conn.execute(
        f"UPDATE facilities SET {assignments}, conflicts = ?, fetched_at = ?, updated_at = ? WHERE id = ?",
        (*values.values(), json.dumps(conflicts, ensure_ascii=False, default=str), fetched, now, facility_id),
    )
    return _diff(_decode(old), _decode(values))


def _sweep(
    conn: sqlite3.Connection,
    *,
    source: str,
    scope: str,
    seen: set[str],
    run_id: int,
    now: str,
    report: IngestReport,
    locator: Locator | None = None,
) -> None:
    """Mark removed every record of this source and scope that the run did not see."""
    # Streamed, keeping only the records not seen (a run of a million holds no second copy of them);
    # plain tuples: every record of the scope passes here, on an unchanged re-run too.
    look = conn.cursor()
    look.row_factory = None
    gone = [
        {"source_id": sid, "facility_id": fid}
        for sid, fid in look.execute(
            "SELECT source_id, facility_id FROM source_records WHERE source = ? AND scope = ? AND removed_at IS NULL",
            (source, scope),
        )
        if sid not in seen
    ]
    for r in gone:
        conn.execute(
            "UPDATE source_records SET removed_at = ? WHERE source = ? AND source_id = ?",
            (now, source, r["source_id"]),
        )
        still_described = conn.execute(
            "SELECT 1 FROM source_records WHERE facility_id = ? AND removed_at IS NULL LIMIT 1",
            (r["facility_id"],),
        ).fetchone()
        old_status = conn.execute("SELECT status FROM facilities WHERE id = ?", (r["facility_id"],)).fetchone()[0]
        fac = Facility(source=source, source_id=r["source_id"], name="", categories=[], lon=None, lat=None, licence="")
        if not still_described:
            conn.execute(
                "UPDATE facilities SET status = 'removed', updated_at = ? WHERE id = ?", (now, r["facility_id"])
            )
            _log(conn, run_id, now, r["facility_id"], fac, "removed", {"status": old_status}, {"status": "removed"})
        else:
            # Another source still describes the place: it stays, without this source's values.
            before, after = _refresh(conn, r["facility_id"], now=now, locator=locator)
            after["sources"] = f"-{source}:{r['source_id']}"
            _log(conn, run_id, now, r["facility_id"], fac, "updated", before, after)
        report.removed += 1


def _log(
    conn: sqlite3.Connection,
    run_id: int,
    now: str,
    facility_id: str,
    rec: Facility,
    kind: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> None:
    conn.execute(
        "INSERT INTO changes(run_id, at, facility_id, source, source_id, kind, old, new) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            now,
            facility_id,
            rec.source,
            rec.source_id,
            kind,
            None if old is None else json.dumps(old, ensure_ascii=False, default=str),
            None if new is None else json.dumps(new, ensure_ascii=False, default=str),
        ),
    )


def print_progress(n: int) -> None:
    """Default progress reporter for long runs: one line per 10,000 records on stderr."""
    print(f"  ... {n:,} records", file=sys.stderr, flush=True)
