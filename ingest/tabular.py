"""Tabular source files -> rows: CSV (any Lithuanian dialect), JSON / JSON Lines (Spinta), GeoJSON, GeoPackage.

Parse half only (pure, no network): every reader yields `Row`s that carry where they came from
(`file:line`, or `file:feature N`), so a problem found later is reported at its line.

CSV dialect detection, because registry exports disagree on all of it:
  * encoding: a UTF-8 BOM is dropped; text that is not valid UTF-8 is read as Windows-1257
    (the Baltic code page Lithuanian Excel writes);
  * delimiter: `,` `;` or tab, chosen by which splits the header and first lines consistently;
  * numbers: `12,5` (decimal comma) and `12.5` both parse (see `parse_number`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from directory.errors import InputError

FORMATS = ("csv", "json", "jsonl", "geojson", "gpkg")


@dataclass(slots=True)
class Row:
    where: str  # file:line (CSV, JSONL), file:record N (JSON), file:feature N (GeoJSON/GPKG)
    values: dict[str, Any]
    # A geometry that came with the row (GeoJSON/GPKG point, already x/y in `crs`), if any.
    point: tuple[float, float] | None = None
    crs: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def guess_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in ((".csv", "csv"), (".txt", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
                        (".geojson", "geojson"), (".gpkg", "gpkg"), (".json", "json")):
        if name.endswith(suffix):
            return fmt
    raise InputError(f"cannot tell the format from the file name; set `format` in the mapping ({', '.join(FORMATS)})",
                     where=str(path))


def decode_text(data: bytes, *, name: str = "") -> tuple[str, str]:
    """(text, encoding name): UTF-8 with or without BOM, else Windows-1257.

    Bytes that are neither (five codes are unassigned in 1257) are refused at their line rather
    than guessed at: the file is in some other encoding, or damaged.
    """
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        return (data[3:].decode("utf-8"), "utf-8-sig") if bom else (data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        if bom:  # it says it is UTF-8, and is not
            raise _undecodable(data, exc.start + 3, "not UTF-8 text (it starts with a UTF-8 BOM)", name=name) from None
    try:
        return data.decode("cp1257"), "cp1257"
    except UnicodeDecodeError as exc:
        raise _undecodable(data, exc.start, "neither UTF-8 nor Windows-1257 text", name=name) from None


def _undecodable(data: bytes, at: int, what: str, *, name: str) -> InputError:
    line = data.count(b"\n", 0, at) + 1
    return InputError(f"{what}: byte 0x{data[at]:02x} cannot be read; save the file as UTF-8", where=f"{name}:{line}")


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the same number (>1) of fields."""
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    best, best_score = ",", -1
    for delim in (";", ",", "\t"):
        widths = [len(r) for r in csv.reader(lines, delimiter=delim)]
        if not widths or widths[0] < 2:
            continue
        consistent = sum(1 for w in widths if w == widths[0])
        score = consistent * 1000 + widths[0]
        if score > best_score:
            best, best_score = delim, score
    return best


def read_csv(data: bytes, *, name: str) -> Iterator[Row]:
    text, _ = decode_text(data, name=name)
    delim = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError("the file is empty", where=name) from None
    dupes = {h for h in header if header.count(h) > 1 and h}
    if dupes:
        raise InputError(f"duplicate column names: {', '.join(sorted(dupes))}", where=f"{name}:1")
    line = 1
    for cells in reader:
        start, line = line + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            extra_cells = cells[len(header):]
            if any(c.strip() for c in extra_cells):
                raise InputError(f"{len(cells)} fields but the header has {len(header)}", where=f"{name}:{start}")
        values = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}
        yield Row(where=f"{name}:{start}", values=values)
    if line > 1:
        _check_last_record(text, start=start, delim=delim, name=name)


def _check_last_record(text: str, *, start: int, delim: str, name: str) -> None:
    """The csv module (non-strict) takes an unclosed quote to the end of the file as one field;
    a file cut short in the middle of a quoted field is refused at that record instead."""
    tail = "".join(io.StringIO(text, newline="").readlines()[start - 1:])  # lines as csv counts them
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delim, strict=True):
            pass
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise InputError("a quoted field is never closed (is the file cut short?)", where=f"{name}:{start}") from None


def _records_of(payload: Any, *, name: str) -> list[Any]:
    if isinstance(payload, dict) and isinstance(payload.get("_data"), list):
        return payload["_data"]  # Spinta getall
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and payload.get("type") == "FeatureCollection":
        raise InputError("this is GeoJSON: name the file .geojson or set format = \"geojson\"", where=name)
    raise InputError("expected a JSON list of objects or a Spinta answer with `_data`", where=name)


def read_json(data: bytes, *, name: str) -> Iterator[Row]:
    """A JSON list of objects, or one Spinta page (`{"_data": [...], "_page": {...}}`)."""
    text, _ = decode_text(data, name=name)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", where=f"{name}:{exc.lineno}") from None
    except RecursionError:
        raise InputError("JSON nested too deeply to be a list of records", where=name) from None
    for i, rec in enumerate(_records_of(payload, name=name), 1):
        if not isinstance(rec, dict):
            raise InputError("a record is not a JSON object", where=f"{name}:record {i}")
        yield Row(where=f"{name}:record {i}", values=rec)


def read_jsonl(data: bytes, *, name: str) -> Iterator[Row]:
    """JSON Lines (Spinta's `jsonl` format): one object per line."""
    text, _ = decode_text(data, name=name)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", where=f"{name}:{n}") from None
        except RecursionError:
            raise InputError("JSON nested too deeply to be a record", where=f"{name}:{n}") from None
        if not isinstance(rec, dict):
            raise InputError("the line is not a JSON object", where=f"{name}:{n}")
        yield Row(where=f"{name}:{n}", values=rec)


def read_geo(path: Path) -> Iterator[Row]:
    """GeoJSON / GeoPackage points through geopandas (the edge where geopandas belongs)."""
    import geopandas as gpd  # heavy (~0.5 s): only GeoJSON/GeoPackage inputs pay for it

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises many kinds for unreadable files
        raise InputError(f"cannot read: {exc}", where=str(path)) from None
    epsg = gdf.crs.to_epsg() if gdf.crs is not None else 4326
    crs = f"EPSG:{epsg}" if epsg else None
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    for i, (props, geom) in enumerate(zip(gdf[columns].to_dict("records"), gdf.geometry), 1):
        values = {k: _plain(v) for k, v in props.items()}
        point = None
        if geom is not None and not geom.is_empty:
            if geom.geom_type != "Point":
                geom = geom.representative_point()
            point = (float(geom.x), float(geom.y))
        yield Row(where=f"{path.name}:feature {i}", values=values, point=point, crs=crs)


def _plain(value: Any) -> Any:
    """pandas/numpy scalars and NaN as plain Python (NaN and NaT are blank)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    try:
        import pandas as pd  # already loaded by read_geo, the only caller with pandas values

        if pd.isna(value):
            return None
    except (TypeError, ValueError, ImportError):
        pass
    return value


def read_rows(path: Path, *, fmt: str | None = None, data: bytes | None = None) -> Iterator[Row]:
    """Every row of a tabular file, whatever its format."""
    fmt = fmt or guess_format(path)
    if fmt in ("geojson", "gpkg"):
        yield from read_geo(path)
        return
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", where=str(path)) from None
    reader = {"csv": read_csv, "json": read_json, "jsonl": read_jsonl}.get(fmt)
    if reader is None:
        raise InputError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})", where=str(path))
    yield from reader(data, name=path.name)


# --- values -----------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def parse_number(value: Any) -> float | None:
    """A number from a cell: `12.5`, `12,5` (decimal comma), `1 234,5`; blank -> None.

    Raises ValueError with the reason when the cell is not blank and not a number.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    if not _NUMBER.match(text):
        raise ValueError(f"{str(value)!r} is not a number")
    return float(text.replace(",", "."))


_WKT_POINT = re.compile(r"^\s*(?:SRID=(\d+);)?\s*POINT\s*(?:Z|M|ZM)?\s*\(\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)(?:\s+[-+0-9.eE]+)*\s*\)\s*$",
                        re.IGNORECASE)


def parse_wkt_point(text: Any) -> tuple[float, float] | None:
    """x, y of a WKT `POINT (x y)` (Spinta's geometry encoding); None for blank/`POINT EMPTY`.

    Raises ValueError for anything else (a polygon, a typo).
    """
    if text is None or not str(text).strip() or re.match(r"^\s*POINT\s+EMPTY\s*$", str(text), re.I):
        return None
    m = _WKT_POINT.match(str(text))
    if not m:
        raise ValueError(f"not a WKT POINT: {str(text)[:60]!r}")
    return float(m.group(2)), float(m.group(3))
