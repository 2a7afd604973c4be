"""Read-only store connections for the web app, one per thread, reused across requests.

Opening SQLite, setting mmap and checking the schema costs more than a small bbox query, so
each serving thread keeps its handle. WAL mode means a held handle still sees every commit.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .store import connect


class ReaderPool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
