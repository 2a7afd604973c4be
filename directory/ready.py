"""What the store keeps ready per facility, so answers are joined text instead of per-row work.

- `feature_head` / `feature_tail`: the map/list GeoJSON feature (features.MAP_PROPERTIES) as
  text, split around the time-dependent open_state value (search.query_page joins a page of them
  with each row's state from open_now);
- `sources_json`: the facility's source records as the export's `sources` array;
- `provenance_csv`: the CSV export's two provenance cells (sources, licences);
- `csv_line`: the facility's whole CSV export line (exports.csv_line_parts: quoting, formula
  guard, area names, provenance), so an export is the ready lines in id order. It carries the
  area names too: `refresh_area_names` rewrites it when an areas load renames an area.

Each is exactly what its SQL builder gives (features.feature_sql, features.SOURCES_SQL,
exports.PROVENANCE_CSV_SQL, exports.csv_line_parts); the builders remain the fallback where a row has no ready text.
`refresh_ready` is called by whatever changes facilities, inside its transaction: the sync
(apply_records, for every facility its run logged a change for) and the areas re-placement;
derived.refresh_derived rewrites every row when the SQL itself changed (READY_VERSION).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence

from .exports import CSV_LINE_HEAD, CSV_LINE_TAIL, OWN_PROVENANCE_CSV_SQL, PROVENANCE_CSV_SQL
from .features import OPEN_KEY, OPEN_MARKED, OWN_SOURCES_SQL, READY_FEATURE_SQL, SOURCES_SQL
from .store import get_meta, set_meta


def _braces(sql: str) -> str:
    """`sql` inside _SET_READY, which is str.format()ted later: its literal braces doubled."""
    return sql.replace("{", "{{").replace("}", "}}")


# `LIMIT -1` (no limit) keeps SQLite from flattening the subquery into the UPDATE: flattened,
# every use of x.j in SET re-ran the feature builder (4 builds per row) and the CSV line would
# re-run the provenance probe; as a subquery each is built once per row.
# The ready columns from the subquery `x` (j: the feature with the open-state marker, sources,
# provenance, the CSV line's two halves); one definition for the UPDATE and the bulk INSERT.
_HEAD = f"substr(x.j, 1, instr(x.j, '{OPEN_MARKED}') + {len(OPEN_KEY) - 1})"
_TAIL = f"substr(x.j, instr(x.j, '{OPEN_MARKED}') + {len(OPEN_MARKED)})"
_CSV_LINE = "x.line_head || x.provenance || x.line_tail"

_SET_READY = f"""UPDATE facilities SET
    feature_head = {_HEAD},
    feature_tail = {_TAIL},
    sources_json = x.sources,
    provenance_csv = x.provenance,
    csv_line = {_CSV_LINE}
FROM (SELECT f.rid AS frid, {READY_FEATURE_SQL} AS j, {SOURCES_SQL} AS sources,
             {PROVENANCE_CSV_SQL} AS provenance, {_braces(CSV_LINE_HEAD)} AS line_head,
             {_braces(CSV_LINE_TAIL)} AS line_tail
      FROM facilities f WHERE {{where}} LIMIT -1) AS x
WHERE facilities.rid = x.frid"""

# Which code wrote the ready text: a changed SQL makes refresh_derived rewrite every row.
READY_VERSION = hashlib.sha256(_SET_READY.encode()).hexdigest()[:16]
# The meta key holding what derived data was computed from (derived.refresh_derived's keys).
DERIVED_META = "derived"


def claim_empty_store(conn: sqlite3.Connection) -> None:
    """On a store that holds no facility yet, record that its ready text is this code's.

    Every row written from now on gets its ready text from this module (insert_ready, the
    sync's refresh), so the whole-store rewrite refresh_derived does for an unknown
    READY_VERSION would only write the same text again: 4-5 s per 100k facilities on a first
    ingest. Called inside the writer's transaction, so a failed run takes the mark back too."""
    keys = get_meta(conn, DERIVED_META) or {}
    if keys.get("ready") == READY_VERSION or conn.execute("SELECT 1 FROM facilities LIMIT 1").fetchone():
        return
    keys["ready"] = READY_VERSION
    set_meta(conn, DERIVED_META, keys)


def refresh_ready(conn: sqlite3.Connection, facility_ids: Iterable[str] | None = None, *, chunk: int = 5000) -> int:
    """Rewrite the ready text of these facilities (None: of every facility); rows written."""
    if facility_ids is None:
        return conn.execute(_SET_READY.format(where="1")).rowcount
    return _by(conn, "f.id", list(dict.fromkeys(facility_ids)), chunk)


def refresh_ready_rids(conn: sqlite3.Connection, rids: Iterable[int], *, chunk: int = 5000) -> int:
    """The same by internal row id (for writers that walk rids, e.g. re-placing areas)."""
    return _by(conn, "f.rid", list(rids), chunk)


def insert_ready(conn: sqlite3.Connection, staging: str, columns: Sequence[str], *, own_record: bool = False,
                 rid_base: int | None = None) -> int:
    """Insert the rows of `staging` (a table with facilities' columns, and maybe others it
    ignores) into facilities with their ready text made in the same statement, in the staging
    table's row order; rows inserted.

    Without `own_record`, the new rows' source records must already be stored (their `sources`
    are part of the text). Exactly what refresh_ready would write afterwards (_SET_READY's
    expressions), without writing each row twice.

    `own_record`: every staged row is a new facility whose only source record is the one its
    own columns name (source, source_id, licence, fetched_at, not removed), as the sync's bulk
    of new facilities is: its sources and provenance cells are made from its columns
    (OWN_SOURCES_SQL, exports.OWN_PROVENANCE_CSV_SQL: the text the probe of source_records gives for that one
    record) instead of two probes per row (~15% of the statement).

    `OFFSET 0` keeps the subquery `x` a subquery: SQLite may flatten one with a LIMIT into an
    outer query without one (and did), and flattened, each use of x.j, x.provenance re-ran its
    builder (the feature 5 times a row, the provenance probe twice): 26% of the statement's CPU.
    An OFFSET forbids the flattening (its rule 14); the outer ORDER BY then sorts the staged
    rows, which costs less than one of the builds it saves.

    `rid_base`: the staging table's rowids are 1..n (rows inserted one by one into an empty
    table) and the facilities' largest rid is `rid_base`: row k is given rid `rid_base + k`,
    the rid it would get inserted in the staged order, and nothing is sorted (the sort copied
    every ~3 KB row once more: about 4% of the statement)."""
    cols = ", ".join(columns)
    sources, provenance = (OWN_SOURCES_SQL, OWN_PROVENANCE_CSV_SQL) if own_record else (SOURCES_SQL, PROVENANCE_CSV_SQL)
    rid, rid_value, order, params = "", "", " ORDER BY x.staged_at", ()
    if rid_base is not None:
        rid, rid_value, order, params = "rid, ", "? + x.staged_at, ", "", (rid_base,)
    return conn.execute(
        f"INSERT INTO facilities({rid}{cols}, feature_head, feature_tail, sources_json, provenance_csv, csv_line)"
        f" SELECT {rid_value}{', '.join('x.' + c for c in columns)}, {_HEAD}, {_TAIL}, x.sources, x.provenance,"
        f" {_CSV_LINE}"
        f" FROM (SELECT {', '.join('f.' + c for c in columns)}, f.rowid AS staged_at, {READY_FEATURE_SQL} AS j,"
        f" {sources} AS sources,"
        f" {provenance} AS provenance, {CSV_LINE_HEAD} AS line_head, {CSV_LINE_TAIL} AS line_tail"
        f" FROM {staging} f LIMIT -1 OFFSET 0) AS x{order}", params).rowcount


def refresh_ready_where(conn: sqlite3.Connection, where: str, params: tuple = ()) -> int:
    """The same for the rows an SQL condition over `f` (facilities) picks, in one statement: the
    sync's batch (`f.rid > ?`) and its run's changed rows, without a list of ids in Python."""
    return conn.execute(_SET_READY.format(where=where), params).rowcount


def _by(conn: sqlite3.Connection, column: str, keys: list, chunk: int) -> int:
    done = 0
    for i in range(0, len(keys), chunk):
        done += conn.execute(_SET_READY.format(where=f"{column} IN (SELECT value FROM json_each(?))"),
                             (json.dumps(keys[i:i + chunk]),)).rowcount
    return done


def refresh_area_names(conn: sqlite3.Connection, before: dict[str, str]) -> int:
    """After the areas were replaced: rewrite the ready text of the facilities whose municipality
    or eldership name changed (`before`: code -> name as it was), since the CSV line carries the
    names. Facilities whose codes change are rewritten by whoever changes the codes."""
    after = dict(conn.execute("SELECT code, name FROM areas").fetchall())
    codes = [c for c in before.keys() | after.keys() if before.get(c) != after.get(c)]
    if not codes:
        return 0
    rids = [r[0] for r in conn.execute(
        "SELECT rid FROM facilities WHERE municipality_code IN (SELECT value FROM json_each(?1))"
        " UNION SELECT rid FROM facilities WHERE eldership_code IN (SELECT value FROM json_each(?1))",
        (json.dumps(codes),))]
    return refresh_ready_rids(conn, rids)
