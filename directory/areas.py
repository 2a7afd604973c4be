"""Municipalities and elderships (boundaries + census population) and a fast point locator.

Ingest tags every facility with the municipality and eldership it stands in, and the audit
divides facility counts by population, so both need the areas. This module is on the ingest
path and must stay light: shapely only, no geopandas (reading source files lives in
``ingest/areas.py``).

The municipality layer is authoritative. The eldership layer of the published boundaries was
padded and stretched to fill gaps, so its edges do not match the municipality edges exactly
(slivers of up to ~150 m) and it leaves out the Curonian Lagoon; the locator therefore finds
the municipality first and only then an eldership *of that municipality*.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from directory.errors import InputError

MUNICIPALITY = "municipality"
ELDERSHIP = "eldership"
LEVELS = (MUNICIPALITY, ELDERSHIP)

# GeoJSON text keeps 6 decimals (~0.1 m): the sources are quantised far coarser (~3-15 m), so
# nothing real is lost and the stored text is about half the size of full float precision.
GEOJSON_DECIMALS = 6

# How far (degrees; ~190 m east-west, ~330 m north-south at 55° N) a point inside a
# municipality may lie from that municipality's nearest eldership and still be given it. The
# eldership edges drift from the municipality edges by slivers up to ~150 m wide; without
# snapping a facility on such a sliver would lose its eldership. The lagoon (kilometres from
# any eldership) stays unassigned.
DEFAULT_SNAP_DEGREES = 0.003

# Points near the state border (ATVIRA_BORDER_TOLERANCE_M). The municipality polygons are
# simplified, so a real facility a few hundred metres inside the border can fall outside all of
# them. Such a point is given the nearest municipality (and that municipality's nearest
# eldership) when it lies within this many metres of it AND within this many metres of the
# country outline (itself coarse: hence the same tolerance); otherwise it is rejected as before.
# Distances are measured on a local equirectangular projection (lon scaled by cos of the
# outline's middle latitude): a few per cent off across Lithuania, plenty for a 2 km rule.
DEFAULT_BORDER_TOLERANCE_M = 2000.0
METRES_PER_DEGREE = 111_320.0


@dataclass(slots=True)
class Area:
    """One municipality or eldership with its 2021 census population.

    ``parent_code`` is the municipality code for an eldership and the county code for a
    municipality. ``geometry`` is a (Multi)Polygon in WGS84 lon/lat. ``extra`` keeps source
    fields worth showing but not worth a column (full names, NUTS/LAU codes, men/women ...).
    """

    code: str
    level: str
    name: str
    parent_code: str | None
    population: int | None
    geometry: BaseGeometry
    county: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def geometry_wkb(self) -> bytes:
        """The geometry as WKB, for a store that keeps binary geometry (e.g. SpatiaLite/PostGIS)."""
        return shapely.to_wkb(self.geometry)

    def to_row(self) -> dict[str, Any]:
        """A flat dict for the store: GeoJSON geometry text plus the bbox for an R*Tree."""
        min_lon, min_lat, max_lon, max_lat = (float(v) for v in shapely.bounds(self.geometry))
        return {
            "code": self.code,
            "level": self.level,
            "name": self.name,
            "parent_code": self.parent_code,
            "population": self.population,
            "county": self.county,
            "geometry_geojson": geometry_to_geojson_text(self.geometry),
            "min_lon": min_lon,
            "min_lat": min_lat,
            "max_lon": max_lon,
            "max_lat": max_lat,
            "extra_json": json.dumps(self.extra, ensure_ascii=False, sort_keys=True),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Area:
        """Rebuild an Area from ``to_row`` output (or a sqlite3.Row with the same keys).

        Accepts ``geometry_geojson`` (text) or ``geometry_wkb`` (bytes); ``extra_json`` is optional.
        """
        keys = set(row.keys())
        if "geometry_geojson" in keys and row["geometry_geojson"]:
            geometry = shapely.from_geojson(row["geometry_geojson"])
        elif "geometry_wkb" in keys and row["geometry_wkb"]:
            geometry = shapely.from_wkb(row["geometry_wkb"])
        else:
            raise InputError("area row has no geometry_geojson or geometry_wkb", where=f"area {row['code']}")
        extra_text = row["extra_json"] if "extra_json" in keys else None
        population = row["population"]
        return cls(
            code=str(row["code"]),
            level=str(row["level"]),
            name=str(row["name"]),
            parent_code=None if row["parent_code"] is None else str(row["parent_code"]),
            population=None if population is None else int(population),
            geometry=geometry,
            county=row["county"] if "county" in keys else None,
            extra=json.loads(extra_text) if extra_text else {},
        )


def geometry_to_geojson_text(geometry: BaseGeometry, *, decimals: int = GEOJSON_DECIMALS) -> str:
    """GeoJSON geometry text with coordinates rounded to ``decimals`` (see GEOJSON_DECIMALS)."""
    rounded = shapely.transform(geometry, lambda xy: np.round(xy, decimals))
    return shapely.to_geojson(rounded)


def area_to_geojson(area: Area, *, decimals: int = GEOJSON_DECIMALS) -> dict[str, Any]:
    """A GeoJSON Feature (dict) for maps and exports; ``id`` is the area code."""
    return {
        "type": "Feature",
        "id": area.code,
        "geometry": json.loads(geometry_to_geojson_text(area.geometry, decimals=decimals)),
        "properties": {
            "code": area.code,
            "level": area.level,
            "name": area.name,
            "parent_code": area.parent_code,
            "population": area.population,
            "county": area.county,
        },
    }


def _first_hit_per_point(point_idx: np.ndarray, area_idx: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` points the smallest matching area index, or -1.

    Areas are indexed in code order, so "smallest index" makes a point on a shared boundary
    always go to the area with the smaller code: deterministic, whatever the query order.
    """
    out = np.full(n, -1, dtype=np.int64)
    if len(point_idx):
        order = np.lexsort((area_idx, point_idx))
        p, a = point_idx[order], area_idx[order]
        first = np.ones(len(p), dtype=bool)
        first[1:] = p[1:] != p[:-1]
        out[p[first]] = a[first]
    return out


class AreaLocator:
    """Answers "which municipality and eldership is this point in?" for many points quickly.

    Built once per ingest from the areas; queries use STRtree bounding-box candidates followed
    by a vectorised, prepared point-in-polygon test (``shapely.intersects_xy``), which is several
    times faster than ``STRtree.query(points, predicate=...)`` because the latter prepares the
    query points rather than the polygons.
    """

    def __init__(self, areas: Iterable[Area], *, snap_degrees: float = DEFAULT_SNAP_DEGREES,
                 outline: BaseGeometry | None = None, border_tolerance_m: float = DEFAULT_BORDER_TOLERANCE_M) -> None:
        areas = list(areas)
        # No outline: no border rule (a point outside every polygon is rejected, as before).
        self._outline = None if outline is None or outline.is_empty else outline
        self._border_m = max(0.0, float(border_tolerance_m))
        self._scaled: tuple[Any, ...] | None = None  # built on the first border point (rare)
        self._munis = sorted((a for a in areas if a.level == MUNICIPALITY), key=lambda a: a.code)
        self._elds = sorted((a for a in areas if a.level == ELDERSHIP), key=lambda a: a.code)
        self._snap = float(snap_degrees)
        self._by_code = {(a.level, a.code): a for a in areas}
        self._mun_geoms = np.array([_polygonal(a) for a in self._munis], dtype=object)
        self._eld_geoms = np.array([_polygonal(a) for a in self._elds], dtype=object)
        shapely.prepare(self._mun_geoms)
        shapely.prepare(self._eld_geoms)
        self._mun_tree = shapely.STRtree(self._mun_geoms)
        self._eld_tree = shapely.STRtree(self._eld_geoms)
        mun_index = {a.code: i for i, a in enumerate(self._munis)}
        # For each eldership, the index of its municipality (-1: parent not in the layer).
        self._eld_parent = np.array([mun_index.get(a.parent_code or "", -1) for a in self._elds], dtype=np.int64)
        self._mun_codes = np.array([a.code for a in self._munis] + [None], dtype=object)
        self._eld_codes = np.array([a.code for a in self._elds] + [None], dtype=object)

    @property
    def is_empty(self) -> bool:
        """True when there are no municipalities, so every point would be (None, None)."""
        return not self._munis

    @property
    def municipalities(self) -> list[Area]:
        return list(self._munis)

    @property
    def elderships(self) -> list[Area]:
        return list(self._elds)

    def area(self, code: str, *, level: str = MUNICIPALITY) -> Area | None:
        """The area with this code at this level (codes are unique within a level only)."""
        return self._by_code.get((level, code))

    def locate(self, lon: float, lat: float) -> tuple[str | None, str | None]:
        """(municipality_code, eldership_code) for one WGS84 point; (None, None) outside Lithuania."""
        return self.bulk_locate([lon], [lat])[0]

    def bulk_locate(
        self, lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray
    ) -> list[tuple[str | None, str | None]]:
        """``locate`` for many points at once; NaN or None coordinates give (None, None)."""
        mun_idx, eld_idx = self.bulk_locate_indices(lons, lats)
        mun_codes = self._mun_codes[mun_idx]  # index -1 picks the trailing None
        eld_codes = self._eld_codes[eld_idx]
        return list(zip(mun_codes.tolist(), eld_codes.tolist()))

    def bulk_locate_indices(
        self, lons: Sequence[float] | np.ndarray, lats: Sequence[float] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices into ``municipalities`` / ``elderships`` (-1 for none); the vectorised core."""
        x = np.asarray(lons, dtype=float).ravel()
        y = np.asarray(lats, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError(f"lons and lats differ in length ({len(x)} != {len(y)})")
        n = len(x)
        mun = np.full(n, -1, dtype=np.int64)
        eld = np.full(n, -1, dtype=np.int64)
        ok = np.isfinite(x) & np.isfinite(y)
        if n == 0 or self.is_empty or not ok.any():
            return mun, eld
        pts = np.full(n, None, dtype=object)
        pts[ok] = shapely.points(x[ok], y[ok])

        # 1. Municipality: bbox candidates, then exact prepared point-in-polygon.
        p, a = self._mun_tree.query(pts)
        hit = shapely.intersects_xy(self._mun_geoms[a], x[p], y[p])
        mun = _first_hit_per_point(p[hit], a[hit], n)
        border = ok & (mun < 0)
        border_eld: dict[int, int] = {}
        if self._outline is not None and self._border_m > 0 and border.any():
            border_eld = self._place_near_border(np.flatnonzero(border), x, y, mun)
        if not len(self._elds):
            return mun, eld

        # 2. Eldership, only among the elderships of the municipality found in step 1.
        inside = mun >= 0
        p, a = self._eld_tree.query(np.where(inside, pts, None))
        same = self._eld_parent[a] == mun[p]
        p, a = p[same], a[same]
        hit = shapely.intersects_xy(self._eld_geoms[a], x[p], y[p])
        eld = _first_hit_per_point(p[hit], a[hit], n)

        # 3. Slivers: snap to the nearest eldership of the same municipality within the tolerance.
        todo = inside & (eld < 0)
        if self._snap > 0 and todo.any():
            p, a = self._eld_tree.query(np.where(todo, pts, None), predicate="dwithin", distance=self._snap)
            same = self._eld_parent[a] == mun[p]
            p, a = p[same], a[same]
            if len(p):
                dist = shapely.distance(self._eld_geoms[a], pts[p])
                order = np.lexsort((a, dist, p))  # per point: nearest first, ties by code
                p, a = p[order], a[order]
                first = np.ones(len(p), dtype=bool)
                first[1:] = p[1:] != p[:-1]
                eld[p[first]] = a[first]
        for i, e in border_eld.items():
            eld[i] = e
        return mun, eld

    def _scaled_layers(self) -> tuple[Any, ...]:
        """The outline and the layers on the local projection used for border distances."""
        if self._scaled is None:
            assert self._outline is not None
            min_lat, max_lat = shapely.bounds(self._outline)[1::2]
            k = float(np.cos(np.radians((min_lat + max_lat) / 2)))

            def scale(g: Any) -> Any:
                return shapely.transform(g, lambda xy: xy * np.array([k, 1.0]))

            muns = scale(self._mun_geoms)
            elds = scale(self._eld_geoms) if len(self._eld_geoms) else self._eld_geoms
            self._scaled = (k, scale(self._outline), muns, shapely.STRtree(muns), elds)
        return self._scaled

    def _place_near_border(self, idx: np.ndarray, x: np.ndarray, y: np.ndarray, mun: np.ndarray) -> dict[int, int]:
        """Give the points `idx` (outside every municipality) the nearest municipality within the
        border tolerance, if they are within it of the country outline too (see
        DEFAULT_BORDER_TOLERANCE_M). Sets `mun` in place; returns point -> eldership index."""
        k, outline, _muns, tree, elds = self._scaled_layers()
        tol = self._border_m / METRES_PER_DEGREE
        pts = shapely.points(x[idx] * k, y[idx])
        near_country = shapely.dwithin(outline, pts, tol)
        out: dict[int, int] = {}
        for i, pt, near in zip(idx.tolist(), pts, near_country):
            if not near:
                continue
            found = tree.query_nearest(pt, max_distance=tol, all_matches=False)
            if not len(found):
                continue
            m = int(found[0])
            mun[i] = m
            mine = np.flatnonzero(self._eld_parent == m)
            if len(mine):
                dist = shapely.distance(elds[mine], pt)
                j = int(np.argmin(dist))
                if dist[j] <= tol:
                    out[i] = int(mine[j])
        return out


def _polygonal(area: Area) -> BaseGeometry:
    """The area's geometry, refusing non-polygons: a point-in-polygon index needs areas."""
    geom = area.geometry
    if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        kind = "empty" if geom is None or geom.is_empty else geom.geom_type
        raise InputError(f"geometry is {kind}, expected a (Multi)Polygon", where=f"{area.level} {area.code}")
    return geom


def polygonal_part(geometry: BaseGeometry) -> BaseGeometry:
    """Make a geometry valid and keep only its polygons (make_valid may add stray lines/points)."""
    fixed = geometry if geometry.is_valid else shapely.make_valid(geometry)
    if fixed.geom_type in ("Polygon", "MultiPolygon"):
        return fixed
    polys: list[BaseGeometry] = []
    for part in shapely.get_parts(fixed):
        if part.geom_type == "Polygon":
            polys.append(part)
        elif part.geom_type == "MultiPolygon":
            polys.extend(shapely.get_parts(part))
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)

