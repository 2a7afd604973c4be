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
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from . import clock
from .config import Settings
from .errors import NotFound, StoreError
from .exports import copy_store
from .store import counts, transaction


def _now() -> datetime:
    return clock.now()


def last_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]


def create_snapshot(conn: sqlite3.Connection, settings: Settings, *, run_id: int | None = None,
                    now: datetime | None = None) -> dict[str, Any]:
    """Copy the store to a dated file, record it, prune beyond the retention; returns its row.

    `conn` must be a writer with no transaction open (VACUUM INTO refuses to run inside one).
    """
    now = now or _now()
    directory = settings.snapshot_dir()
    seq = last_seq(conn)
    stamp = now.isoformat().replace("+00:00", "Z")
    with transaction(conn):  # the row first: its id names the file, so two snapshots never collide
        snapshot_id = conn.execute(
            "INSERT INTO snapshots(created_at, run_id, last_seq, counts) VALUES (?, ?, ?, ?)",
            (stamp, run_id, seq, json.dumps(counts(conn))),
        ).lastrowid
    name = f"atvira-{now.strftime('%Y%m%dT%H%M%SZ')}-{snapshot_id}.sqlite"
    path = directory / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
        copy_store(conn, path)
    except BaseException as exc:
        with transaction(conn):
            conn.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))
        if isinstance(exc, (OSError, sqlite3.Error)):  # e.g. a full disk: the data itself is safe
            raise StoreError(f"the store is unchanged by this, but its snapshot could not be written: {exc}",
                             where=str(path)) from exc
        raise
    with transaction(conn):
        conn.execute("UPDATE snapshots SET path = ?, size = ? WHERE id = ?", (name, path.stat().st_size, snapshot_id))
    prune_snapshots(conn, settings)
    return get_snapshot(conn, snapshot_id)


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
