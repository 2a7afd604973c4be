"""Coordinates of registry rows -> WGS84 lon/lat.

LKS-94 (EPSG:3346) files disagree about which column is easting: the EPSG axis order is
northing, easting; the address register calls its easting "x_koord"; Vilnius names the northing
GIS_X. So the axis is decided by magnitude, never by the column's name: in Lithuania northing is
about 5.97-6.26 million metres and easting 0.30-0.68 million (ranges below are a little wider).
0/0 and blanks mean "no position" (the row is kept without a map point), not Null Island.
"""

from __future__ import annotations

from functools import lru_cache

from pyproj import Transformer

NORTHING = (5_800_000.0, 6_500_000.0)
EASTING = (150_000.0, 850_000.0)
CRS_CHOICES = ("EPSG:4326", "EPSG:3346", "auto")


class CoordinateError(ValueError):
    """The values cannot be a position in the declared CRS; the message says why."""


@lru_cache(maxsize=4)
def _transformer(src: str) -> Transformer:
    # Cached: a Transformer is immutable and costly to build; this is not mutable state.
    return Transformer.from_crs(src, "EPSG:4326", always_xy=True)


def lks94_to_wgs84(a: float, b: float) -> tuple[float, float]:
    """Two LKS-94 values in either order -> (lon, lat), rounded to 7 decimals (~1 cm)."""
    def within(v: float, rng: tuple[float, float]) -> bool:
        return rng[0] <= v <= rng[1]

    if within(a, NORTHING) and within(b, EASTING):
        northing, easting = a, b
    elif within(b, NORTHING) and within(a, EASTING):
        northing, easting = b, a
    else:
        raise CoordinateError(
            f"({a:g}, {b:g}) are not LKS-94 metres: expected one northing of 5.8-6.5 million"
            " and one easting of 0.15-0.85 million")
    lon, lat = _transformer("EPSG:3346").transform(easting, northing)
    return round(lon, 7), round(lat, 7)


def to_wgs84(x: float | None, y: float | None, *, crs: str) -> tuple[float, float] | None:
    """(lon, lat) from x/y in `crs`; None when there is no position (blank or 0/0).

    For EPSG:4326, x is longitude and y latitude. `auto` takes values above 1000 as LKS-94 metres.
    """
    if x is None or y is None or (x == 0 and y == 0):
        return None
    if crs == "auto":
        crs = "EPSG:3346" if max(abs(x), abs(y)) > 1000 else "EPSG:4326"
    if crs == "EPSG:3346":
        return lks94_to_wgs84(x, y)
    if crs == "EPSG:4326":
        if not (-180 <= x <= 180 and -90 <= y <= 90):
            raise CoordinateError(f"({x:g}, {y:g}) are not WGS84 degrees (longitude, latitude)")
        return round(x, 7), round(y, 7)
    lon, lat = _transformer(crs).transform(x, y)
    return round(lon, 7), round(lat, 7)
