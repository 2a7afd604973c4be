"""Read-only store connections for the web app, one per thread, reused across requests.

Opening SQLite, setting mmap and checking the schema costs more than a small bbox query, so
each serving thread keeps its handle. WAL mode means a held handle still sees every commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from . import storememo
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


# A serving reader maps the whole file (SQLite clamps this to its compiled maximum, 2 GB in
# Debian's build): a map page reads ~500 facility rows scattered over a 1.3 GB store at 1M
# facilities, and each page outside the map is a read() into a 2 MB page cache instead (a 1M
# bbox page took 3.5 ms with the store's default 256 MB map, 1.9 ms mapped whole). The mapping is
# the OS page cache, shared by every worker; cache_size covers what lies beyond it.
READER_MMAP_SIZE = 1 << 40
READER_CACHE_KIB = 32 * 1024


def open_reader(path: Path) -> sqlite3.Connection:
    """A read-only serving connection (store.connect, then the reader's pragmas)."""
    conn = connect(path, readonly=True, factory=storememo.MemoConnection)
    conn.execute(f"PRAGMA mmap_size = {READER_MMAP_SIZE}")
    conn.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
    storememo.enable(conn)  # it never commits: the store's small facts can be kept (storememo)
    return conn


class ReaderPool(ThreadConnections):
    """The published store, read-only. `get` is called once per request (web.context.reader
    keeps it for the request): it drops the connection's kept facts when the store changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(lambda: open_reader(path))

    def get(self) -> sqlite3.Connection:
        conn = super().get()
        storememo.refresh(conn)
        return conn
