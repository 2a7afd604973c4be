"""Whole-dataset and filtered exports: CSV, GeoJSON, GeoPackage and SQLite.

One column list (`COLUMNS`) drives every flat format and the Frictionless `datapackage.json`, so
the CSV, the GeoPackage and their documentation cannot drift apart. SQLite builds each row
(category lists, one column per feature, every source record with its licence, the area names)
and, for CSV and GeoJSON, the finished text of a whole keyset page of `BATCH` rows, so Python
only hands on one block of UTF-8 bytes per page: memory stays flat and the time stays within a
small factor of the `sqlite3` shell's own CSV export (see bench/export.py).

geopandas is used only here, at the edge, to write GeoPackage batches; the request path of the
map and the API never imports it.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

from .errors import BadRequest, InputError
from .features import EXPORT_PROPERTIES, extra_sql, feature_sql
from .model import EXTRA_FIELDS, FEATURES
from .publish import FTS_TOKENIZE, prepare_copy
from .query import FacilityQuery, ordered_where, register_hours
from .search import iter_rows, plan_scan
from .store import SCHEMA_VERSION, connect

BATCH = 5000
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "sqlite": "application/vnd.sqlite3",
}
# What the public whole-store copy (the .sqlite download and every snapshot file) holds: the
# published tables only. Everything else (ingest_runs with their error messages, the change log,
# meta, the audit tables, map_grid: 2.5M rows at 1M facilities, snapshots) is left out, and so
# are the columns in PRIVATE_COLUMNS (the raw record each source sent). A table another feature
# adds is private until it is listed here. The full-text and R*Tree indexes belong to facilities.
PUBLISHED_TABLES: tuple[str, ...] = ("facilities", "facilities_fts", "facilities_rtree", "source_records", "areas")
PRIVATE_COLUMNS: dict[str, tuple[str, ...]] = {"source_records": ("data",)}


def published_tables(conn: sqlite3.Connection) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """(tables to drop, columns to drop per kept table) to turn a copy of the store into the
    public one: the one place that decides what a published SQLite file holds."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    virtual = [t for t in PUBLISHED_TABLES if t in names]

    def kept(name: str) -> bool:  # a published table, or the shadow table of a published virtual one
        return name in PUBLISHED_TABLES or name.startswith("sqlite_") or any(name.startswith(v + "_") for v in virtual)

    drop = [n for n in names if not kept(n)]
    return drop, {t: cols for t, cols in PRIVATE_COLUMNS.items() if t in names}


def publish_copy(path: Path) -> None:
    """Strip a fresh store copy at `path` down to `published_tables`, then compact it."""
    out = sqlite3.connect(path, isolation_level=None)
    try:
        drop, columns = published_tables(out)
        out.execute("BEGIN")
        for table in drop:
            out.execute(f'DROP TABLE IF EXISTS "{table}"')
        for table, cols in columns.items():
            for col in cols:
                out.execute(f'ALTER TABLE "{table}" DROP COLUMN "{col}"')
        out.execute("COMMIT")
        out.execute("VACUUM")
    finally:
        out.close()


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql: str  # the value, an expression over `f` (facilities)
    type: str  # Frictionless type: string | number | integer | datetime
    description: str
    csv: str | None = None  # the finished CSV cell, when quoting `sql` the default way will not do


def _guard(expr: str) -> str:
    """The apostrophe that goes before a text starting with = + - @ TAB or CR ('' otherwise).

    All six characters sort before 'A', so `expr < 'A'` (one compare) settles the texts that start
    with a letter, most of them, before the `unicode() IN (...)` look-up (an IN list of six is a
    b-tree probe): some 3% of the CSV's time. The look-up alone decides; the
    compare only skips it (and NULL < 'A' is NULL: no apostrophe).
    """
    return f"iif({expr} < 'A' AND unicode({expr}) IN (61, 43, 45, 64, 9, 13), '''', '')"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guard_text(value: object) -> object:
    """The Python twin of `_guard` for CSVs written in Python (the audit's, the cluster's): a
    text starting with = + - @ TAB or CR gets a leading apostrophe; other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _cell(expr: str) -> str:
    """A quoted RFC 4180 CSV cell ('' for NULL) that a spreadsheet will not run as a formula:
    a value starting with = + - @ TAB or CR gets a leading apostrophe (OWASP's advice)."""
    return "coalesce('\"' || " + _guard(expr) + " || replace(" + expr + ", '\"', '\"\"') || '\"', '')"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula (OWASP)


def guard_cell(value: object) -> object:
    """A cell value a spreadsheet will not run: text starting with = + - @ TAB or CR gets a
    leading apostrophe (the same rule `_guard` applies in SQL); numbers pass as they are (a
    negative number is data, not a formula), None becomes ''."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[object]], *, every: int = 500) -> Iterator[str]:
    """The one CSV writer for every CSV the app writes in Python (the audit's, the change log's,
    anything new; the big facility export builds the same cells in SQL): UTF-8 BOM so
    spreadsheet programs read Lithuanian letters, RFC 4180 quoting with CRLF, every cell through
    `guard_cell`. Yields text every `every` rows, so memory stays flat."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    for i, row in enumerate(rows, 1):
        writer.writerow([guard_cell(v) for v in row])
        if i % every == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _plain(expr: str) -> str:
    """A cell for values this code writes itself (ids, enums, our timestamps): never a comma, a
    quote or a formula, so no quoting or neutralising is needed."""
    return f"coalesce({expr}, '')"


# A facility's source records, read through an index that starts with facility_id, so they come
# in index order (the same for the same store: exports are reproducible) without a sort per row.
_SOURCES = "FROM source_records s WHERE s.facility_id = f.id"
_FEATURE_PATHS = ", ".join(f"'$.{name}'" for name in FEATURES)
_SOURCES_SQL = (
    f"coalesce((SELECT group_concat(s.source || ':' || s.source_id, '; ') {_SOURCES}), f.source || ':' || f.source_id)"
)


def _licences(value: Callable[[str], str]) -> str:
    return f"coalesce((SELECT group_concat({value('l')}, '; ') FROM (SELECT DISTINCT s.licence AS l {_SOURCES})), {value('f.licence')})"


def _area(code: str, value: Callable[[str], str]) -> str:
    return f"(SELECT {value('a.name')} FROM areas a WHERE a.code = f.{code})"


def _area_csv(code: str) -> str:
    """The area-name cell; a facility without the code skips the look-up."""
    return f"iif(f.{code} IS NULL, '', coalesce({_area(code, _cell)}, ''))"


# Both provenance cells from one probe of source_records; a facility without any record falls
# back to its own source columns (HAVING makes the probe yield no row, so coalesce takes over).
# The distinct-licence list costs a temporary b-tree each time it runs (it was a third of the
# CSV's time), so it runs only when the records' licences differ; when they are all the same (the
# usual case: one record, or one source) min() is the list. Licences are joined with '; ' (never
# by replacing commas: a licence text may contain one).
_LICENCE_LIST = (
    "iif(min(s.licence) = max(s.licence), min(s.licence), "
    f"(SELECT group_concat(l, '; ') FROM (SELECT DISTINCT s.licence AS l {_SOURCES})))"
)
# The provenance cells of a facility whose one source record is the one its own columns name
# (what the probe below gives for it): the probe's fallback, and what directory.ready makes for
# a new facility the sync inserts in bulk without the probe.
OWN_PROVENANCE_CSV_SQL = f"printf('\"%w\",\"%s%w\"', f.source || ':' || f.source_id, {_guard('f.licence')}, f.licence)"
PROVENANCE_CSV_SQL = (
    "coalesce((SELECT printf('\"%w\",\"%s%w\"', group_concat(s.source || ':' || s.source_id, '; '), "
    f"{_guard(_LICENCE_LIST)}, {_LICENCE_LIST}) {_SOURCES} HAVING count(*) > 0), "
    f"{OWN_PROVENANCE_CSV_SQL})"
)


def _same(expr: str) -> str:
    return expr


def _csv_part(column: Column) -> tuple[str, list[str]]:
    """A column's piece of the line: a printf format and its arguments.

    Source-written text is `"%s%w"`: %w doubles embedded quotes (RFC 4180), and the %s in front is
    an apostrophe when the text starts with = + - @ TAB or CR (the formula-injection guard).
    """
    if column.csv is not None:
        return "%s", [column.csv]
    return '"%s%w"', [_guard(column.sql), f"coalesce({column.sql}, '')"]


def _extra_columns() -> list[Column]:
    """One column per model.EXTRA_FIELDS entry. In the CSV the first one writes all their cells:
    a facility whose extra is '{}' (most of a big store) gets one constant, the empty cells, and
    skips the thirteen look-ups (as the feature columns do)."""
    columns = []
    for key, (kind, description) in EXTRA_FIELDS.items():
        if kind == "integer":
            sql = extra_sql(key, kind)
            columns.append(Column(key, sql, "integer", description, csv=f"coalesce({sql}, '')"))
        elif kind == "list":
            sql = f"(SELECT group_concat(value, ';') FROM json_each({extra_sql(key, kind)}))"
            columns.append(Column(key, sql, "string", description))
        else:
            columns.append(Column(key, extra_sql(key, kind), "string", description))
    # The cells read from `x`, the small array json_extract(extra, '$.capacity', ...) gives: one
    # parse of the (possibly big: all of OSM's tags) extra per row instead of one per cell.
    cells = []
    for i, (key, (kind, _)) in enumerate(EXTRA_FIELDS.items()):
        value = extra_sql(key, kind, json_text="x", path=f"'$[{i}]'")
        if kind == "list":
            value = f"(SELECT group_concat(value, ';') FROM json_each({value}))"
        cells.append(Column(key, value, "integer" if kind == "integer" else "string", "",
                            csv=f"coalesce({value}, '')" if kind == "integer" else None))
    parts = [_csv_part(c) for c in cells]
    fmt = ",".join(p[0] for p in parts)
    args = ", ".join(a for p in parts for a in p[1])
    paths = ", ".join(f"'$.{key}'" for key in EXTRA_FIELDS)
    empty = ",".join("" if c.type == "integer" else '""' for c in columns)
    nulls = "[" + ",".join(["null"] * len(columns)) + "]"  # an extra with none of these keys (OSM's)
    group = (f"iif(f.extra = '{{}}', '{empty}', (SELECT iif(x = '{nulls}', '{empty}', printf('{fmt}', {args}))"
             f" FROM (SELECT json_extract(f.extra, {paths}) AS x)))")
    return [replace(columns[0], csv=group), *(replace(c, csv="") for c in columns[1:])]


COLUMNS: tuple[Column, ...] = (
    Column("id", "f.id", "string", "Stable public id (from the first source record that described the place)",
           csv=_plain("f.id")),
    Column("name", "f.name", "string", "Name as the source gives it"),
    # Slugs only (never a comma, a space or a quote) in the array the store always writes with
    # json.dumps (sync._encode): '["a", "b"]' -> '"a;b"' by string ops, no JSON parse.
    Column("categories", "(SELECT group_concat(value, ';') FROM json_each(f.categories))", "string",
           "Category slugs, separated by ';'",
           csv="('\"' || replace(trim(f.categories, '[]\"'), '\", \"', ';') || '\"')"),
    Column("latitude", "f.lat", "number", "WGS84 latitude (EPSG:4326)", csv="coalesce(f.lat, '')"),
    Column("longitude", "f.lon", "number", "WGS84 longitude (EPSG:4326)", csv="coalesce(f.lon, '')"),
    Column("address", "f.address", "string", "Street address"),
    Column("municipality_code", "f.municipality_code", "string", "Municipality code (the areas' code)"),
    Column("municipality", _area("municipality_code", _same), "string", "Municipality name",
           csv=_area_csv("municipality_code")),
    Column("eldership_code", "f.eldership_code", "string", "Eldership (seniūnija) code"),
    Column("eldership", _area("eldership_code", _same), "string", "Eldership name",
           csv=_area_csv("eldership_code")),
    Column("operator", "f.operator", "string", "Who runs the place"),
    Column("sector", "f.sector", "string", "Operator sector: public, private, civic or unknown", csv=_plain("f.sector")),
    # (issue 15) the finer value and the rule that decided the sector (docs/sectors.md): values
    # this code writes (enums), so plain cells.
    Column("sector_detail", "json_extract(f.extra, '$.sector_detail')", "string",
           "The finer sector a source gave (government, municipal, private, ngo, community, religious ...)",
           csv=_plain("json_extract(f.extra, '$.sector_detail')")),
    Column("sector_source", "json_extract(f.extra, '$.sector_source')", "string",
           "Where the sector came from: register, name_prefix, operator_type, legal_form_operator,"
           " legal_form_name, register_default or none (docs/sectors.md)",
           csv=_plain("json_extract(f.extra, '$.sector_source')")),
    Column("status", "f.status", "string", "active, closed, unknown or removed", csv=_plain("f.status")),
    Column("opening_hours", "f.opening_hours", "string", "Opening hours in OpenStreetMap opening_hours syntax"),
    *(
        Column(f"feature_{name}", f"json_extract(f.features, '$.{name}')", "string",
               f"{label}: yes, limited or no; empty means unknown",
               # All nine cells from one JSON parse: '["yes",null,...]' -> '"yes",,...'. The values
               # are validated to yes/limited/no, already valid quoted cells; the other eight fold in
               # ("" = this cell is written by an earlier column's expression).
               # A facility with no feature at all ('{}', most of them) skips the parse.
               csv=f"iif(f.features = '{{}}', '{',' * (len(FEATURES) - 1)}', "
                   f"replace(trim(json_extract(f.features, {_FEATURE_PATHS}), '[]'), 'null', ''))" if i == 0 else "")
        for i, (name, label) in enumerate(FEATURES.items())
    ),
    # the provenance cells are kept ready per facility (directory.ready): no probe per row
    # The extras (model.EXTRA_FIELDS): whole numbers as integer columns (empty when unknown),
    # lists joined with ';', texts quoted and guarded like every source-written text.
    *_extra_columns(),
    Column("sources", _SOURCES_SQL, "string",
           "Every source record describing the place, as source:id, separated by '; '",
           csv=f"coalesce(f.provenance_csv, {PROVENANCE_CSV_SQL})"),
    Column("licences", _licences(_same), "string", "The licences of those source records, separated by '; '",
           csv=""),  # in the sources cell's probe
    Column("last_verified", "f.last_verified", "string", "When the facts were last checked (as the source gives it)"),
    Column("fetched_at", "f.fetched_at", "datetime", "When the source record was fetched (UTC)",
           csv=_plain("f.fetched_at")),
    Column("updated_at", "f.updated_at", "datetime", "When the store last changed this row (UTC)",
           csv=_plain("f.updated_at")),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
# pandas dtypes of the GeoPackage batches, so a batch where a column happens to be all empty still
# appends cleanly and integer columns stay integer (nullable) columns.
GPKG_DTYPES = {c.name: {"number": "float64", "integer": "Int64"}.get(c.type, "object") for c in COLUMNS}
SQL_TYPES = {"number": "REAL", "integer": "INTEGER"}


def flat_select() -> str:
    """The SELECT list of a flat export row (`f.rid` last: the keyset cursor)."""
    return ", ".join(f"{c.sql} AS {c.name}" for c in COLUMNS) + ", f.rid"


def csv_line_expr() -> str:
    """One finished CSV line per row, built by SQLite in one printf (quoting, neutralising, CRLF).

    Python's csv module costs about as much per row as SQLite's whole query, and a chain of `||`
    copies the growing line once per cell; one printf writes it once.
    """
    parts = [_csv_part(c) for c in COLUMNS if c.csv != ""]
    fmt = ",".join(p[0] for p in parts)
    args = ", ".join(a for p in parts for a in p[1])
    return f"printf('{fmt}' || char(13, 10), {args})"


def csv_line_parts() -> tuple[str, str]:
    """The line around its provenance cells, (head, tail): head || provenance || tail is the line
    `csv_line_expr` builds, so directory.ready writes it from the provenance it computes anyway
    (one probe of source_records per facility, not two)."""
    kept = [c for c in COLUMNS if c.csv != ""]
    at = [c.name for c in kept].index("sources")
    head, tail = [_csv_part(c) for c in kept[:at]], [_csv_part(c) for c in kept[at + 1:]]
    head_fmt = "".join(p[0] + "," for p in head)
    tail_fmt = "".join("," + p[0] for p in tail)
    head_args = "".join(", " + a for p in head for a in p[1])
    tail_args = "".join(", " + a for p in tail for a in p[1])
    return f"printf('{head_fmt}'{head_args})", f"printf('{tail_fmt}' || char(13, 10){tail_args})"


# The whole line as directory.ready keeps it in facilities.csv_line (written when the facility,
# its source records or its areas' names change), with the provenance cells computed afresh,
# never from a stored copy an older version may have written.
CSV_LINE_HEAD, CSV_LINE_TAIL = csv_line_parts()
# What an export reads: the ready line, or (a row written by a writer that did not refresh it,
# or before the column existed) the same line built on the spot; coalesce evaluates the builder
# only for such rows. The default column set is the only one, so every export can use it.
CSV_EXPR = f"coalesce(f.csv_line, {csv_line_expr()})"


FEATURE_EXPR = feature_sql(EXPORT_PROPERTIES)


@contextmanager
def read_view(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Hold one read transaction for a whole export, so its keyset pages all see the same commit
    even if an ingest lands half-way (WAL keeps that view for us)."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def parse_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise BadRequest(f"unknown format {fmt[:20]!r}; known are {', '.join(FORMATS)}", where="format")
    return fmt


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _text_batches(conn: sqlite3.Connection, query: FacilityQuery, expr: str, *, sep: str,
                  batch: int) -> Iterator[bytes]:
    """Each keyset page of `expr` (one finished CSV line or GeoJSON Feature per row), joined by
    SQLite into one string: a page costs Python one object instead of one per row. The string
    comes back as a BLOB, i.e. its UTF-8 bytes as they are: as text, Python would decode the
    page into a str only for us to encode it straight back (some 7% of the CSV's time). The
    store is UTF-8 (SQLite's default; nothing sets another encoding), so the bytes are UTF-8.

    The page is the one `search.iter_rows` would read (same WHERE, same keyset order); the
    cursor is the page's largest key, so a page is complete whatever order the join kept.
    """
    after = query.after
    if query.open_states:  # the open-now filter is an SQL function evaluated per row
        register_hours(conn, query)
    scan = plan_scan(conn, query, rows=batch)  # a big box walks the table, a small one the R*Tree
    while True:
        source, where, params = ordered_where(replace(query, after=after), scan=scan)
        key = "r.rid" if source.startswith("facilities_rtree") else "f.rid"
        body, last, n = conn.execute(
            f"SELECT CAST(group_concat(t, ?) AS BLOB), max(k), count(*) FROM"
            f" (SELECT {expr} AS t, {key} AS k FROM {source} WHERE {where} LIMIT ?)",
            (sep, *params, batch),
        ).fetchone()
        if n:
            yield body
        if n < batch:
            return
        after = last


def csv_chunks(conn: sqlite3.Connection, query: FacilityQuery, *, batch: int = BATCH) -> Iterator[bytes]:
    """The CSV as byte chunks: UTF-8 with a BOM (Excel then reads the letters right), RFC 4180
    (text cells quoted, CRLF line ends), a text cell that would start a formula prefixed with '."""
    header = ",".join(COLUMN_NAMES) + "\r\n"
    yield b"\xef\xbb\xbf" + header.encode("utf-8")
    with read_view(conn):
        yield from _text_batches(conn, query, CSV_EXPR, sep="", batch=batch)


def geojson_chunks(conn: sqlite3.Connection, query: FacilityQuery, *, batch: int = BATCH) -> Iterator[bytes]:
    """An RFC 7946 FeatureCollection (lon, lat; no `crs` member), one batch of features at a time."""
    yield b'{"type":"FeatureCollection","features":[\n'
    first = True
    with read_view(conn):
        for body in _text_batches(conn, query, FEATURE_EXPR, sep=",\n", batch=batch):
            yield body if first else b",\n" + body
            first = False
    yield b"\n]}\n"


class ExportCancelled(Exception):
    """The client went away while its file was being built: stop, keep nothing."""


Cancelled = Callable[[], bool]


def _never() -> bool:
    return False


def _check(cancelled: Cancelled) -> None:
    if cancelled():
        raise ExportCancelled("the client went away")


def write_gpkg(conn: sqlite3.Connection, query: FacilityQuery, path: Path, *, batch: int = BATCH,
               cancelled: Cancelled = _never) -> int:
    """Write a GeoPackage (layer `facilities`, EPSG:4326, with an R*Tree spatial index) batch by
    batch with pyogrio's append mode, so memory holds one batch; returns the row count."""
    # geopandas/pandas/pyogrio cost ~0.5 s and ~80 MB to import: only a GeoPackage pays for them,
    # not every worker serving the map (the request path uses plain sqlite3).
    import geopandas as gpd  # heavy, see above
    import pandas as pd  # heavy, see above
    import pyogrio  # heavy, see above

    path = Path(path)
    path.unlink(missing_ok=True)
    n = 0
    for chunk in _chunks(iter_rows(conn, query, batch=batch, select=flat_select()), batch):
        _check(cancelled)  # once a batch: an abandoned whole-world GeoPackage stops within one
        frame = pd.DataFrame([tuple(r)[:-1] for r in chunk], columns=list(COLUMN_NAMES))
        # Fix the types, so a batch where a column happens to be all empty still appends cleanly.
        frame = frame.astype(GPKG_DTYPES)
        geometry = gpd.points_from_xy(frame["longitude"], frame["latitude"], crs="EPSG:4326")
        gdf = gpd.GeoDataFrame(frame, geometry=geometry)
        pyogrio.write_dataframe(gdf, path, layer="facilities", driver="GPKG", append=n > 0,
                                promote_to_multi=False, SPATIAL_INDEX="YES")
        n += len(chunk)
    if n == 0:  # an empty slice is still a valid, typed GeoPackage
        frame = pd.DataFrame({c: pd.Series(dtype=GPKG_DTYPES[c]) for c in COLUMN_NAMES})
        gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
        pyogrio.write_dataframe(gdf, path, layer="facilities", driver="GPKG", geometry_type="Point")
    return n


def write_sqlite_slice(conn: sqlite3.Connection, query: FacilityQuery, path: Path, *, batch: int = BATCH,
                       cancelled: Cancelled = _never) -> int:
    """A filtered slice as a small SQLite file: one flat `facilities` table (Datasette finds the
    latitude/longitude columns); returns the row count."""
    path = Path(path)
    path.unlink(missing_ok=True)
    out = sqlite3.connect(path)
    try:
        cols = ", ".join(f"{c.name} {SQL_TYPES.get(c.type, 'TEXT')}" for c in COLUMNS)
        out.execute(f"CREATE TABLE facilities ({cols}, PRIMARY KEY (id))")
        n = 0
        marks = ", ".join("?" * len(COLUMNS))
        for chunk in _chunks(iter_rows(conn, query, batch=batch, select=flat_select()), batch):
            _check(cancelled)
            out.executemany(f"INSERT INTO facilities VALUES ({marks})", (tuple(r)[:-1] for r in chunk))
            n += len(chunk)
        out.commit()
    finally:
        out.close()
    return n


def copy_store(conn: sqlite3.Connection, path: Path, *, part: Path | None = None) -> None:
    """A consistent copy of the store's published tables (one read transaction's view, so a
    concurrent ingest never leaves it half-written), in the form `publish_copy` gives. Written to
    `part` (default: beside `path` + ".part") and renamed into place, so a reader of `path` never
    sees a partial file; a failure removes the part file and its journal.

    Written in one pass (`_write_published`): only the published tables' rows are copied, into a
    file that was never anything else. The older way (VACUUM INTO the whole store, then drop,
    rewrite and VACUUM the copy, and index the text twice: `copy_whole`) wrote 6.8x the copy's
    size (1.66 GB for a 245 MB copy of a 100k store, 9.7 s); it remains for a store this cannot
    copy (`_write_published` says False), and tests/test_snapshot_copy.py checks the two give
    the same file."""
    path = Path(path)
    tmp = Path(part) if part is not None else path.with_name(path.name + ".part")
    remove_partial(tmp)
    try:
        if not _write_published(conn, tmp):
            remove_partial(tmp)  # the empty tables it began with
            copy_whole(conn, tmp)
        os.replace(tmp, path)
    except BaseException:
        remove_partial(tmp)
        raise


def copy_whole(conn: sqlite3.Connection, tmp: Path) -> None:
    """The older way to the same file: the whole store copied (VACUUM INTO reads one
    transaction's view), its full-text index rebuilt, then stripped and compacted."""
    conn.execute("VACUUM INTO ?", (str(tmp),))
    prepare_copy(tmp)  # full-text search in the form Datasette detects (see directory.publish)
    publish_copy(tmp)  # the published tables only, compacted


# The attached copy's schema name inside the store's connection while `_write_published` runs.
_COPY = "atvira_copy"
_WITHOUT_ROWID = re.compile(r"\)\s*WITHOUT\s+ROWID\s*$", re.IGNORECASE)


def _write_published(conn: sqlite3.Connection, tmp: Path) -> bool:
    """Write the published tables of `conn`'s store into the new file `tmp`, as `copy_whole`
    does; False when it cannot (a transaction is open, the copy cannot be written, or the store
    has tables SQLite keeps itself), and `copy_whole` is then the way.

    1. The schema, from the store's own SQL: the copy's CREATE statements are the store's, the
       private columns dropped while the tables are empty (ALTER TABLE words it as on a full
       table), the full-text index made by prepare_copy in Datasette's form, still empty.
    2. The rows, table by table in rowid order with their rowids, inside one read transaction
       of the store. The R*Tree and the full-text index are copied as their shadow tables' rows:
       the store's own index, page for page, instead of every entry indexed again (the store
       keeps its full-text index with the same columns and tokenizer; if it ever did not, the
       copy's is rebuilt from the copied rows).
    3. The indexes (one sorted pass each), then the triggers (after the rows: they do not fire).

    The copy is a private part file until it is renamed into place (a crash leaves a part file
    that repair_snapshots removes), so it is written without a journal."""
    tmp.touch()  # the part file exists from the start: whatever a kill leaves is a part file to remove
    if conn.in_transaction:
        return False  # as VACUUM INTO, the copy is its own read transaction
    drop, private = published_tables(conn)
    dropped = set(drop)
    schema = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                          " ORDER BY rowid").fetchall()
    if any(name in ("sqlite_stat1", "sqlite_stat4", "sqlite_sequence") for _kind, name, _tbl, _sql in schema):
        return False  # tables SQLite keeps itself (the store has none: no ANALYZE, no AUTOINCREMENT)
    virtual = {name: sql.upper() for _type, name, _tbl, sql in schema if sql.upper().startswith("CREATE VIRTUAL TABLE")}
    shadow = {name for _type, name, _tbl, _sql in schema if any(name.startswith(v + "_") for v in virtual)}

    def kept(name: str, tbl: str) -> bool:
        return name not in dropped and tbl not in dropped and name not in shadow and tbl not in shadow

    # Full-text indexes are made by prepare_copy (Datasette's form), R*Trees from the store's SQL.
    tables = [(name, sql) for kind, name, tbl, sql in schema
              if kind == "table" and kept(name, tbl) and not name.startswith("sqlite_")
              and " USING FTS" not in virtual.get(name, "")]
    fts = [name for name in virtual if kept(name, name) and " USING FTS" in virtual[name]]
    out = sqlite3.connect(tmp, isolation_level=None)
    try:
        out.execute(f"PRAGMA page_size = {conn.execute('PRAGMA page_size').fetchone()[0]}")
        out.execute("PRAGMA journal_mode = OFF")
        out.execute("BEGIN")
        for _name, sql in tables:
            out.execute(sql)
        for table, cols in private.items():
            for col in cols:
                out.execute(f'ALTER TABLE "{table}" DROP COLUMN "{col}"')
        out.execute("COMMIT")
    finally:
        out.close()
    prepare_copy(tmp)  # on the empty tables: the index's schema, nothing to index yet
    copies: list[tuple[str, str, str, bool]] = []  # (table, columns, order, empty it first)
    early: set[str] = set()  # tables copied whole by SQLite's transfer: their indexes made before the rows
    rebuild: list[str] = []  # full-text indexes to build from the copied rows
    out = sqlite3.connect(tmp, isolation_level=None)
    try:
        made = {r[0]: r[1] for r in out.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")}

        def shadows(name: str) -> list[str]:  # a virtual table's shadow tables in the copy
            return sorted(n for n in made if n.startswith(name + "_"))

        def order(name: str) -> str:  # appended in key order: the fastest insert, a compact file
            return "" if _WITHOUT_ROWID.search(made[name]) else " ORDER BY rowid"

        def columns(name: str) -> list[str]:
            return [c[1] for c in out.execute(f'PRAGMA table_xinfo("{name}")') if c[6] == 0]  # stored ones

        for name, _sql in tables:
            if name in virtual:  # an R*Tree (the same tree, node for node); CREATE made an empty root
                copies += [(t, ", ".join(f'"{c}"' for c in columns(t)), order(t), True) for t in shadows(name)]
                continue
            info = out.execute(f'PRAGMA table_xinfo("{name}")').fetchall()
            cols = [f'"{c[1]}"' for c in info if c[6] == 0]
            keys = [c for c in info if c[5]]
            if name not in private and (not order(name) or (len(keys) == 1 and keys[0][2].upper() == "INTEGER")):
                # The store's own table, every column, its rowids named (an INTEGER PRIMARY KEY or
                # no rowid): INSERT ... SELECT * is SQLite's transfer, which appends the rows and,
                # when the copy's indexes exist already and match the store's, every index entry
                # in order (no sort, no row decoded). Were the transfer ever refused, the same
                # statement inserts the same rows and keys one by one.
                early.add(name)
                copies.append((name, "*", "", False))
                continue
            if order(name):  # a rowid table: its rowids kept, unless an INTEGER PRIMARY KEY names them
                if not (len(keys) == 1 and keys[0][2].upper() == "INTEGER"):
                    cols = ["rowid", *cols]
            copies.append((name, ", ".join(cols), order(name), False))
        for name in fts:
            if name not in made:
                continue  # prepare_copy makes only the facilities' index
            same = (columns(name) == [c[1] for c in conn.execute(f'PRAGMA table_xinfo("{name}")') if c[6] == 0]
                    and FTS_TOKENIZE.upper() in virtual[name]
                    and {t[len(name):] for t in shadows(name)} == {"_config", "_data", "_docsize", "_idx"}
                    and all(f"{name}{s}" in shadow for s in ("_config", "_data", "_docsize", "_idx")))
            if same:  # the store's own index (its _config, the format version, is the same library's)
                copies += [(f"{name}{s}", ", ".join(f'"{c}"' for c in columns(f"{name}{s}")), order(f"{name}{s}"), True)
                           for s in ("_data", "_docsize", "_idx")]
            else:
                rebuild.append(name)
        out.execute("BEGIN")
        for kind, name, tbl, sql in schema:
            if kind == "index" and tbl in early and kept(name, tbl):
                out.execute(sql)
        out.execute("COMMIT")
    finally:
        out.close()
    try:
        conn.execute(f"ATTACH DATABASE ? AS {_COPY}", (str(tmp),))
    except sqlite3.OperationalError:
        return False
    try:
        try:
            conn.execute(f"PRAGMA {_COPY}.user_version = {conn.execute('PRAGMA main.user_version').fetchone()[0]}")
        except sqlite3.OperationalError:  # attached read-only
            return False
        conn.execute(f"PRAGMA {_COPY}.application_id = {conn.execute('PRAGMA main.application_id').fetchone()[0]}")
        conn.execute(f"PRAGMA {_COPY}.journal_mode = OFF")
        conn.execute(f"PRAGMA {_COPY}.synchronous = OFF")
        conn.execute("BEGIN")  # one read transaction of the store: every table from the same view
        try:
            conn.execute("PRAGMA defer_foreign_keys = ON")  # checked once at the end, whatever the table order
            for name, cols, order, clear in copies:
                if clear:
                    conn.execute(f'DELETE FROM {_COPY}."{name}"')
                if cols == "*":  # the transfer's form: no column list, no ORDER BY
                    conn.execute(f'INSERT INTO {_COPY}."{name}" SELECT * FROM main."{name}"')
                else:
                    conn.execute(f'INSERT INTO {_COPY}."{name}"({cols}) SELECT {cols} FROM main."{name}"{order}')
            for name in rebuild:
                conn.execute(f'INSERT INTO {_COPY}."{name}"("{name}") VALUES (\'rebuild\')')
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    finally:
        conn.execute(f"DETACH DATABASE {_COPY}")
    out = sqlite3.connect(tmp, isolation_level=None)
    try:
        out.execute("PRAGMA journal_mode = OFF")
        out.execute("BEGIN")
        for kind, name, tbl, sql in schema:  # indexes, then triggers (and views), as the store has them
            if kind == "index" and kept(name, tbl) and tbl not in early:
                out.execute(sql)
        for kind, name, tbl, sql in schema:
            if kind in ("trigger", "view") and kept(name, tbl):
                out.execute(sql)
        out.execute("COMMIT")
    finally:
        out.close()
    return True


def remove_partial(path: Path) -> None:
    """A part file and the journal / WAL SQLite may have left beside it."""
    for extra in ("", "-journal", "-wal", "-shm"):
        try:
            Path(str(path) + extra).unlink(missing_ok=True)
        except OSError:  # e.g. its directory is a file: there is nothing to remove
            pass


def is_whole(query: FacilityQuery) -> bool:
    """No filter at all (the store copy is then the honest answer to a .sqlite request)."""
    return query == FacilityQuery(limit=query.limit)


def write_file(conn: sqlite3.Connection, query: FacilityQuery, fmt: str, path: Path, *,
               cancelled: Cancelled = _never) -> int | None:
    """Write one export to `path` (the CLI's `atvira export` and the file-based downloads)."""
    fmt = parse_format(fmt)
    check_writable(Path(path))
    if fmt == "sqlite" and is_whole(query):
        copy_store(conn, Path(path))  # its own consistent read transaction (so not inside read_view)
        return None
    with read_view(conn):
        return _write_file(conn, query, fmt, Path(path), cancelled=cancelled)


def check_writable(path: Path) -> None:
    """Refuse, before any work, a target whose folder is missing, is a file or cannot be written:
    one clear line naming the path instead of a traceback from deep inside a writer."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError("is a folder; give a file name to write", where=str(path))
    if not folder.exists():
        raise InputError(f"the folder {folder} does not exist; create it first or choose another path", where=str(path))
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", where=str(path))
    if not os.access(folder, os.W_OK):
        raise InputError(f"the folder {folder} is not writable", where=str(path))


def _write_file(conn: sqlite3.Connection, query: FacilityQuery, fmt: str, path: Path, *,
                cancelled: Cancelled = _never) -> int | None:
    if fmt in ("csv", "geojson"):
        chunks = csv_chunks(conn, query) if fmt == "csv" else geojson_chunks(conn, query)
        with open(path, "wb") as fh:
            fh.writelines(chunks)
        return None
    if fmt == "gpkg":
        return write_gpkg(conn, query, path, cancelled=cancelled)
    return write_sqlite_slice(conn, query, path, cancelled=cancelled)


def temp_file_chunks(conn: sqlite3.Connection, query: FacilityQuery, fmt: str, *, tmp_dir: Path | None = None,
                     block: int = 1 << 20, cancelled: Cancelled = _never) -> Iterator[bytes]:
    """Formats that need a finished file (GeoPackage, SQLite): write to a temporary file, stream
    it in blocks, and delete it when the response is done (or abandoned)."""
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(suffix=f".{fmt}", dir=tmp_dir)
    os.close(fd)
    path = Path(name)
    try:
        write_file(conn, query, fmt, path, cancelled=cancelled)
        with open(path, "rb") as fh:
            while data := fh.read(block):
                yield data
    finally:
        path.unlink(missing_ok=True)
        for extra in (path.with_name(path.name + ".part"),):
            extra.unlink(missing_ok=True)


def content_version(conn: sqlite3.Connection) -> str:
    """What the published data depends on: schema, last change, the areas (index look-ups only)."""
    seq = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
    areas = conn.execute("SELECT count(*) FROM areas").fetchone()[0]
    return f"{SCHEMA_VERSION}-{seq}-{areas}"


def cached_whole_chunks(conn: sqlite3.Connection, fmt: str, *, cache_dir: Path,
                        block: int = 1 << 20) -> Iterator[bytes]:
    """The unfiltered GeoPackage / SQLite file of the store's current content, built once per
    content version into `cache_dir` (older versions deleted) and streamed from there: the
    whole-country GeoPackage takes a minute to write, and after an ingest many people want it."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"facilities-{content_version(conn)}.{fmt}"
    if not path.exists():
        fd, name = tempfile.mkstemp(prefix="building-", suffix=f".{fmt}", dir=cache_dir)
        os.close(fd)
        tmp = Path(name)
        try:
            write_file(conn, FacilityQuery(), fmt, tmp)
            os.replace(tmp, path)  # readers see the whole file or none
        finally:
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".part").unlink(missing_ok=True)
        for old in cache_dir.glob(f"facilities-*.{fmt}"):
            if old != path:
                old.unlink(missing_ok=True)
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below; an open file survives a later unlink)
    except FileNotFoundError:  # a newer version replaced it between the check and the open
        yield from temp_file_chunks(conn, FacilityQuery(), fmt, tmp_dir=cache_dir)
        return
    with fh:
        while data := fh.read(block):
            yield data


def cached_filtered_chunks(conn: sqlite3.Connection, query: FacilityQuery, fmt: str, *, cache_dir: Path,
                           cap_bytes: int, cancelled: Cancelled = _never, block: int = 1 << 20) -> Iterator[bytes]:
    """A filtered GeoPackage / SQLite file built once per (content version, filter) into
    `cache_dir`, then streamed from there; the directory is kept under `cap_bytes` (least
    recently served files go first). One builder per file (an flock), so a burst of the same
    request builds it once. A filter on "open now" depends on the clock too: never cached.
    The build stops (ExportCancelled) when `cancelled()` says the client left."""
    if query.open_states:
        yield from temp_file_chunks(conn, query, fmt, tmp_dir=cache_dir, block=block, cancelled=cancelled)
        return
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{content_version(conn)}|{fmt}|{query!r}".encode()).hexdigest()[:32]
    path = cache_dir / f"filtered-{key}.{fmt}"
    with open(cache_dir / f"filtered-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker building the same file: wait for it
        if not path.exists():
            fd, name = tempfile.mkstemp(prefix="building-", suffix=f".{fmt}", dir=cache_dir)
            os.close(fd)
            tmp = Path(name)
            try:
                write_file(conn, query, fmt, tmp, cancelled=cancelled)
                os.replace(tmp, path)
            finally:
                remove_partial(tmp)
        fh = open(path, "rb")  # noqa: SIM115 (closed below; an open file survives eviction)
    os.utime(path)  # served: the most recently used
    evict(cache_dir, cap_bytes=cap_bytes, keep=path)
    with fh:
        while data := fh.read(block):
            yield data


def evict(cache_dir: Path, *, cap_bytes: int, keep: Path | None = None) -> list[Path]:
    """Delete the least recently served filtered files until the directory holds <= cap_bytes."""
    files = []
    for p in Path(cache_dir).glob("filtered-*.*"):
        if p.suffix == ".lock":
            continue
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        files.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in files)
    removed = []
    for _mtime, size, p in sorted(files):
        if total <= cap_bytes:
            break
        if p == keep:
            continue
        p.unlink(missing_ok=True)
        p.with_suffix(".lock").unlink(missing_ok=True)
        total -= size
        removed.append(p)
    return removed


def export_connection(db: Path) -> sqlite3.Connection:
    """A read-only connection for one whole export (a download, `atvira export`).

    Without memory-mapping: a full export reads the whole file, and mapped pages count in the
    process's RSS, so a mapped export's memory would grow with the data (418 MB at 1M).
    """
    conn = connect(db, readonly=True)
    conn.execute("PRAGMA mmap_size = 0")
    return conn


def download_chunks(db: Path, query: FacilityQuery, fmt: str, *, tmp_dir: Path | None = None,
                    cancelled: Cancelled = _never, cache_bytes: int = 2_000_000_000) -> Iterator[bytes]:
    """The byte stream of one download, on its own read-only connection.

    Its own connection (`export_connection`), because a download holds one read transaction for
    its whole length (the serving thread's shared handle must not).
    """
    fmt = parse_format(fmt)
    conn = export_connection(db)
    try:
        if fmt == "csv":
            yield from csv_chunks(conn, query)
        elif fmt == "geojson":
            yield from geojson_chunks(conn, query)
        elif is_whole(query) and tmp_dir is not None:
            yield from cached_whole_chunks(conn, fmt, cache_dir=tmp_dir)
        elif tmp_dir is not None:
            yield from cached_filtered_chunks(conn, query, fmt, cache_dir=tmp_dir, cap_bytes=cache_bytes,
                                              cancelled=cancelled)
        else:
            yield from temp_file_chunks(conn, query, fmt, tmp_dir=tmp_dir, cancelled=cancelled)
    except ExportCancelled:
        return  # the client left: nothing to send it, nothing kept
    finally:
        conn.close()
