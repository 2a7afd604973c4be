"""The spatial store: one SQLite file with an R*Tree, an FTS5 index and an append-only change log.

Readers open the file read-only; one writer at a time writes inside a single transaction, so a
crash or a kill half-way through an ingest leaves the previous data intact and serving (WAL mode
lets readers keep reading the last committed state while a writer works).

Nothing above this module should need to know SQLite dialect details beyond the queries in
`search`; this is the seam where a PostGIS backend would go.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import StoreError

MMAP_SIZE = 256 * 1024 * 1024

# The map cell of a facility (search._cell_page): 0.01 degrees of longitude by 0.005 of latitude
# (about 640 x 560 m in Lithuania), numbered column * 65536 + row. Truncation toward zero of a
# monotonic double expression, so Python's int() over the same arithmetic gives a box's cells
# and every point inside the box lies in one of them. The index and the query must spell the
# expression alike (SQLite matches indexed expressions by their text); `{t}` is the table alias.
MAP_CELL_LON, MAP_CELL_LAT, MAP_CELL_ROWS = 100, 200, 65536
MAP_CELL_SQL = (f"CAST(({{t}}lon + 180.0) * {MAP_CELL_LON} AS INTEGER) * {MAP_CELL_ROWS}"
                f" + CAST(({{t}}lat + 90.0) * {MAP_CELL_LAT} AS INTEGER)")
# The map band of a facility (search._cell_page, search.map_bands): a strip 0.001 degrees of latitude high (about
# 110 m) around the globe. Its index is keyed (band, lon), so a box's rows are read as one lon
# range per band the box spans: only the top and bottom bands hold rows outside the box. As
# MAP_CELL_SQL, Python's int() over the same arithmetic gives a box's bands.
MAP_BAND_LAT = 1000
MAP_BAND_SQL = f"CAST(({{t}}lat + 90.0) * {MAP_BAND_LAT} AS INTEGER)"

# Each migration is applied once, in order; PRAGMA user_version records how far a file got.
# Never edit a published migration: append a new one.
MIGRATIONS: list[str] = [
    # 1: facilities, their source records, indexes, ingest runs, the change log, areas.
    """
    CREATE TABLE facilities (
        rid INTEGER PRIMARY KEY,            -- internal: R*Tree/FTS key and keyset paging cursor
        id TEXT NOT NULL UNIQUE,            -- public and stable: from the first source record
        name TEXT NOT NULL DEFAULT '',
        categories TEXT NOT NULL,           -- JSON array of category slugs
        lon REAL,
        lat REAL,
        address TEXT,
        municipality_code TEXT,
        eldership_code TEXT,
        operator TEXT,
        sector TEXT NOT NULL DEFAULT 'unknown',
        features TEXT NOT NULL DEFAULT '{}', -- JSON object feature -> yes|limited|no; absent = unknown
        opening_hours TEXT,
        status TEXT NOT NULL DEFAULT 'active',
        last_verified TEXT,
        source TEXT NOT NULL,
        source_id TEXT NOT NULL,
        licence TEXT NOT NULL,
        fetched_at TEXT,
        extra TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL
    );
    CREATE INDEX facilities_municipality ON facilities(municipality_code);
    CREATE INDEX facilities_eldership ON facilities(eldership_code);
    CREATE INDEX facilities_source ON facilities(source, source_id);

    -- One row per record a source published; several may point at one facility.
    CREATE TABLE source_records (
        source TEXT NOT NULL,
        source_id TEXT NOT NULL,
        facility_id TEXT NOT NULL REFERENCES facilities(id),
        scope TEXT NOT NULL,                -- the area/file a full ingest covered
        licence TEXT NOT NULL,
        fetched_at TEXT,
        content_hash TEXT NOT NULL,
        data TEXT NOT NULL,                 -- the record as the source gave it (JSON)
        removed_at TEXT,
        PRIMARY KEY (source, source_id)
    );
    CREATE INDEX source_records_facility ON source_records(facility_id);
    CREATE INDEX source_records_scope ON source_records(source, scope);

    CREATE VIRTUAL TABLE facilities_rtree USING rtree(rid, min_lon, max_lon, min_lat, max_lat);

    -- remove_diacritics 2 folds Lithuanian letters: "darzelis" matches "darželis".
    CREATE VIRTUAL TABLE facilities_fts USING fts5(
        name, address, operator,
        content='facilities', content_rowid='rid',
        tokenize="unicode61 remove_diacritics 2"
    );

    CREATE TRIGGER facilities_ai AFTER INSERT ON facilities BEGIN
        INSERT INTO facilities_fts(rowid, name, address, operator)
            VALUES (new.rid, new.name, new.address, new.operator);
        INSERT INTO facilities_rtree(rid, min_lon, max_lon, min_lat, max_lat)
            SELECT new.rid, new.lon, new.lon, new.lat, new.lat
            WHERE new.lon IS NOT NULL AND new.lat IS NOT NULL;
    END;
    CREATE TRIGGER facilities_ad AFTER DELETE ON facilities BEGIN
        INSERT INTO facilities_fts(facilities_fts, rowid, name, address, operator)
            VALUES ('delete', old.rid, old.name, old.address, old.operator);
        DELETE FROM facilities_rtree WHERE rid = old.rid;
    END;
    CREATE TRIGGER facilities_au_text AFTER UPDATE OF name, address, operator ON facilities BEGIN
        INSERT INTO facilities_fts(facilities_fts, rowid, name, address, operator)
            VALUES ('delete', old.rid, old.name, old.address, old.operator);
        INSERT INTO facilities_fts(rowid, name, address, operator)
            VALUES (new.rid, new.name, new.address, new.operator);
    END;
    CREATE TRIGGER facilities_au_pos AFTER UPDATE OF lon, lat ON facilities BEGIN
        DELETE FROM facilities_rtree WHERE rid = old.rid;
        INSERT INTO facilities_rtree(rid, min_lon, max_lon, min_lat, max_lat)
            SELECT new.rid, new.lon, new.lon, new.lat, new.lat
            WHERE new.lon IS NOT NULL AND new.lat IS NOT NULL;
    END;

    CREATE TABLE ingest_runs (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        scope TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,               -- running | ok | failed
        counts TEXT NOT NULL DEFAULT '{}',
        rejections TEXT NOT NULL DEFAULT '[]',
        message TEXT
    );

    -- Append-only: every ingest and every edit, so changes can be listed, diffed and published.
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES ingest_runs(id),
        at TEXT NOT NULL,
        facility_id TEXT NOT NULL,
        source TEXT NOT NULL,
        source_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('added', 'updated', 'removed')),
        old TEXT,                           -- JSON of the changed fields before
        new TEXT                            -- JSON of the changed fields after
    );
    CREATE INDEX changes_facility ON changes(facility_id);
    CREATE TRIGGER changes_no_update BEFORE UPDATE ON changes BEGIN
        SELECT RAISE(ABORT, 'the changes table is append-only');
    END;
    CREATE TRIGGER changes_no_delete BEFORE DELETE ON changes BEGIN
        SELECT RAISE(ABORT, 'the changes table is append-only');
    END;

    CREATE TABLE areas (
        code TEXT PRIMARY KEY,
        level TEXT NOT NULL CHECK (level IN ('municipality', 'eldership')),
        name TEXT NOT NULL,
        parent_code TEXT,
        county TEXT,
        population INTEGER,
        geometry TEXT NOT NULL,             -- GeoJSON geometry, WGS84
        min_lon REAL, min_lat REAL, max_lon REAL, max_lat REAL,
        extra TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX areas_level ON areas(level, parent_code);

    -- Small derived facts the request path needs without scanning (e.g. the data's extent).
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # (issue 3) conflation: why a source record was linked to a facility another source already
    # described (JSON: distance_m, name_score, matched_name, at), and the fields on which a
    # facility's live sources disagree (JSON list of {field, values: {source:id: value}, chosen}).
    """
    ALTER TABLE source_records ADD COLUMN match TEXT;
    ALTER TABLE facilities ADD COLUMN conflicts TEXT NOT NULL DEFAULT '[]';
    """,
    # Audit (issue 6): indicators, the institution checklist and data quality, computed once per
    # ingest by directory.audit.recompute and only read by pages/API/CLI; plus the area shapes
    # simplified once for the choropleths. Self-contained: drops nothing, touches no other table.
    """
    CREATE TABLE audit_shapes (
        level TEXT NOT NULL,
        code TEXT NOT NULL,
        geometry TEXT NOT NULL,             -- simplified GeoJSON geometry (WGS84) for the maps
        PRIMARY KEY (level, code)
    );
    CREATE TABLE audit_indicators (
        level TEXT NOT NULL,                -- country | county | municipality | eldership
        code TEXT NOT NULL,
        category TEXT NOT NULL,
        count INTEGER NOT NULL,
        population INTEGER,
        per_10k REAL,
        elderships INTEGER,
        elderships_none INTEGER,
        share_elderships_none REAL,
        population_uncovered INTEGER,
        share_population_uncovered REAL,
        rank INTEGER,                       -- among the municipalities, by per_10k (1 = most)
        median_per_10k REAL,                -- the national median of the municipalities' per_10k
        capacity INTEGER,                   -- childcare: summed capacity where known
        capacity_facilities INTEGER,        -- how many facilities published a capacity
        enrolled INTEGER,                   -- children enrolled where capacity and children are known
        capacity_per_child REAL,
        PRIMARY KEY (level, code, category)
    );
    CREATE TABLE audit_institutions (
        facility_id TEXT PRIMARY KEY,
        municipality_code TEXT,
        eldership_code TEXT,
        name TEXT NOT NULL,
        categories TEXT NOT NULL,
        sector TEXT NOT NULL,
        open_to_anyone TEXT NOT NULL,       -- each point: yes | no | unknown
        hours_published TEXT NOT NULL,
        free_toilet TEXT NOT NULL,
        changing_table TEXT NOT NULL,
        feeding_room TEXT NOT NULL,
        play_corner TEXT NOT NULL,
        seating TEXT NOT NULL,
        wheelchair TEXT NOT NULL,
        yes INTEGER NOT NULL,
        known INTEGER NOT NULL,
        score REAL,                         -- yes / known; NULL when no point is known
        meets_all INTEGER NOT NULL
    );
    CREATE INDEX audit_institutions_municipality
        ON audit_institutions(municipality_code, meets_all DESC, score DESC, name);
    -- The public list of institutions that meet every point (few): a small partial index.
    CREATE INDEX audit_institutions_open ON audit_institutions(municipality_code, name) WHERE meets_all = 1;
    CREATE TABLE audit_checklist (
        code TEXT PRIMARY KEY,              -- a municipality code, or LT for the country
        institutions INTEGER NOT NULL,
        yes_points INTEGER NOT NULL,
        known_points INTEGER NOT NULL,
        score REAL,
        coverage REAL,
        meets_all INTEGER NOT NULL,
        points TEXT NOT NULL                -- JSON: point -> {yes, no, unknown}
    );
    CREATE TABLE audit_quality (
        code TEXT PRIMARY KEY,              -- a municipality code, or LT for the country
        facilities INTEGER NOT NULL,
        missing_hours INTEGER NOT NULL,
        no_features INTEGER NOT NULL,
        stale INTEGER NOT NULL,
        single_source INTEGER NOT NULL,
        conflicts INTEGER NOT NULL,
        conflicts_tracked INTEGER NOT NULL
    );
    CREATE TABLE audit_quality_records (
        municipality_code TEXT NOT NULL,
        position INTEGER NOT NULL,
        facility_id TEXT NOT NULL,
        name TEXT NOT NULL,
        problems TEXT NOT NULL,             -- comma-separated problem keys
        PRIMARY KEY (municipality_code, position)
    );
    """,
    # map_grid: per zoom, category ('*' = all) and Web Mercator grid cell, the count and position
    # sums of facilities, for the map's low-zoom cluster bubbles (directory.clusters rebuilds it
    # after every ingest). Derived data: dropping and rebuilding it loses nothing.
    """
    CREATE TABLE map_grid (
        zoom INTEGER NOT NULL,
        category TEXT NOT NULL,
        gx INTEGER NOT NULL,
        gy INTEGER NOT NULL,
        n INTEGER NOT NULL,
        sum_lon REAL NOT NULL,
        sum_lat REAL NOT NULL,
        PRIMARY KEY (zoom, category, gx, gy)
    ) WITHOUT ROWID;
    """,
    # 2 (issue 5, snapshots): one row per dated snapshot file an ingest run published.
    """
    CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        run_id INTEGER REFERENCES ingest_runs(id),
        last_seq INTEGER NOT NULL DEFAULT 0,  -- max(changes.seq) the snapshot contains
        path TEXT,                            -- file name in the snapshots dir; NULL once pruned
        size INTEGER,
        counts TEXT NOT NULL DEFAULT '{}',    -- facilities / source_records / changes at that point
        pruned_at TEXT
    );
    CREATE INDEX snapshots_seq ON snapshots(last_seq);
    -- Exports list a facility's source records in (source, source_id) order without a sort per row.
    CREATE INDEX source_records_facility_order ON source_records(facility_id, source, source_id);
    """,
    # (issue 12, place search) the gazetteer: municipalities and elderships (from `areas`) and
    # named places (cities, towns, villages, suburbs; OSM place nodes), each under folded and
    # stemmed keys (directory.places.place_keys) for prefix search as the user types.
    """
    CREATE TABLE places (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,                 -- municipality|eldership|city|town|suburb|village|hamlet|...
        source TEXT NOT NULL,               -- 'areas' or 'osm'
        source_id TEXT NOT NULL,            -- level/code of an area, or the OSM element (node/123)
        area_code TEXT,                     -- municipality/eldership: the area itself
        municipality_code TEXT,             -- where the place lies
        eldership_code TEXT,
        lon REAL NOT NULL,
        lat REAL NOT NULL,
        min_lon REAL, min_lat REAL, max_lon REAL, max_lat REAL,
        population INTEGER,
        rank_group INTEGER NOT NULL,        -- 0 cities and municipalities, 1 towns, elderships, suburbs, 2 the rest
        UNIQUE (source, source_id)
    );
    CREATE TABLE place_keys (
        key TEXT NOT NULL,                  -- stemmed words, space-separated
        place_id INTEGER NOT NULL REFERENCES places(id) ON DELETE CASCADE,
        whole INTEGER NOT NULL,             -- 1: the whole name; 0: the name from its n-th word on
        PRIMARY KEY (key, place_id)
    ) WITHOUT ROWID;
    """,
    # (issue 11, contributions) who made a run, as a role ("editor, Vilniaus m. sav.", "public
    # suggestion, approved by editor, ..."): shown on /changes. Never a name or an email. NULL for
    # source ingests (the source is the actor).
    """
    ALTER TABLE ingest_runs ADD COLUMN actor TEXT;
    """,
    # (issue 13, the fast path) what is kept ready per facility (directory.ready): its map feature
    # as JSON text split at the time-dependent open_state value, its sources array and its CSV
    # provenance cells (written when the facility changes; derived.refresh_derived fills rows
    # written before this migration).
    """
    ALTER TABLE facilities ADD COLUMN feature_head TEXT;
    ALTER TABLE facilities ADD COLUMN feature_tail TEXT;
    ALTER TABLE facilities ADD COLUMN sources_json TEXT;
    ALTER TABLE facilities ADD COLUMN provenance_csv TEXT;
    -- Any other write to what the ready text is made of makes it not ready (NULL: the readers
    -- fall back to the SQL builders), so a writer that does not call refresh_ready (a script, a
    -- repair, a test) can never leave stale text behind. refresh_ready's own UPDATE sets only
    -- the ready columns, which these triggers do not watch.
    CREATE TRIGGER facilities_ready_stale AFTER UPDATE OF id, name, categories, features, address,
        opening_hours, operator, sector, status, municipality_code, eldership_code, last_verified,
        source, source_id, licence, fetched_at, lon, lat ON facilities
    WHEN new.feature_head IS NOT NULL OR new.sources_json IS NOT NULL OR new.provenance_csv IS NOT NULL
    BEGIN
        UPDATE facilities SET feature_head = NULL, feature_tail = NULL, sources_json = NULL,
            provenance_csv = NULL WHERE rid = new.rid;
    END;
    CREATE TRIGGER source_records_ready_ai AFTER INSERT ON source_records BEGIN
        UPDATE facilities SET sources_json = NULL, provenance_csv = NULL
            WHERE id = new.facility_id AND (sources_json IS NOT NULL OR provenance_csv IS NOT NULL);
    END;
    CREATE TRIGGER source_records_ready_au AFTER UPDATE OF source, source_id, facility_id, licence,
        fetched_at, removed_at ON source_records BEGIN
        UPDATE facilities SET sources_json = NULL, provenance_csv = NULL
            WHERE id IN (old.facility_id, new.facility_id) AND (sources_json IS NOT NULL OR provenance_csv IS NOT NULL);
    END;
    CREATE TRIGGER source_records_ready_ad AFTER DELETE ON source_records BEGIN
        UPDATE facilities SET sources_json = NULL, provenance_csv = NULL
            WHERE id = old.facility_id AND (sources_json IS NOT NULL OR provenance_csv IS NOT NULL);
    END;
    -- The audit's one pass over the facilities, kept (derived data), so an incremental audit
    -- re-reads only the changed municipalities' facilities (directory.audit._indicators).
    CREATE TABLE audit_counts (
        m TEXT NOT NULL,
        e TEXT,
        cat TEXT NOT NULL,
        n INTEGER NOT NULL,
        capacity INTEGER,
        capacity_n INTEGER,
        enrolled INTEGER,
        capacity_enrolled INTEGER
    );
    CREATE INDEX audit_counts_m ON audit_counts(m);
    """,
    # (issue 15) the social-cluster view, computed by directory.social_cluster.recompute in
    # refresh_derived and only read by /cluster, /api/cluster and the CSV. Derived data.
    """
    CREATE TABLE cluster_counts (
        level TEXT NOT NULL,                -- country | municipality | eldership
        code TEXT NOT NULL,
        category TEXT NOT NULL,             -- a category slug, or '*' for distinct facilities of any kind
        sector TEXT NOT NULL,               -- public | private | civic | unknown
        count INTEGER NOT NULL,
        PRIMARY KEY (level, code, category, sector)
    ) WITHOUT ROWID;
    CREATE TABLE cluster_actors (
        level TEXT NOT NULL,
        code TEXT NOT NULL,
        category TEXT NOT NULL,
        sector TEXT NOT NULL,
        position INTEGER NOT NULL,          -- 1.. by name: the first few actors of each cell
        facility_id TEXT NOT NULL,
        name TEXT NOT NULL,
        operator TEXT,
        PRIMARY KEY (level, code, category, sector, position)
    ) WITHOUT ROWID;
    CREATE TABLE cluster_areas (
        level TEXT NOT NULL,
        code TEXT PRIMARY KEY,              -- 'LT' for the country
        name TEXT NOT NULL,
        parent_code TEXT,
        facilities INTEGER NOT NULL,
        known INTEGER NOT NULL,             -- facilities whose sector is known
        public INTEGER NOT NULL,
        private INTEGER NOT NULL,
        civic INTEGER NOT NULL,
        unknown INTEGER NOT NULL,
        share_outside_public REAL,          -- (private + civic) / known; NULL when none is known
        sector_conflicts INTEGER NOT NULL,  -- facilities whose sources (or rules) disagree on the sector
        lon REAL, lat REAL                  -- a point inside the area: where suggestions are measured from
    );
    CREATE INDEX cluster_areas_parent ON cluster_areas(parent_code);
    """,
    # (issue 13, incremental derived data) what each live facility counts for in the audit and
    # the social-cluster figures, kept so a run that changes k facilities updates the stored
    # sums by the difference between a facility's old and new row (directory.audit.update,
    # directory.social_cluster.update) instead of re-reading every facility. Derived data:
    # the full recompute rebuilds all of it. audit_counts is replaced by per-(m, e, kind) sums
    # with the counts that say whether each sum is NULL (SQL's sum of nothing).
    """
    DROP TABLE IF EXISTS audit_counts;
    CREATE TABLE audit_facts (
        facility_id TEXT PRIMARY KEY,
        m TEXT NOT NULL,
        e TEXT,
        name TEXT NOT NULL,
        categories TEXT NOT NULL,
        capacity INTEGER,                   -- extra.capacity as the indicators read it
        children INTEGER,                   -- extra.children
        verified_at TEXT,                   -- audit.verified_at_sql: moves the 'stale' flag by date
        missing_hours INTEGER NOT NULL,
        no_features INTEGER NOT NULL,
        stale INTEGER NOT NULL,
        single_source INTEGER NOT NULL,
        conflicts INTEGER NOT NULL,
        problems INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX audit_facts_verified ON audit_facts(verified_at);
    CREATE INDEX audit_facts_worst ON audit_facts(m, problems DESC, name, facility_id) WHERE problems > 0;
    CREATE TABLE audit_counts (
        m TEXT NOT NULL,
        e TEXT NOT NULL,                    -- '' when the facility has no eldership
        cat TEXT NOT NULL,
        n INTEGER NOT NULL,
        capacity INTEGER NOT NULL,          -- NULL in the indicators when capacity_n = 0
        capacity_n INTEGER NOT NULL,
        enrolled INTEGER NOT NULL,          -- NULL (with capacity_enrolled) when enrolled_n = 0
        capacity_enrolled INTEGER NOT NULL,
        enrolled_n INTEGER NOT NULL,
        PRIMARY KEY (m, e, cat)
    ) WITHOUT ROWID;
    CREATE TABLE cluster_facts (
        facility_id TEXT PRIMARY KEY,
        m TEXT,
        e TEXT,
        name TEXT NOT NULL,
        operator TEXT,
        sector TEXT NOT NULL,
        categories TEXT NOT NULL,
        conflict INTEGER NOT NULL           -- social_cluster.SECTOR_CONFLICT
    ) WITHOUT ROWID;
    CREATE TABLE cluster_pairs (
        facility_id TEXT NOT NULL,
        category TEXT NOT NULL,
        m TEXT,
        e TEXT,
        sector TEXT NOT NULL,
        name TEXT NOT NULL,
        operator TEXT
    );
    CREATE INDEX cluster_pairs_facility ON cluster_pairs(facility_id);
    CREATE INDEX cluster_pairs_m ON cluster_pairs(m, category, sector, name, facility_id) WHERE m IS NOT NULL;
    CREATE INDEX cluster_pairs_e ON cluster_pairs(e, category, sector, name, facility_id) WHERE e IS NOT NULL;
    -- The areas' fingerprint (derived.areas_signature) read from this covering index: reading the
    -- geometries' lengths from the table costs ~30 ms (megabytes of text) on every refresh.
    CREATE INDEX areas_signature ON areas(length(geometry), population, min_lon, max_lat);
    """,
    # (issue 13, exports) the facility's whole CSV export line, kept ready by directory.ready
    # (exports.csv_line_parts), so the export is the ready lines in order; NULL = not ready (the
    # export builds that row's line on the spot). derived.refresh_derived fills the rows written
    # before this migration (the ready SQL changed). As for the other ready text, any other write
    # to what the line is made of makes it not ready: every column the CSV reads (the extras and
    # updated_at too) and the facility's source records. The area names it carries are refreshed
    # by areas_store.save_areas (ready.refresh_area_names).
    """
    ALTER TABLE facilities ADD COLUMN csv_line TEXT;
    CREATE TRIGGER facilities_csv_stale AFTER UPDATE OF id, name, categories, lon, lat, address,
        municipality_code, eldership_code, operator, sector, features, opening_hours, status,
        last_verified, source, source_id, licence, fetched_at, extra, updated_at ON facilities
    WHEN new.csv_line IS NOT NULL
    BEGIN
        UPDATE facilities SET csv_line = NULL WHERE rid = new.rid;
    END;
    CREATE TRIGGER source_records_csv_ai AFTER INSERT ON source_records BEGIN
        UPDATE facilities SET csv_line = NULL WHERE id = new.facility_id AND csv_line IS NOT NULL;
    END;
    CREATE TRIGGER source_records_csv_au AFTER UPDATE OF source, source_id, facility_id, licence,
        fetched_at, removed_at ON source_records BEGIN
        UPDATE facilities SET csv_line = NULL
            WHERE id IN (old.facility_id, new.facility_id) AND csv_line IS NOT NULL;
    END;
    CREATE TRIGGER source_records_csv_ad AFTER DELETE ON source_records BEGIN
        UPDATE facilities SET csv_line = NULL WHERE id = old.facility_id AND csv_line IS NOT NULL;
    END;
    """,
    # (issue 13) The removed facilities alone, so a map page can leave them out from the R*Tree's
    # rids without reading each facility's row (search._box_page); it stays as small as they are.
    """
    CREATE INDEX facilities_removed ON facilities(status) WHERE status = 'removed';
    """,
    # (issue 13, unchanged re-runs) The hash of a record as the source gave it (an OSM element's
    # type, id, position and tags, with the mapping rules' fingerprint and the run's context),
    # so a re-run skips mapping, validating and hashing every element whose raw hash is stored
    # already (directory.sync.Raw). NULL for records of sources that do not give one.
    """
    ALTER TABLE source_records ADD COLUMN raw_hash TEXT;
    """,
    # (issue 13, serve2) The placed facilities by map cell, then rid, covering what a map page
    # filters on (search._cell_page): a box's page reads each of its cells' rows in rid order
    # from a rid on (and up to the grid-predicted bound), exact doubles, no R*Tree edge check and
    # no facility row. SQLite keeps it current on every write, bulk inserts included (a first
    # load builds it once after its rows: FIRST_LOAD_INDEXES). About 40 bytes a facility; built
    # in ~3 s at 1M.
    f"""
    CREATE INDEX facilities_map_cell ON facilities({MAP_CELL_SQL.format(t="")}, rid, lon, lat, status)
        WHERE lon IS NOT NULL AND lat IS NOT NULL;
    """,
    # (issue 13, sparse) The placed facilities by map band, then longitude, covering what a map
    # page filters on (search._cell_page): a box holding few rows (no rid bound applies, every
    # row in it is read and sorted anyway) is read as one lon range per band instead of whole
    # map cells, most of whose rows a partly covered cell holds outside the box (the bench's
    # sparse box: 562 index entries read instead of 1,175 for its 501 rows). Built after the
    # rows on a first load (FIRST_LOAD_INDEXES). About 43 MB at 1M facilities.
    f"""
    CREATE INDEX facilities_map_band ON facilities({MAP_BAND_SQL.format(t="")}, lon, rid, lat, status)
        WHERE lon IS NOT NULL AND lat IS NOT NULL;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def _configure(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA mmap_size = {MMAP_SIZE}")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def connect(path: str | os.PathLike[str], *, readonly: bool = False,
            factory: type[sqlite3.Connection] = sqlite3.Connection) -> sqlite3.Connection:
    """Open the store. Writers get WAL and the latest schema; readers get a read-only handle.
    `factory`: the connection's class (a serving reader's keeps facts, directory.storememo; the
    ingest bench's writer times its statements).

    A reader never migrates: it refuses a file that is missing or older than this code expects,
    with a message that says which command to run.
    """
    path = Path(path)
    if readonly:
        if not path.exists():
            raise StoreError(f"no store at {path}; run `atvira ingest ...` or `atvira init` first", where=str(path))
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                   factory=factory)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store read-only: {exc}", where=str(path)) from exc
        _configure(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"store schema is version {version}, this code expects {SCHEMA_VERSION}; run `atvira init`",
                where=str(path),
            )
        return conn
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a whole ingest is one transaction.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=factory)
        _configure(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn)
    except sqlite3.OperationalError as exc:
        raise StoreError(f"cannot open store for writing: {exc}", where=str(path)) from exc
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file up to SCHEMA_VERSION; returns the number of migrations applied."""
    return apply_migrations(conn, MIGRATIONS, label="store")


def apply_migrations(conn: sqlite3.Connection, migrations: list[str], *, label: str) -> int:
    """Apply `migrations` after the file's PRAGMA user_version, each in its own transaction;
    returns how many were applied. Shared by the public and the private store."""
    latest = len(migrations)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > latest:
        raise StoreError(f"{label} schema {version} is newer than this code ({latest}); upgrade Atvira")
    applied = 0
    for number in range(version + 1, latest + 1):
        with transaction(conn):
            # Another process may have migrated while this one waited for the write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                continue
            for statement in split_sql(migrations[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        applied += 1
    return applied


def split_sql(script: str) -> Iterator[str]:
    """Split a migration into statements (sqlite3.complete_statement handles trigger bodies)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip():
        yield buf


def write_error(exc: sqlite3.Error, *, doing: str) -> StoreError | None:
    """A clear StoreError for a write the storage refused (read-only, full, I/O), else None.

    SQLite rolls the transaction back in these cases, so the message can promise that nothing
    already stored was lost.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        why = "the store is read-only (file, directory or disk)"
    elif name == "SQLITE_FULL" or "disk is full" in text:
        why = "the disk is full (or the store reached its size limit)"
    elif name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")) or "disk I/O error" in text:
        why = "the store could not be written (I/O error)"
    else:
        return None
    return StoreError(f"{why} while {doing}: {text}; nothing was written and the previous data is unchanged")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open (SQLite ends it by itself after some errors)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed whole or rolled back whole.

    A write the storage refuses (read-only file or disk, full disk) becomes a StoreError that
    says so; every other error passes through unchanged after the rollback.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise write_error(exc, doing="starting a write") or StoreError(f"cannot start a write: {exc}") from exc
    try:
        yield conn
    except sqlite3.OperationalError as exc:
        _rollback(conn)
        mapped = write_error(exc, doing="writing")
        if mapped is None:
            raise
        raise mapped from exc
    except BaseException:
        _rollback(conn)
        raise
    else:
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            _rollback(conn)
            raise write_error(exc, doing="committing") or StoreError(f"cannot commit the write: {exc}") from exc


# --- bulk writes (the sync) -----------------------------------------------------------------

@contextmanager
def first_load_journal(conn: sqlite3.Connection) -> Iterator[bool]:
    """On a store that holds no facility yet, the write inside this block goes through a
    rollback journal instead of the WAL; yields whether it does. WAL mode is restored after.

    In WAL mode every page a run writes is written twice, to the WAL and again by the
    checkpoint, and a page the cache spills several times is appended each time: a first ingest
    of 100k wrote about twice its store. A rollback journal holds only the pages that existed
    before the run (an empty store's few), and the new pages go to the file once. The run stays
    one transaction (a crash leaves a hot journal that the next open rolls back), so nothing
    but the bytes written changes. SQLite leaves WAL only for a connection that is the store's
    only one: with a server (or any reader) holding it open the block runs in WAL as before; a
    reader that opens the store during the run waits for the commit (busy_timeout) instead of
    reading nothing. Must be entered with no transaction open."""
    switched = False
    if not conn.in_transaction and conn.execute("SELECT 1 FROM facilities LIMIT 1").fetchone() is None:
        try:
            switched = (conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                        and conn.execute("PRAGMA journal_mode = TRUNCATE").fetchone()[0] == "truncate")
        except sqlite3.OperationalError:  # another connection holds the store: stay in WAL
            switched = False
    try:
        yield switched
    finally:
        if switched:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:  # a reader holds it now: the next writer's connect() sets WAL
                pass


# The per-row triggers a batched insert of new facilities replaces by set-wise statements:
# facilities_ai (one FTS5 insert and one R*Tree insert per row: three times the cost of the same
# rows inserted set-wise) and source_records_ready_ai (a probe per record; the sync rewrites the
# ready text of every facility it touched anyway; source_records_csv_ai likewise for the CSV line).
BULK_TRIGGERS = ("facilities_ai", "source_records_ready_ai", "source_records_csv_ai")


# The secondary indexes a first run builds after its rows instead of row by row: none is read
# while a run applies records (the sync finds records by their primary keys, a facility's
# records through source_records_facility_order, which stays), and CREATE INDEX sorts once
# where 100k inserts each walk six b-trees (100k first run: 5 s of 28 s CPU).
FIRST_LOAD_INDEXES = ("facilities_municipality", "facilities_eldership", "facilities_source", "facilities_map_cell",
                      "facilities_map_band", "source_records_facility", "source_records_scope", "changes_facility")


@contextmanager
def deferred_indexes(conn: sqlite3.Connection) -> Iterator[bool]:
    """Inside a write transaction, on a store that holds no facility yet: drop FIRST_LOAD_INDEXES
    and build them again, from their own stored SQL, when the block ends without an error;
    yields whether it did. DDL is transactional: after an error the caller's rollback (see
    `transaction`) brings the indexes back with everything else."""
    if not conn.in_transaction:
        raise RuntimeError("deferred_indexes needs an open transaction")
    if conn.execute("SELECT 1 FROM facilities LIMIT 1").fetchone() is not None:
        yield False
        return
    with indexes_after(conn, "name IN (SELECT value FROM json_each(?))", json.dumps(FIRST_LOAD_INDEXES)) as dropped:
        yield dropped > 0


@contextmanager
def indexes_after(conn: sqlite3.Connection, where: str, *params: object) -> Iterator[int]:
    """Inside a write transaction: drop the indexes that `where` picks among sqlite_master's
    (e.g. "tbl_name = ?"), and build them again, from their own stored SQL, when the block ends
    without an error (one sort each, instead of entry by entry in the rows' order); yields how
    many. After an error the caller's rollback brings them back (DDL is transactional)."""
    indexes = conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                           f" AND {where} ORDER BY name", params).fetchall()
    for name, _sql in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    yield len(indexes)
    for _name, sql in indexes:
        conn.execute(sql)


@contextmanager
def bulk_insert(conn: sqlite3.Connection) -> Iterator[int]:
    """Insert new facilities (and their source records) without the per-row triggers; yields the
    largest facility rid before the insert, and indexes every facility after it (FTS5, R*Tree)
    set-wise on the way out.

    Must run inside a transaction (DDL is transactional in SQLite): the triggers are dropped and
    re-created, from their own stored SQL, within it, so a crash or an error rolls them back
    with the rows (old-or-new), and other connections never see the store without them. New
    rows get rids above the yielded one (INTEGER PRIMARY KEY without AUTOINCREMENT, and no
    other writer inside our transaction), so "rid > before" is exactly the inserted rows.
    """
    if not conn.in_transaction:
        raise RuntimeError("bulk_insert needs an open transaction")
    triggers = [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN (SELECT value FROM json_each(?))"
        " ORDER BY name", (json.dumps(BULK_TRIGGERS),))]
    before = conn.execute("SELECT coalesce(max(rid), 0) FROM facilities").fetchone()[0]
    for name in BULK_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    try:
        yield before
        index_facilities(conn, after_rid=before)
    finally:
        if conn.in_transaction:  # after a failed statement SQLite may have rolled back already
            for sql in triggers:
                conn.execute(sql)


def index_facilities(conn: sqlite3.Connection, *, after_rid: int) -> None:
    """What facilities_ai does, for every facility with a rid above `after_rid`, set-wise."""
    conn.execute("INSERT INTO facilities_fts(rowid, name, address, operator)"
                 " SELECT rid, name, address, operator FROM facilities WHERE rid > ?", (after_rid,))
    conn.execute("INSERT INTO facilities_rtree(rid, min_lon, max_lon, min_lat, max_lat)"
                 " SELECT rid, lon, lon, lat, lat FROM facilities"
                 " WHERE rid > ? AND lon IS NOT NULL AND lat IS NOT NULL", (after_rid,))


# --- facility rows -------------------------------------------------------------------------

FACILITY_COLUMNS = (
    "id", "name", "categories", "lon", "lat", "address", "municipality_code", "eldership_code",
    "operator", "sector", "features", "opening_hours", "status", "last_verified", "source",
    "source_id", "licence", "fetched_at", "extra",
)
JSON_COLUMNS = ("categories", "features", "extra", "conflicts")


def row_to_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A facilities row as plain Python values (JSON columns decoded)."""
    d = {k: row[k] for k in row.keys()}
    for key in JSON_COLUMNS:
        if key in d and isinstance(d[key], str):
            d[key] = json.loads(d[key])
    return d


def get_facility(conn: sqlite3.Connection, facility_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM facilities WHERE id = ?", (facility_id,)).fetchone()
    if row is None:
        return None
    fac = row_to_dict(row)
    fac["sources"] = [
        {
            "source": r["source"],
            "source_id": r["source_id"],
            "licence": r["licence"],
            "fetched_at": r["fetched_at"],
            "removed_at": r["removed_at"],
            # Why this record was merged into the facility (None: the record it started from).
            "match": json.loads(r["match"]) if r["match"] else None,
        }
        for r in conn.execute(
            "SELECT source, source_id, licence, fetched_at, removed_at, match FROM source_records"
            " WHERE facility_id = ? ORDER BY rowid",
            (facility_id,),
        )
    ]
    return fac


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Row counts of the main tables (for `atvira sources`, tests and the status page)."""
    return {
        # all less the removed, each counted on an index (the smallest; facilities_removed), not
        # by reading every facility's row (a table of ~2 KB rows: 0.13 s at 100k, cold)
        "facilities": conn.execute("SELECT (SELECT count(*) FROM facilities)"
                                   " - (SELECT count(*) FROM facilities WHERE status = 'removed')").fetchone()[0],
        "source_records": conn.execute("SELECT count(*) FROM source_records").fetchone()[0],
        "changes": conn.execute("SELECT count(*) FROM changes").fetchone()[0],
        "areas": conn.execute("SELECT count(*) FROM areas").fetchone()[0],
    }


def set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def get_meta(conn: sqlite3.Connection, key: str, default: Any = None) -> Any:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return default if row is None else json.loads(row[0])


def refresh_extent(conn: sqlite3.Connection) -> list[float] | None:
    """Store the bounding box of the active facilities (the map's first view)."""
    row = conn.execute(
        "SELECT min(lon), min(lat), max(lon), max(lat) FROM facilities WHERE lon IS NOT NULL AND status != 'removed'"
    ).fetchone()
    extent = None if row[0] is None else [row[0], row[1], row[2], row[3]]
    set_meta(conn, "extent", extent)
    return extent
