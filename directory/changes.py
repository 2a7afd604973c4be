"""What changed between two points in time: the append-only change log, netted per facility.

`since` and `until` are each a snapshot id (a whole number) or an ISO date/date-time (UTC; a bare
date is midnight at its start). The range is (since, until]: changes after the `since` snapshot up
to and including the `until` snapshot; for dates, changes at or after `since` and before `until`.
Each facility appears once: several edits in the range fold into one entry whose fields go from
the first old value to the last new one, so the answer reads like a diff of the two snapshots.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime
from typing import Any

from .errors import BadRequest, NotFound

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?")


def _instant(value: str, *, param: str) -> str:
    """An ISO date or date-time as the store writes `changes.at` (UTC, seconds, 'Z')."""
    if not _DATE.fullmatch(value):
        raise BadRequest(f"expected a snapshot id or an ISO date (2026-01-31 or 2026-01-31T12:00:00Z), got {value[:40]!r}",
                         where=param)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise BadRequest(f"not a valid date: {value[:40]!r}", where=param) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def resolve_bound(conn: sqlite3.Connection, value: str | None, *, param: str) -> tuple[int | None, dict[str, Any] | None]:
    """A `since`/`until` value as the last change seq it includes (None: open end) and what it was."""
    if value is None or value.strip() == "":
        return None, None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,12}", value):  # ASCII only: "５" is no snapshot id
        row = conn.execute("SELECT id, created_at, last_seq FROM snapshots WHERE id = ?", (int(value),)).fetchone()
        if row is None:
            raise NotFound(f"no snapshot {value}; see /api/snapshots", where=param)
        return row["last_seq"], {"snapshot": row["id"], "created_at": row["created_at"], "seq": row["last_seq"]}
    at = _instant(value, param=param)
    seq = conn.execute("SELECT coalesce(max(seq), 0) FROM changes WHERE at < ?", (at,)).fetchone()[0]
    return seq, {"date": at, "seq": seq}


def _fold(rows: list[sqlite3.Row]) -> dict[str, Any] | None:
    """One facility's changes in the range as a single net entry (None when they cancel out)."""
    first, last = rows[0], rows[-1]
    created = first["kind"] == "added" and first["old"] is None
    if created and last["kind"] == "removed":
        return None  # appeared and disappeared between the two points: nothing to report
    # A record that re-appears after a removal is "added" too, with its fields' old → new.
    kind = "removed" if last["kind"] == "removed" else ("added" if first["kind"] == "added" else "updated")
    fields: dict[str, dict[str, Any]] = {}
    for r in rows:
        old = json.loads(r["old"]) if r["old"] else {}
        new = json.loads(r["new"]) if r["new"] else {}
        for key in dict.fromkeys([*old, *new]):
            entry = fields.setdefault(key, {"old": None if created else old.get(key)})
            entry["new"] = new.get(key)
    if not created:
        fields = {k: v for k, v in fields.items() if v["old"] != v["new"]}
        if not fields and kind == "updated":
            return None
    return {
        "facility_id": first["facility_id"],
        "kind": kind,
        "source": last["source"],
        "source_id": last["source_id"],
        "at": last["at"],
        "seq": last["seq"],
        # who made the last change, as a role ("editor, Vilniaus m. sav."); None for a source's ingest
        "actor": last["actor"],
        "fields": fields,
    }


def list_changes(conn: sqlite3.Connection, *, since: str | None = None, until: str | None = None,
                 limit: int = 500, after: int | None = None) -> dict[str, Any]:
    """Added / changed (field by field) / removed facilities between `since` and `until`.

    Paged by facility, in the order each facility first changed in the range: `next_after` is the
    cursor for the next page (None at the end).
    """
    lo, since_info = resolve_bound(conn, since, param="since")
    hi, until_info = resolve_bound(conn, until, param="until")
    lo = lo or 0
    if hi is None:
        hi = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
    hi = max(hi, lo)  # `until` before `since`: an empty range, not an error
    # Keyset: walk the log from the cursor in seq order and keep each facility's first change in
    # the range (no change of it between `lo` and this one), stopping after limit + 1 of them, so
    # a page reads about a page of rows (grouping the whole range cost 60 ms a page at 80k).
    groups = conn.execute(
        "SELECT c.facility_id, c.seq AS first FROM changes c WHERE c.seq > ? AND c.seq <= ?"
        " AND NOT EXISTS (SELECT 1 FROM changes e WHERE e.facility_id = c.facility_id AND e.seq > ? AND e.seq < c.seq)"
        " ORDER BY c.seq LIMIT ?",
        (max(lo, after or 0), hi, lo, limit + 1),
    ).fetchall()
    more = len(groups) > limit
    groups = groups[:limit]
    entries = []
    for g in groups:
        rows = conn.execute(
            "SELECT c.*, r.actor FROM changes c LEFT JOIN ingest_runs r ON r.id = c.run_id"
            " WHERE c.facility_id = ? AND c.seq > ? AND c.seq <= ? ORDER BY c.seq",
            (g["facility_id"], lo, hi),
        ).fetchall()
        entry = _fold(rows)
        if entry is None:
            continue
        fac = conn.execute("SELECT name, status FROM facilities WHERE id = ?", (g["facility_id"],)).fetchone()
        entry["name"] = fac["name"] if fac else None
        entries.append(entry)
    return {
        "since": since_info,
        "until": until_info,
        "from_seq": lo,
        "to_seq": hi,
        "numberReturned": len(entries),
        "changes": entries,
        "next_after": groups[-1]["first"] if more and groups else None,
    }
