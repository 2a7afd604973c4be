"""Source freshness: which sources' latest ingest failed, so their data is stale.

A failed run never touches the data (it is rolled back whole), so the previous data keeps
serving; what changes is that users and operators should be told it may be out of date.
Stale = the latest run of a (source, scope) has status 'failed'. `atvira status` prints this.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceState:
    source: str
    scope: str
    status: str                 # of the latest run: ok | failed | running
    last_run_at: str
    last_ok_at: str | None      # when the data now serving was last successfully refreshed
    message: str | None         # the latest failure's reason

    @property
    def stale(self) -> bool:
        return self.status == "failed"

    def describe(self) -> str:
        if not self.stale:
            return f"{self.source} [{self.scope}]: fresh, last ok {self.last_ok_at or self.last_run_at}"
        since = f"serving data from {self.last_ok_at}" if self.last_ok_at else "no successful run yet"
        return f"{self.source} [{self.scope}]: STALE ({since}); last run failed at {self.last_run_at}: {self.message or ''}"


def source_states(conn: sqlite3.Connection) -> list[SourceState]:
    """The latest run of every (source, scope), with its last successful run."""
    rows = conn.execute(
        """
        SELECT r.source, r.scope, r.status, coalesce(r.finished_at, r.started_at) AS at, r.message,
               (SELECT max(coalesce(o.finished_at, o.started_at)) FROM ingest_runs o
                 WHERE o.source = r.source AND o.scope = r.scope AND o.status = 'ok') AS last_ok
          FROM ingest_runs r
         WHERE r.id = (SELECT max(id) FROM ingest_runs x WHERE x.source = r.source AND x.scope = r.scope)
         ORDER BY r.source, r.scope
        """
    ).fetchall()
    return [SourceState(source=r[0], scope=r[1], status=r[2], last_run_at=r[3], last_ok_at=r[5], message=r[4])
            for r in rows]
