"""Dated snapshots of the store: a consistent copy after every ingest run that changed something.

A snapshot is a whole-store file written with VACUUM INTO (one transaction's view: never
half-written, even while readers read) into `settings.snapshots_dir`, plus a row in the
`snapshots` table recording the last change (`changes.seq`) it contains. That seq is what makes
"what changed between two snapshots" a range query on the append-only change log. Old snapshot
files are pruned beyond `settings.snapshot_retention`; their rows stay (marked pruned), so the
change log between any two of them can still be listed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from . import clock
from .config import Settings
from .errors import NotFound, StoreError
from .exports import copy_store, remove_partial
from .store import counts, transaction


def _now() -> datetime:
    return clock.now()


def last_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]


PART_PREFIX = "building-"  # building-<pid>-<token>.sqlite.part: the writer's pid says whether it is alive


def create_snapshot(conn: sqlite3.Connection, settings: Settings, *, run_id: int | None = None,
                    now: datetime | None = None, alongside: Callable[[], None] | None = None) -> dict[str, Any]:
    """Copy the store to a dated file, record it, prune beyond the retention; returns its row.

    The copy is written to a part file first; its row is inserted, the file renamed to its final
    name (the row's id is in it) and the row given its path in one write transaction. So a kill
    at any point leaves either no row, or a row whose file exists; what a kill leaves behind (a
    part file and its journal, a renamed file whose row never committed) is removed by
    `repair_snapshots`, which the next run, `atvira status --repair` and the server's start call.

    `alongside`: other work on `conn` (refresh_derived's map grid and audit) run in this thread
    while the copy is written (see `_copy_alongside`); its exception, if any, passes through
    unchanged and no snapshot is recorded. It must not write the published tables.

    `conn` must be a writer with no transaction open (the copy is its own read transaction).
    """
    now = now or _now()
    directory = settings.snapshot_dir()
    seq = last_seq(conn)
    stamp = now.isoformat().replace("+00:00", "Z")
    part = directory / f"{PART_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.sqlite.part"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        repair_snapshots(conn, settings)
    except (OSError, sqlite3.Error) as exc:  # e.g. a full disk: the data itself is safe
        raise _not_written(exc, part) from exc
    _copy_alongside(conn, part, alongside)
    path = None
    try:
        with transaction(conn):
            snapshot_id = conn.execute(
                "INSERT INTO snapshots(created_at, run_id, last_seq, counts) VALUES (?, ?, ?, ?)",
                (stamp, run_id, seq, json.dumps(counts(conn))),
            ).lastrowid
            name = f"atvira-{now.strftime('%Y%m%dT%H%M%SZ')}-{snapshot_id}.sqlite"
            path = directory / name
            os.replace(part, path)
            conn.execute("UPDATE snapshots SET path = ?, size = ? WHERE id = ?", (name, path.stat().st_size, snapshot_id))
    except BaseException:
        remove_partial(part)
        if path is not None:
            path.unlink(missing_ok=True)  # renamed, but its row rolled back
        raise
    prune_snapshots(conn, settings)
    return get_snapshot(conn, snapshot_id)


def _not_written(exc: BaseException, part: Path) -> StoreError:
    return StoreError(f"the store is unchanged by this, but its snapshot could not be written: {exc}",
                      where=str(part))


def _copy_alongside(conn: sqlite3.Connection, part: Path, alongside: Callable[[], None] | None) -> None:
    """Write the copy to `part` (removed again on any failure, which becomes a StoreError) and
    run `alongside()` meanwhile.

    The copy reads only the published tables, which `alongside` does not write, so it need not
    wait for it: on a store in WAL mode it is written by another thread on its own connection
    (a reader never blocks the writer there, nor the writer it), and the two overlap on two
    cores (100k first ingest: the copy's ~1 s beside the grid and audit's ~2 s). The copy's read
    transaction starts at once, before `alongside` commits anything. Otherwise (no file, e.g.
    in memory, or a rollback journal, where a reader would hold the writer's commit back) the
    two run one after the other on `conn`."""
    file = conn.execute("SELECT file FROM pragma_database_list WHERE name = 'main'").fetchone()[0]
    together = (alongside is not None and bool(file)
                and conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal")
    if not together:
        if alongside is not None:
            alongside()
        try:
            copy_store(conn, part, part=part.with_name(part.name + "~"))
        except (OSError, sqlite3.Error) as exc:  # e.g. a full disk: the data itself is safe
            remove_partial(part)
            raise _not_written(exc, part) from exc
        except BaseException:
            remove_partial(part)
            raise
        return
    copier = _Copier(file, part)
    copier.start()
    finished = False
    try:
        alongside()
        finished = True
    finally:
        if not finished:
            copier.cancel()
        copier.join()
        if not (finished and copier.done):
            remove_partial(part)
    if isinstance(copier.error, (OSError, sqlite3.Error)):
        raise _not_written(copier.error, part) from copier.error
    if copier.error is not None:
        raise copier.error


class _Copier(threading.Thread):
    """copy_store of the store file `file` into `part`, on its own connection in this thread."""

    def __init__(self, file: str, part: Path) -> None:
        super().__init__(name="atvira-snapshot-copy", daemon=True)
        self.file, self.part = file, part
        self.error: BaseException | None = None
        self.done = False
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._cancelled = False

    def run(self) -> None:
        try:
            # a plain connection that only reads the store (the copy attaches and writes its own
            # file); no memory map: a second map of the same file would count again in the RSS
            reader = sqlite3.connect(self.file, isolation_level=None)
            try:
                reader.execute("PRAGMA busy_timeout = 5000")
                reader.execute("PRAGMA mmap_size = 0")
                with self._lock:
                    self._conn = reader
                    if self._cancelled:
                        return
                copy_store(reader, self.part, part=self.part.with_name(self.part.name + "~"))
                self.done = True
            finally:
                with self._lock:
                    self._conn = None
                reader.close()
        except BaseException as exc:  # handed to the caller's thread by join
            self.error = exc

    def cancel(self) -> None:
        """Stop the copy soon (its current statement is interrupted); the caller removes the part."""
        with self._lock:
            self._cancelled = True
            if self._conn is not None:
                self._conn.interrupt()


_SNAPSHOT_FILE = re.compile(r"atvira-[0-9]{8}T[0-9]{6}Z-([0-9]+)\.sqlite")
_PART_FILE = re.compile(re.escape(PART_PREFIX) + r"([0-9]+)-[0-9a-f]+\.sqlite\.part.*")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def repair_snapshots(conn: sqlite3.Connection, settings: Settings) -> list[str]:
    """Undo what a killed snapshot left: part files (and their journals) of writers no longer
    running, snapshot files no row records, rows never given a file (an older layout's half
    step), and rows whose file has gone (marked pruned). Returns what it did, one line each.

    Runs inside a write transaction, so a snapshot being committed by another writer is either
    fully visible (row and file) or not yet renamed (its part file's writer is alive)."""
    directory = settings.snapshot_dir()
    done: list[str] = []
    with transaction(conn):
        rows = {r["id"]: r for r in conn.execute("SELECT id, path, pruned_at FROM snapshots")}
        if directory.is_dir():
            for f in directory.iterdir():
                part = _PART_FILE.fullmatch(f.name)
                if part and not _alive(int(part.group(1))):
                    f.unlink(missing_ok=True)
                    done.append(f"removed the unfinished {f.name}")
                    continue
                whole = _SNAPSHOT_FILE.fullmatch(f.name)
                if whole and (int(whole.group(1)) not in rows or rows[int(whole.group(1))]["path"] != f.name):
                    f.unlink(missing_ok=True)
                    done.append(f"removed {f.name}: no snapshot row records it")
        for r in rows.values():
            if r["path"] is None and r["pruned_at"] is None:
                conn.execute("DELETE FROM snapshots WHERE id = ?", (r["id"],))
                done.append(f"removed snapshot row {r['id']}: its file was never written")
            elif r["path"] is not None and not (directory / r["path"]).is_file():
                conn.execute("UPDATE snapshots SET path = NULL, pruned_at = ? WHERE id = ?", (clock.stamp(), r["id"]))
                done.append(f"snapshot {r['id']}'s file {r['path']} is missing: marked pruned")
    return done


def snapshot_after_run(conn: sqlite3.Connection, *, run_id: int | None, changed: bool,
                       settings: Settings) -> dict[str, Any] | None:
    """The post-ingest hook: a snapshot when the run changed something, else nothing."""
    if not changed:
        return None
    return create_snapshot(conn, settings, run_id=run_id)


def prune_snapshots(conn: sqlite3.Connection, settings: Settings) -> list[int]:
    """Delete snapshot files beyond the newest `snapshot_retention` (0 keeps all); the rows stay."""
    keep = settings.snapshot_retention
    if keep <= 0:
        return []
    old = conn.execute(
        "SELECT id, path FROM snapshots WHERE path IS NOT NULL ORDER BY id DESC LIMIT -1 OFFSET ?", (keep,)
    ).fetchall()
    pruned = []
    for row in old:
        (settings.snapshot_dir() / row["path"]).unlink(missing_ok=True)
        with transaction(conn):
            conn.execute("UPDATE snapshots SET path = NULL, pruned_at = ? WHERE id = ?",
                         (_now().isoformat().replace("+00:00", "Z"), row["id"]))
        pruned.append(row["id"])
    return pruned


def _row(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"], "created_at": r["created_at"], "run_id": r["run_id"], "last_seq": r["last_seq"],
        "file": r["path"], "size": r["size"], "counts": json.loads(r["counts"]), "pruned_at": r["pruned_at"],
    }


def list_snapshots(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every snapshot, newest first (pruned ones included, with `file` null)."""
    return [_row(r) for r in conn.execute("SELECT * FROM snapshots ORDER BY id DESC")]


def get_snapshot(conn: sqlite3.Connection, snapshot_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
    if row is None:
        raise NotFound(f"no snapshot {snapshot_id}", where="snapshot")
    return _row(row)


def snapshot_path(conn: sqlite3.Connection, settings: Settings, snapshot_id: int) -> Path:
    """The file of a snapshot that is still kept (NotFound once pruned)."""
    snap = get_snapshot(conn, snapshot_id)
    if snap["file"] is None:
        raise NotFound(f"snapshot {snapshot_id} was pruned (retention keeps {settings.snapshot_retention})",
                       where="snapshot")
    path = settings.snapshot_dir() / snap["file"]
    if not path.is_file():
        raise NotFound(f"snapshot {snapshot_id}'s file is missing from the snapshots directory", where="snapshot")
    return path


def current_snapshot_path(conn: sqlite3.Connection, settings: Settings) -> Path | None:
    """The newest kept snapshot's file if it holds every change the store has (else None)."""
    row = conn.execute("SELECT path, last_seq FROM snapshots WHERE path IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
    if row is None or row["last_seq"] != last_seq(conn):
        return None
    path = settings.snapshot_dir() / row["path"]
    return path if path.is_file() else None
