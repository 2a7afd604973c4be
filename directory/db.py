"""Read-only store connections for the web app, one per thread, reused across requests.

Opening SQLite, setting mmap and checking the schema costs more than a small bbox query, so
each serving thread keeps its handle. WAL mode means a held handle still sees every commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from .store import connect


class ThreadConnections:
    """One connection per thread from `opener`, made on first use (after gunicorn forks) and kept."""

    def __init__(self, opener: Callable[[], sqlite3.Connection]) -> None:
        self._opener = opener
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._opener()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class ReaderPool(ThreadConnections):
    """The published store, read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(lambda: connect(path, readonly=True))
