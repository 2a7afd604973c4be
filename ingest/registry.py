"""Registry exports and municipal uploads -> Facility records, through a mapping file.

`rows_to_records` is pure: rows in, records and row problems out. `run_registry` is the one core
operation behind `atvira ingest registry` (read files or fetch Spinta pages, check, apply).

Rows without a position (0/blank coordinates) become facilities without a map point: listed and
searchable, counted in the report. A strict mapping (municipal uploads) is all-or-nothing: every
problem of every row is reported at once (line, field, problem) and nothing is written.
"""

from __future__ import annotations

import sqlite3
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from directory.config import Settings
from directory.conflate import fold, make_matcher, thresholds_from
from directory.errors import InputError
from directory.model import Facility, Rejection
from directory.sectors import decide as decide_sector
from directory.sync import IngestReport, Locator, apply_records

from . import spinta
from .coords import CoordinateError, to_wgs84
from .mapping import Mapping, ValueMap
from .tabular import Row, parse_number, parse_wkt_point, read_rows

FEATURE_RANK = {"yes": 3, "limited": 2, "no": 1}


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.message}"


class UploadRefused(InputError):
    """A strict file had problems: none of it was written. `problems` lists every one."""

    def __init__(self, problems: list[Problem], *, where: str) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"refused, nothing was written: {len(problems)} problem(s)\n{lines}", where=where)


@dataclass
class Conversion:
    """What a file turned into: records (and rejections) for apply_records, and row problems."""

    records: list[Facility | Rejection] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: int = 0  # rows of a type the mapping does not list (e.g. schools in a register)
    unnamed: int = 0  # rows named from name_default


def cell(row: Row, spec: str | None) -> str | None:
    """A cell as trimmed text (None when blank). `spec` is a column or a `{col} {col}` template."""
    if not spec:
        return None
    if "{" in spec:
        names = [f for _, f, _, _ in string.Formatter().parse(spec) if f]
        filled = {f: cell(row, f) or "" for f in names}
        if not any(filled.values()):
            return None
        text = " ".join(spec.format_map(filled).split())
        return text.strip(" ,;-") or None
    value = row.values.get(spec)
    if value is None:
        return None
    text = _text(value).strip()
    return text or None


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):  # a Spinta ref: {"_id": ...}
        return str(value.get("_id") or next(iter(value.values()), ""))
    return str(value)


def _mapped(row: Row, vm: ValueMap) -> tuple[str | None, str | None]:
    """(value, raw cell) of a ValueMap for a row."""
    raw = cell(row, vm.column) if vm.column else None
    if raw is not None and vm.when_present:
        return vm.when_present, raw
    if raw is not None:
        if raw in vm.values:
            return vm.values[raw], raw
        folded = {fold(k): v for k, v in vm.values.items()}
        if fold(raw) in folded:
            return folded[fold(raw)], raw
    return vm.default, raw


def _listed(vm: ValueMap, raw: str) -> bool:
    """Whether a cell is one of the map's values (not merely given its default)."""
    return not vm.values or raw in vm.values or fold(raw) in {fold(k) for k in vm.values}


def _position(row: Row, m: Mapping) -> tuple[float, float] | None:
    """(lon, lat) or None; raises CoordinateError / ValueError naming what is wrong.

    A GeoJSON/GeoPackage geometry is used when the coordinate columns are blank or absent.
    """
    pos = _column_position(row, m)
    if pos is None and row.point is not None:
        return to_wgs84(*row.point, crs=row.crs or m.crs)
    return pos


def _column_position(row: Row, m: Mapping) -> tuple[float, float] | None:
    if m.wkt and row.values.get(m.wkt) not in (None, ""):
        xy = parse_wkt_point(row.values.get(m.wkt))
        return None if xy is None else to_wgs84(*xy, crs=m.crs)
    if m.lon and m.lat:
        lon, lat = parse_number(row.values.get(m.lon)), parse_number(row.values.get(m.lat))
        if (lon is None) != (lat is None):
            raise CoordinateError("only one of longitude and latitude is given")
        return to_wgs84(lon, lat, crs="EPSG:4326") if lon is not None else None
    if m.x and m.y:
        x, y = parse_number(row.values.get(m.x)), parse_number(row.values.get(m.y))
        if (x is None) != (y is None) and (x or y):
            raise CoordinateError("only one of the two coordinates is given")
        return to_wgs84(x, y, crs=m.crs)
    return None


def _coerce(value: str | None, typ: str) -> Any:
    if value is None:
        return None
    if typ == "int":
        n = parse_number(value)
        return None if n is None else int(n)
    if typ == "float":
        return parse_number(value)
    if typ == "bool":
        return fold(value) in ("1", "true", "yes", "taip", "y", "t")
    return value


def _aggregate(agg: str, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if agg == "sum":
        return sum(present)
    if agg == "min":
        return min(present)
    if agg == "max":
        return max(present)
    if agg == "set":
        return sorted({str(v) for v in present})
    return present[0]


def _check_place(fac: Facility, where: str, m: Mapping, row: Row, locator: Locator | None) -> Problem | None:
    """A point outside the loaded areas, with a hint when swapping the axes would fix it."""
    if fac.lon is None or locator is None or locator.is_empty:
        return None
    if locator.locate(fac.lon, fac.lat)[0] is not None:
        return None
    if -90 <= fac.lon <= 90 and locator.locate(fac.lat, fac.lon)[0] is not None:
        cols = f"{m.lat}/{m.lon}" if m.lat else "coordinates"
        return Problem(where, cols, f"latitude and longitude look swapped: ({fac.lon:g}, {fac.lat:g}) is outside"
                                    f" the loaded areas, ({fac.lat:g}, {fac.lon:g}) is inside")
    return Problem(where, "position", f"point (lon {fac.lon:.6f}, lat {fac.lat:.6f}) is outside the loaded areas")


def rows_to_records(rows: Iterable[Row], m: Mapping, *, fetched_at: str | None = None,
                    locator: Locator | None = None) -> Conversion:
    """Convert rows; with `aggregate`, rows sharing an id become one facility (sums, sets, any)."""
    out = Conversion()
    groups: dict[str, list[tuple[Row, dict[str, Any]]]] = {}
    first_line: dict[str, str] = {}
    for row in rows:
        problems: list[Problem] = []
        sid = cell(row, m.id)
        if sid is None:
            out.problems.append(Problem(row.where, m.id, "empty id"))
            continue
        category, raw_cat = _mapped(row, m.category)
        if category == "skip":
            out.skipped += 1
            continue
        if category is None:
            what = f"unknown value {raw_cat!r}" if raw_cat else "empty"
            problems.append(Problem(row.where, m.category.column or "category", what))
        try:
            pos = _position(row, m)
        except (CoordinateError, ValueError) as exc:
            problems.append(Problem(row.where, "/".join(c for c in (m.lat or m.x or m.wkt, m.lon or m.y) if c)
                                    or "position", str(exc)))
            pos = None
        features: dict[str, str] = {}
        for fname, vm in m.features.items():
            value, raw = _mapped(row, vm)
            if value is None and raw is not None and m.strict:
                problems.append(Problem(row.where, vm.column or fname, f"{raw!r} is not one of yes, limited, no"))
            elif value is not None:
                features[fname] = value
        extras: dict[str, Any] = {}
        for ename, rule in m.extra.items():
            try:
                extras[ename] = _coerce(cell(row, rule.column), rule.type)
            except ValueError as exc:
                problems.append(Problem(row.where, rule.column, str(exc)))
        name = next((n for n in (cell(row, c) for c in m.name_columns) if n), None)
        if name is None and m.strict:
            problems.append(Problem(row.where, m.name_columns[0], "empty name"))
        sector, raw_sector = _mapped(row, m.sector)
        # Which rule gave the value (directory/sectors.py): the register's own column, or the
        # mapping's default for every row (weaker than a legal form in the name).
        sector_rule = "register" if (raw_sector is not None and m.sector.column
                                     and (not m.sector.values or _listed(m.sector, raw_sector))) else "register_default"
        if raw_sector is not None and m.strict and (sector is None or not _listed(m.sector, raw_sector)):
            problems.append(Problem(row.where, m.sector.column or "sector", f"unknown value {raw_sector!r}"))
        status, _ = _mapped(row, m.status)
        municipality = None
        if m.municipality.column:
            raw_code = cell(row, m.municipality.column)
            municipality = m.municipality.values.get(raw_code, raw_code) if raw_code else None
        parsed = {"name": name, "category": category, "pos": pos, "features": features, "extra": extras,
                  "municipality": municipality or m.municipality.default,
                  "sector": sector, "sector_rule": sector_rule, "status": status, "address": cell(row, m.address),
                  "operator": cell(row, m.operator), "opening_hours": cell(row, m.opening_hours)}
        if pos is not None and not problems:
            probe = Facility(source=m.name, source_id=sid, name="", categories=[], lon=pos[0], lat=pos[1], licence="")
            outside = _check_place(probe, row.where, m, row, locator)
            if outside:
                problems.append(outside)
        if problems:
            out.problems.extend(problems)
            out.records.append(Rejection(sid, "; ".join(f"{p.field}: {p.message}" for p in problems), row.where))
            parsed["bad"] = True
        if sid in groups and not m.aggregate:
            out.problems.append(Problem(row.where, m.id, f"duplicate id {sid!r} (first at {first_line[sid]})"))
            continue
        groups.setdefault(sid, []).append((row, parsed))
        first_line.setdefault(sid, row.where)
    for sid, members in groups.items():
        if any(p.get("bad") for _, p in members):
            continue  # already a Rejection: keeps what the store had
        out.records.append(_build(sid, members, m, fetched_at=fetched_at, out=out))
    return out


def _build(sid: str, members: list[tuple[Row, dict[str, Any]]], m: Mapping, *, fetched_at: str | None,
           out: Conversion) -> Facility:
    parts = [p for _, p in members]

    def first(key: str) -> Any:
        return next((p[key] for p in parts if p[key] is not None), None)

    name = first("name")
    if name is None:
        out.unnamed += 1
        name = cell(members[0][0], m.name_default) if m.name_default else ""
    pos = first("pos")
    features: dict[str, str] = {}
    for p in parts:  # aggregated: the best value any member states ("yes" if any group is suitable)
        for k, v in p["features"].items():
            if FEATURE_RANK[v] > FEATURE_RANK.get(features.get(k, ""), 0):
                features[k] = v
    extra = {}
    for ename, rule in m.extra.items():
        value = _aggregate(rule.agg, [p["extra"].get(ename) for p in parts])
        if value is not None:
            extra[ename] = value
    if m.aggregate and len(parts) > 1:
        extra.setdefault("rows", len(parts))
    said = next(((p["sector"], p["sector_rule"]) for p in parts if p["sector"] not in (None, "unknown")),
                (None, "register_default"))
    folded = fold(name or "")
    prefix = next((value for key, value in m.sector_prefixes.items() if folded.startswith(fold(key))), None)
    sector = decide_sector(
        register=said[0] if said[1] == "register" else None, name_prefix=prefix,
        operator=first("operator"), name=name, register_default=said[0] if said[1] == "register_default" else None)
    extra.update(sector.extra())
    return Facility(
        source=m.name, source_id=sid, name=name or "", categories=[first("category")],
        lon=pos[0] if pos else None, lat=pos[1] if pos else None, licence=m.licence,
        # Without a position the loaded areas cannot place it: the municipality the source states
        # (the mapping's `municipality`) keeps it counted there (audit rule 5).
        municipality_code=None if pos else first("municipality"),
        address=first("address"), operator=first("operator"), sector=sector.sector, features=features,
        opening_hours=first("opening_hours"), status=first("status") or "active", fetched_at=fetched_at,
        extra=extra,
    )


def check_size(path: Path, *, limit: int) -> None:
    """Refuse a file over `limit` bytes (ATVIRA_MAX_UPLOAD_BYTES) without reading it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None
    if limit and size > limit:
        raise InputError(f"the file is {_size(size)}, over the {_size(limit)} limit (ATVIRA_MAX_UPLOAD_BYTES);"
                         " split it, or raise the limit", where=str(path))


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1_000_000 else f"{n / 1e6:,.1f} MB"


def required_columns(m: Mapping, row: Row) -> list[str]:
    """The columns a mapping cannot do without that this file's first row lacks.

    A file without the id, name or category column (or, for a strict upload, its coordinate
    columns) is the wrong file: every row would be refused, and a full run would then mark every
    record of the source removed. Refusing it whole keeps the store as it was.
    """
    def fields(spec: str | None) -> list[str]:
        if not spec:
            return []
        return [f for _, f, _, _ in string.Formatter().parse(spec) if f] if "{" in spec else [spec]

    need = fields(m.id) + ([m.category.column] if m.category.column else [])
    missing = [c for c in need if c not in row.values]
    if not any(c in row.values for c in m.name_columns):
        missing.append(" or ".join(m.name_columns))
    if m.strict and row.crs is None:  # a GeoJSON/GeoPackage row has its geometry instead
        missing += [c for c in (m.lat, m.lon, m.x, m.y, m.wkt) if c and c not in row.values]
    return missing


def file_rows(path: Path, m: Mapping) -> Iterator[Row]:
    """The rows of one file, refused whole when it lacks a needed column or has no rows at all."""
    n = 0
    for row in read_rows(path, fmt=m.format):
        if n == 0 and (missing := required_columns(m, row)):
            raise InputError(f"no column {', '.join(repr(c) for c in missing)} (the {m.name} mapping needs it)",
                             where=f"{path.name}:1")
        n += 1
        yield row
    if n == 0:
        raise InputError("no rows, only a header (or nothing): nothing was changed", where=path.name)


def spinta_rows(pages: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[Row]:
    """Rows of Spinta getall pages (where: URL#record N)."""
    n = 0
    for url, payload in pages:
        for rec in payload["_data"]:
            n += 1
            yield Row(where=f"{url}#record {n}", values=rec)


def run_registry(
    conn: sqlite3.Connection,
    mapping: Mapping,
    files: list[Path],
    *,
    settings: Settings,
    locator: Locator | None,
    fetched_at: str,
    scope: str | None = None,
    session: Any = None,
    actor: str | None = None,
) -> tuple[IngestReport, Conversion]:
    """Ingest one source: its FILEs (together, one run) or, with none, a live Spinta fetch.

    A strict mapping raises UploadRefused before anything is written when any row is wrong.
    """
    if files:
        for path in files:  # every size first: a 200 MB upload is refused before anything is parsed
            check_size(path, limit=settings.max_upload_bytes)
        rows: Iterable[Row] = (r for path in files for r in file_rows(path, mapping))
        label = ",".join(p.name for p in files)
    else:
        if not mapping.url:
            raise InputError("this mapping has no `url` for a live fetch; give the FILE(s) to read",
                             where=str(mapping.path))
        if session is None:
            raise InputError("a live fetch needs an HTTP session", where=mapping.url)
        url = spinta.model_url(settings.spinta_url, mapping.url, limit=10_000)
        # The session (ingest.http) carries the retries; one Spinta page needs no more than two minutes.
        rows = spinta_rows(spinta.fetch_pages(url, session=session, timeout=min(settings.http_timeout, 120.0)))
        label = url
    conv = rows_to_records(rows, mapping, fetched_at=fetched_at, locator=locator)
    if mapping.strict and conv.problems:
        raise UploadRefused(conv.problems, where=label)
    for p in conv.problems:
        if not any(isinstance(r, Rejection) and r.where == p.where for r in conv.records):
            conv.records.append(Rejection(p.where, f"{p.field}: {p.message}", p.where))
    report = apply_records(
        conn, conv.records, source=mapping.name, scope=scope or "full", locator=locator,
        matcher=make_matcher(thresholds_from(settings)), actor=actor,
    )
    return report, conv


def check_municipality(files: list[Path], mapping: Mapping, *, locator: Locator, codes: Iterable[str],
                       limit: int) -> list[Problem]:
    """Every row of a web upload that is not inside `codes` (an editor's municipality), plus
    every problem the strict conversion finds: all listed before anything is written."""
    allowed = set(codes)
    problems: list[Problem] = []
    for path in files:
        check_size(path, limit=limit)
        for row in file_rows(path, mapping):
            conv = rows_to_records([row], mapping, locator=locator)
            problems.extend(conv.problems)
            for rec in conv.records:
                if not isinstance(rec, Facility):
                    continue
                if rec.lon is None:
                    problems.append(Problem(row.where, "position", "no position: cannot tell that it is in your"
                                                                   " municipality"))
                    continue
                code = locator.locate(rec.lon, rec.lat)[0]
                if code not in allowed:
                    problems.append(Problem(row.where, "position", f"point (lon {rec.lon:.6f}, lat {rec.lat:.6f})"
                                            f" is outside your municipality ({', '.join(sorted(allowed))})"))
    return problems
