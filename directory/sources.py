"""What the store holds per source: licence, last fetch, counts, and whether it is stale.

"Stale" is derived from `ingest_runs`, not stored: a source whose most recent run failed is
stale (its data is the last good run's, possibly outdated). Read-only; `atvira sources` shows it.
"""

from __future__ import annotations

import sqlite3
from typing import Any


def list_sources(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """One entry per source that has records or runs, ordered by name."""
    out: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        "SELECT source, count(*) AS records, sum(removed_at IS NULL) AS live,"
        " count(DISTINCT CASE WHEN removed_at IS NULL THEN facility_id END) AS facilities,"
        " sum(removed_at IS NULL AND match IS NOT NULL) AS merged,"
        " max(fetched_at) AS last_fetch, group_concat(DISTINCT licence) AS licences"
        " FROM source_records GROUP BY source"
    ):
        out[r["source"]] = {
            "source": r["source"], "records": r["live"] or 0, "removed": r["records"] - (r["live"] or 0),
            "facilities": r["facilities"], "merged": r["merged"] or 0, "last_fetch": r["last_fetch"],
            "licences": sorted(set((r["licences"] or "").split(","))) if r["licences"] else [],
        }
    for r in conn.execute(
        "SELECT source, status, finished_at, started_at, message FROM ingest_runs"
        " WHERE id IN (SELECT max(id) FROM ingest_runs GROUP BY source)"
    ):
        entry = out.setdefault(r["source"], {
            "source": r["source"], "records": 0, "removed": 0, "facilities": 0, "merged": 0,
            "last_fetch": None, "licences": [],
        })
        entry["last_run"] = {"status": r["status"], "at": r["finished_at"] or r["started_at"], "message": r["message"]}
        entry["stale"] = r["status"] == "failed"
    for entry in out.values():
        entry.setdefault("last_run", None)
        entry.setdefault("stale", False)
    return [out[k] for k in sorted(out)]
