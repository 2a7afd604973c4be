"""Read (and fetch) Lithuania's municipalities and elderships with 2021 census population.

Source: github.com/govlt/powerbi-map-lt, built from Registrų centras boundaries and Statistics
Lithuania's 2021 census (no licence file in the repository). Three files are used:

- ``topojson/LT-savivaldybes-municipalities.json``: 60 municipality polygons (authoritative);
- ``topojson/LT-seniunijos-wards.json``: 554 eldership polygons (padded/stretched upstream, so
  edges only approximate the municipality edges, and the Curonian Lagoon is left out);
- ``testdata/LT-seniunijos-wards.csv``: population per eldership (SEN_GYV); a municipality's
  population is the sum of its elderships (2,810,755 in total).

GDAL's TopoJSON driver decodes these files exactly (quantisation transform included; checked
against a hand-written arc decoder: identical polygons), so geopandas reads them directly.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import shapely
from shapely.geometry.base import BaseGeometry

from directory.areas import ELDERSHIP, MUNICIPALITY, Area, polygonal_part
from directory.errors import FetchError, InputError

from . import http

MUNICIPALITIES_TOPOJSON = "topojson/LT-savivaldybes-municipalities.json"
ELDERSHIPS_TOPOJSON = "topojson/LT-seniunijos-wards.json"
ELDERSHIPS_CSV = "testdata/LT-seniunijos-wards.csv"
SOURCE_FILES = (MUNICIPALITIES_TOPOJSON, ELDERSHIPS_TOPOJSON, ELDERSHIPS_CSV)
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/govlt/powerbi-map-lt/main"
SOURCE = "govlt/powerbi-map-lt"

# Generous WGS84 box around Lithuania: catches a file in LKS-94 metres or an undecoded
# (still quantised) TopoJSON, whose coordinates would be in the thousands.
_LT_BOX = (19.0, 53.0, 28.0, 57.5)


class _Response(Protocol):
    status_code: int
    content: bytes


class HttpSession(Protocol):
    """What fetch_areas needs from a session: an ingest.http session or a test double."""

    def get(self, url: str, *, timeout: float | None) -> _Response: ...


def read_areas(directory: Path) -> list[Area]:
    """All municipalities then all elderships from a copy of the source repository's files.

    Raises InputError naming the file (and CSV line) and the field when anything is missing,
    unparseable or inconsistent between the three files.
    """
    directory = Path(directory)
    mun_path, eld_path, csv_path = (directory / rel for rel in SOURCE_FILES)
    population = _read_population(csv_path)

    municipalities: dict[str, Area] = {}
    for where, props, geometry in _read_topojson(mun_path, required=("SAV_KODAS", "SAV_PAV")):
        code = _code(props["SAV_KODAS"], where=where, field="SAV_KODAS")
        if code in municipalities:
            raise InputError(f"SAV_KODAS {code} appears twice", where=where)
        county_code = props.get("APS_KODAS")
        municipalities[code] = Area(
            code=code,
            level=MUNICIPALITY,
            name=_text(props["SAV_PAV"], where=where, field="SAV_PAV"),
            parent_code=None if _missing(county_code) else _code(county_code, where=where, field="APS_KODAS"),
            population=None,
            geometry=geometry,
            county=None if _missing(props.get("APS_PAV")) else str(props["APS_PAV"]).strip(),
            extra=_extras(props, {"NUTS_3": "nuts3", "LAU_1": "lau1", "OBJECTID": "objectid"}) | {"source": SOURCE},
        )

    elderships: dict[str, Area] = {}
    for where, props, geometry in _read_topojson(eld_path, required=("SEN_KODAS", "SAV_KODAS", "SEN_PAV_TR")):
        code = _code(props["SEN_KODAS"], where=where, field="SEN_KODAS")
        if code in elderships:
            raise InputError(f"SEN_KODAS {code} appears twice", where=where)
        parent = _code(props["SAV_KODAS"], where=where, field="SAV_KODAS")
        if parent not in municipalities:
            raise InputError(f"SAV_KODAS {parent} is not in {mun_path.name}", where=where)
        if code not in population:
            raise InputError(f"SEN_KODAS {code} has no population row in {csv_path.name}", where=where)
        counts = population[code]
        extra = _extras(
            props,
            {"SEN_PAV": "full_name", "SEN_UID": "uid", "OSP_ID": "osp_id", "OSP_TIPAS": "osp_type",
             "LAU_1": "lau1", "OBJECTID": "objectid"},
        )
        extra |= {k: v for k, v in counts.items() if k != "population" and v is not None}
        extra["source"] = SOURCE
        elderships[code] = Area(
            code=code,
            level=ELDERSHIP,
            name=_text(props["SEN_PAV_TR"], where=where, field="SEN_PAV_TR"),
            parent_code=parent,
            population=counts["population"],
            geometry=geometry,
            county=municipalities[parent].county,
            extra=extra,
        )

    unknown = sorted(set(population) - set(elderships))
    if unknown:
        raise InputError(
            f"{len(unknown)} SEN_KODAS value(s) have population but no polygon in {eld_path.name}: "
            f"{', '.join(unknown[:5])}",
            where=str(csv_path),
        )
    for mun in municipalities.values():
        pops = [e.population for e in elderships.values() if e.parent_code == mun.code]
        # A partial sum would understate; unknown is more honest than wrong.
        mun.population = sum(pops) if pops and None not in pops else None  # type: ignore[arg-type]

    return sorted(municipalities.values(), key=lambda a: a.code) + sorted(elderships.values(), key=lambda a: a.code)


def read_outline(path: Path) -> BaseGeometry:
    """The country outline (the border rule of `directory.areas`): the polygons of a GeoJSON
    file, e.g. ../shared/data/mledoze-countries/ltu.geo.json."""
    path = Path(path)
    try:
        geometry = shapely.from_geojson(path.read_text(encoding="utf-8"))
    except (OSError, shapely.errors.GEOSException, ValueError) as exc:
        raise InputError(f"cannot read a GeoJSON outline: {exc}", where=str(path)) from None
    outline = polygonal_part(shapely.union_all(shapely.get_parts(geometry)))
    if outline.is_empty:
        raise InputError("no polygon in this GeoJSON file", where=str(path))
    return outline


def fetch_areas(
    *, session: HttpSession, dest: Path, base_url: str = DEFAULT_BASE_URL, timeout: float | None = None
) -> Path:
    """Download the three source files into ``dest`` so that ``read_areas(dest)`` works.

    ``session`` is an ``ingest.http`` session (User-Agent, retries; its timeout unless ``timeout``).

    All files are downloaded and read back before any is put in place, each by an atomic
    rename: a failed or garbled download leaves the previous copy untouched.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".areas-fetch-", dir=dest))
    try:
        for rel in SOURCE_FILES:
            url = f"{base_url.rstrip('/')}/{rel}"
            response = http.request(session, "GET", url, timeout=timeout)
            body = bytes(response.content or b"")
            expected = b"{" if rel.endswith(".json") else b";"
            if not body.strip() or expected not in body.lstrip(b"\xef\xbb\xbf")[:200]:
                raise FetchError("response does not look like the expected file", where=url)
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        try:
            read_areas(staging)
        except InputError as exc:
            raise FetchError(f"downloaded files do not read: {exc}", where=base_url) from exc
        for rel in SOURCE_FILES:
            final = dest / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


# --- helpers -------------------------------------------------------------------------------


def _read_topojson(path: Path, *, required: tuple[str, ...]) -> list[tuple[str, dict[str, Any], Any]]:
    """(where, properties, valid WGS84 polygon) per feature of a single-object TopoJSON file."""
    if not path.is_file():
        raise InputError("file not found", where=str(path))
    # Imported here: geopandas brings pandas (0.3 s), and every ingest and command imports this
    # module while only an areas load reads a file with it.
    import geopandas
    import pyogrio  # (GDAL: loaded with geopandas, for the same reason)

    try:
        layers = pyogrio.list_layers(path)
        if len(layers) != 1:
            raise InputError(f"expected one TopoJSON object, found {len(layers)}", where=str(path))
        frame = geopandas.read_file(path, layer=str(layers[0][0]), engine="pyogrio")
    except InputError:
        raise
    except Exception as exc:  # pyogrio/GDAL raise several types for unreadable files
        raise InputError(f"cannot read as TopoJSON: {exc}", where=str(path)) from exc
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise InputError(f"missing field(s) {', '.join(missing)}", where=str(path))
    if frame.empty:
        raise InputError("no features", where=str(path))
    west, south, east, north = frame.total_bounds
    if not (_LT_BOX[0] <= west and south >= _LT_BOX[1] and east <= _LT_BOX[2] and north <= _LT_BOX[3]):
        raise InputError(
            f"coordinates ({west:.1f}, {south:.1f}, {east:.1f}, {north:.1f}) are not WGS84 lon/lat in Lithuania",
            where=str(path),
        )
    out = []
    columns = [c for c in frame.columns if c != "geometry"]
    for i, (geometry, values) in enumerate(zip(frame.geometry, frame[columns].itertuples(index=False))):
        where = f"{path} feature {i}"
        if geometry is None or geometry.is_empty:
            raise InputError("feature has no geometry", where=where)
        geometry = polygonal_part(geometry)
        if geometry.is_empty:
            raise InputError("geometry has no polygon after repair", where=where)
        out.append((where, dict(zip(columns, values)), geometry))
    return out


def _read_population(path: Path) -> dict[str, dict[str, Any]]:
    """SEN_KODAS -> population and the other per-eldership census columns from the CSV."""
    if not path.is_file():
        raise InputError("file not found", where=str(path))
    optional_ints = {"SEN_GYV_V": "population_men", "SEN_GYV_M": "population_women", "SEN_PLOTAS": "area_m2"}
    optional_floats = {"SEN_PLATUM": "centre_lat", "SEN_ILGUMA": "centre_lon"}
    result: dict[str, dict[str, Any]] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=";")
            header = reader.fieldnames or []
            missing = [name for name in ("SEN_KODAS", "SEN_GYV") if name not in header]
            if missing:
                raise InputError(f"missing column(s) {', '.join(missing)} (header: {';'.join(header)[:120]})",
                                 where=f"{path}:1")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                code = _code(row["SEN_KODAS"], where=where, field="SEN_KODAS")
                if code in result:
                    raise InputError(f"SEN_KODAS {code} appears twice", where=where)
                population = _number(row["SEN_GYV"], where=where, field="SEN_GYV", whole=True)
                counts: dict[str, Any] = {"population": population}
                for column, key in optional_ints.items():
                    if not _missing(row.get(column)):
                        counts[key] = _number(row[column], where=where, field=column, whole=True)
                for column, key in optional_floats.items():
                    if not _missing(row.get(column)):
                        counts[key] = _number(row[column], where=where, field=column, whole=False)
                result[code] = counts
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc}", where=str(path)) from exc
    if not result:
        raise InputError("no data rows", where=str(path))
    return result


def _missing(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(text: Any, *, where: str, field: str, whole: bool) -> Any:
    """Parse '1454', '54,01188833' (decimal comma) or '1 454'; InputError naming the field."""
    raw = "" if text is None else str(text)
    cleaned = raw.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        raise InputError(f"{field}: {raw!r} is not a number", where=where) from None
    if not math.isfinite(value):
        raise InputError(f"{field}: {raw!r} is not a finite number", where=where)
    if whole:
        if value != int(value) or value < 0:
            raise InputError(f"{field}: {raw!r} is not a non-negative whole number", where=where)
        return int(value)
    return value


def _code(value: Any, *, where: str, field: str) -> str:
    """A numeric register code as a string without decimals: 13 / 13.0 / '13' -> '13'."""
    if _missing(value):
        raise InputError(f"{field} is empty", where=where)
    return str(_number(value, where=where, field=field, whole=True))


def _text(value: Any, *, where: str, field: str) -> str:
    if _missing(value):
        raise InputError(f"{field} is empty", where=where)
    return str(value).strip()


def _extras(props: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Selected source fields under stable names, with numpy scalars made JSON-able."""
    out: dict[str, Any] = {}
    for column, key in names.items():
        value = props.get(column)
        if not _missing(value):
            out[key] = value.item() if hasattr(value, "item") else value
    return out
