"""A checksum of what a store holds, to prove an operation changed nothing (or exactly what).

Covers every data table row by row. Ingest-run bookkeeping is reduced to (source, scope,
status) because its timestamps are wall-clock; callers that expect a failed run to be noted
compare with `runs=False` and check the runs separately.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

DATA_TABLES = ("facilities", "source_records", "changes", "areas", "meta")


def store_digest(db: Path | sqlite3.Connection, *, runs: bool = True) -> str:
    conn = sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True) if isinstance(db, (str, Path)) else db
    h = hashlib.sha256()
    try:
        for table in DATA_TABLES:
            h.update(f"#{table}\n".encode())
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):
                h.update(repr(tuple(row)).encode())
        if runs:
            h.update(b"#ingest_runs\n")
            for row in conn.execute("SELECT source, scope, status FROM ingest_runs ORDER BY id"):
                h.update(repr(tuple(row)).encode())
    finally:
        if isinstance(db, (str, Path)):
            conn.close()
    return h.hexdigest()
