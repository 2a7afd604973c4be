"""Mapping files: how one registry export or municipal file becomes Facility records.

A new municipality's export needs a TOML file here, not code. The format is documented with an
example in docs/mappings.md; `ingest/mappings/*.toml` are the shipped ones. A mapping is read
with the standard library's tomllib and checked whole, so a typo is reported with its key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from directory.errors import InputError
from directory.model import CATEGORIES, FEATURE_VALUES, FEATURES, STATUSES
from directory.sectors import DETAILS as SECTOR_DETAILS

from .coords import CRS_CHOICES
from .tabular import FORMATS

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
AGGREGATES = ("first", "sum", "min", "max", "set")
TYPES = ("str", "int", "float", "bool")


@dataclass(frozen=True, slots=True)
class ValueMap:
    """A column whose cells are translated through `values` (unlisted cells: `default`)."""

    column: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    # cell text -> value when the cell merely is not blank (e.g. a closing date means "closed")
    when_present: str | None = None


@dataclass(frozen=True, slots=True)
class ExtraRule:
    column: str
    type: str = "str"
    agg: str = "first"


@dataclass(frozen=True, slots=True)
class Mapping:
    name: str
    title: str
    licence: str
    path: Path
    format: str | None = None
    url: str | None = None  # Spinta model path or URL for a live fetch
    strict: bool = False  # refuse the whole file when any row is wrong (municipal uploads)
    aggregate: bool = False  # rows sharing an id are one place (e.g. kindergarten groups)
    id: str = "id"
    name_columns: tuple[str, ...] = ("name",)
    name_default: str | None = None  # a template used when every name column is blank
    address: str | None = None
    operator: str | None = None
    opening_hours: str | None = None
    crs: str = "EPSG:4326"
    x: str | None = None
    y: str | None = None
    lon: str | None = None
    lat: str | None = None
    wkt: str | None = None
    category: ValueMap = field(default_factory=ValueMap)
    sector: ValueMap = field(default_factory=ValueMap)
    sector_prefixes: dict[str, str] = field(default_factory=dict)
    status: ValueMap = field(default_factory=ValueMap)
    features: dict[str, ValueMap] = field(default_factory=dict)
    extra: dict[str, ExtraRule] = field(default_factory=dict)
    # The municipality code a record without a position belongs to: a constant (`municipality =
    # "13"`: the Vilnius register is all Vilnius) or a column (`[municipality] column = ...`,
    # with optional `values` translating cells to codes). A record with a position is placed by
    # the loaded areas instead.
    municipality: ValueMap = field(default_factory=ValueMap)


def _municipality(path: Path, raw: Any) -> ValueMap:
    """`municipality = "13"` or `[municipality] column = "SAV_KODAS"` (codes as text)."""
    if raw is None:
        return ValueMap()
    if isinstance(raw, str):
        raw = {"value": raw}
    if not isinstance(raw, dict):
        raise _err(path, "municipality", f"must be a code in quotes (e.g. \"13\") or a table with a column,"
                                         f" not {type(raw).__name__} {raw!r}")
    for key in ("value", "default"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise _err(path, f"municipality.{key}", f"must be a code in quotes (e.g. \"13\"), not {raw[key]!r}")
    vm = _value_map(path, "municipality", raw, allowed=None)
    if vm.when_present is not None:
        raise _err(path, "municipality", "unknown keys when_present")
    if vm.column is None and vm.default is None:
        raise _err(path, "municipality", "give a code (value) or a column")
    return vm


def _err(path: Path, key: str, msg: str) -> InputError:
    return InputError(f"{key}: {msg}", where=str(path))


def _value_map(path: Path, key: str, raw: Any, *, allowed: tuple[str, ...] | dict | None) -> ValueMap:
    if isinstance(raw, str):
        raw = {"value": raw}
    if not isinstance(raw, dict):
        raise _err(path, key, "must be a table or a string")
    unknown = set(raw) - {"column", "values", "default", "value", "when_present"}
    if unknown:
        raise _err(path, key, f"unknown keys {', '.join(sorted(unknown))}")
    values = {str(k): str(v) for k, v in (raw.get("values") or {}).items()}
    default = raw.get("value", raw.get("default"))
    for v in [*values.values(), default, raw.get("when_present")]:
        if v is not None and allowed is not None and v not in allowed and v != "skip":
            raise _err(path, key, f"{v!r} is not one of {', '.join(allowed)}")
    return ValueMap(column=raw.get("column"), values=values, default=default, when_present=raw.get("when_present"))


def load_mapping(ref: str | Path) -> Mapping:
    """A mapping by name (`vilnius-darzeliai`, from ingest/mappings) or by path to a .toml file."""
    path = Path(ref)
    if not path.suffix == ".toml":
        path = MAPPINGS_DIR / f"{ref}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in MAPPINGS_DIR.glob("*.toml")))
        raise InputError(f"no mapping {str(ref)!r}; known: {known}", where=str(ref))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", where=str(path)) from None
    top = {"name", "title", "licence", "format", "url", "strict", "aggregate", "columns", "position",
           "category", "sector", "status", "features", "extra", "municipality"}
    unknown = set(raw) - top
    if unknown:
        raise _err(path, "mapping", f"unknown keys {', '.join(sorted(unknown))}")
    for key in ("name", "licence"):
        if not raw.get(key):
            raise _err(path, key, "required")
    if raw.get("format") and raw["format"] not in FORMATS:
        raise _err(path, "format", f"one of {', '.join(FORMATS)}")
    cols = raw.get("columns") or {}
    if "id" not in cols:
        raise _err(path, "columns.id", "required (the column, or a {template}, that identifies a row)")
    names = cols.get("name", "name")
    names = (names,) if isinstance(names, str) else tuple(names)
    pos = raw.get("position") or {}
    crs = pos.get("crs", "EPSG:4326")
    if crs not in CRS_CHOICES and not str(crs).startswith("EPSG:"):
        raise _err(path, "position.crs", f"one of {', '.join(CRS_CHOICES)} or another EPSG:<code>")
    # No coordinate columns is allowed: a GeoJSON/GPKG geometry is used, or rows have no map point.
    features = {}
    for fname, rule in (raw.get("features") or {}).items():
        if fname not in FEATURES:
            raise _err(path, f"features.{fname}", f"unknown feature; one of {', '.join(FEATURES)}")
        features[fname] = _value_map(path, f"features.{fname}", rule, allowed=FEATURE_VALUES)
    extra = {}
    for ename, rule in (raw.get("extra") or {}).items():
        if isinstance(rule, str):
            rule = {"column": rule}
        if rule.get("type", "str") not in TYPES:
            raise _err(path, f"extra.{ename}.type", f"one of {', '.join(TYPES)}")
        if rule.get("agg", "first") not in AGGREGATES:
            raise _err(path, f"extra.{ename}.agg", f"one of {', '.join(AGGREGATES)}")
        extra[ename] = ExtraRule(column=rule["column"], type=rule.get("type", "str"), agg=rule.get("agg", "first"))
    sector_raw = dict(raw.get("sector") or {})
    prefixes = {str(k): str(v) for k, v in (sector_raw.pop("name_prefixes", None) or {}).items()}
    # Sector values may be the finer ones (government, municipal, religious, ngo ...): the sector
    # counted is derived from them (directory/sectors.py), the finer one kept in extra.
    for v in prefixes.values():
        if v not in SECTOR_DETAILS:
            raise _err(path, "sector.name_prefixes", f"{v!r} is not one of {', '.join(SECTOR_DETAILS)}")
    return Mapping(
        name=raw["name"], title=raw.get("title", raw["name"]), licence=raw["licence"], path=path,
        format=raw.get("format"), url=raw.get("url"), strict=bool(raw.get("strict", False)),
        aggregate=bool(raw.get("aggregate", False)), id=cols["id"], name_columns=names,
        name_default=cols.get("name_default"), address=cols.get("address"), operator=cols.get("operator"),
        opening_hours=cols.get("opening_hours"), crs=crs, x=pos.get("x"), y=pos.get("y"),
        lon=pos.get("lon"), lat=pos.get("lat"), wkt=pos.get("wkt"),
        category=_value_map(path, "category", raw.get("category") or {}, allowed=tuple(CATEGORIES)),
        sector=_value_map(path, "sector", sector_raw, allowed=tuple(SECTOR_DETAILS)), sector_prefixes=prefixes,
        status=_value_map(path, "status", raw.get("status") or {}, allowed=STATUSES),
        features=features, extra=extra, municipality=_municipality(path, raw.get("municipality")),
    )


def list_mappings() -> list[Mapping]:
    return [load_mapping(p) for p in sorted(MAPPINGS_DIR.glob("*.toml"))]
