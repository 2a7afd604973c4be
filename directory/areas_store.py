"""Areas (municipalities, elderships) in the store, and the locator built from them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from . import places
from .areas import DEFAULT_BORDER_TOLERANCE_M, Area, AreaLocator
from .ready import refresh_area_names, refresh_ready_rids
from .store import get_meta, set_meta, transaction

OUTLINE_META = "country_outline"  # GeoJSON geometry text of the country outline (the border rule)

_COLUMNS = ("code", "level", "name", "parent_code", "county", "population", "geometry",
            "min_lon", "min_lat", "max_lon", "max_lat", "extra")


def save_areas(conn: sqlite3.Connection, areas: Iterable[Area], *, outline: BaseGeometry | None = None,
               border_tolerance_m: float = DEFAULT_BORDER_TOLERANCE_M) -> int:
    """Replace all areas (and the country outline, when given; else the stored one stays), re-place
    every facility and gazetteer place in them, in one transaction (all-or-nothing)."""
    areas = list(areas)
    rows = []
    for area in areas:
        row = area.to_row()
        rows.append((
            row["code"], row["level"], row["name"], row.get("parent_code"), row.get("county"),
            row.get("population"), row["geometry_geojson"], row["min_lon"], row["min_lat"],
            row["max_lon"], row["max_lat"], row["extra_json"],
        ))
    with transaction(conn):
        names = dict(conn.execute("SELECT code, name FROM areas").fetchall())  # for refresh_area_names
        conn.execute("DELETE FROM areas")
        conn.executemany(f"INSERT INTO areas({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
        if outline is not None:
            set_meta(conn, OUTLINE_META, shapely.to_geojson(outline))
        locator = AreaLocator(areas, outline=load_outline(conn), border_tolerance_m=border_tolerance_m)
        refresh_area_names(conn, names)  # the ready CSV lines carry the area names
        relocate_facilities(conn, locator)
        places.rebuild_area_places(conn, locator)
    return len(rows)


def relocate_facilities(conn: sqlite3.Connection, locator: AreaLocator, *, batch: int = 50_000) -> int:
    """Give every positioned facility its municipality and eldership under `locator`.

    Placement is derived, not source content, so it is not logged as a change. A stored point
    that falls outside the new areas keeps its row (with no area): nothing stored is lost.
    Returns how many facilities changed area.
    """
    changed = 0
    last = 0
    while True:
        rows = conn.execute(
            "SELECT rid, lon, lat, municipality_code, eldership_code FROM facilities"
            " WHERE rid > ? AND lon IS NOT NULL ORDER BY rid LIMIT ?",
            (last, batch),
        ).fetchall()
        if not rows:
            return changed
        last = rows[-1]["rid"]
        placed = locator.bulk_locate([r["lon"] for r in rows], [r["lat"] for r in rows])
        updates = [
            (m, e, r["rid"])
            for r, (m, e) in zip(rows, placed)
            if (m, e) != (r["municipality_code"], r["eldership_code"])
        ]
        conn.executemany("UPDATE facilities SET municipality_code = ?, eldership_code = ? WHERE rid = ?", updates)
        refresh_ready_rids(conn, [u[2] for u in updates])  # the feature text carries the codes
        changed += len(updates)


def load_areas(conn: sqlite3.Connection) -> list[Area]:
    out = []
    for r in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM areas ORDER BY level, code"):
        row = dict(r)
        row["geometry_geojson"] = row.pop("geometry")
        row["extra_json"] = row.pop("extra")
        out.append(Area.from_row(row))
    return out


def load_outline(conn: sqlite3.Connection) -> BaseGeometry | None:
    """The stored country outline (None: no border rule)."""
    text = get_meta(conn, OUTLINE_META)
    return shapely.from_geojson(text) if text else None


def areas_fingerprint(conn: sqlite3.Connection) -> str:
    """A digest of the loaded areas and the country outline (what places a point): a run whose
    records were placed under other areas must check them again (directory.sync.Raw)."""
    h = hashlib.sha256((get_meta(conn, OUTLINE_META) or "").encode())
    for code, level, parent, geometry in conn.execute(
            "SELECT code, level, parent_code, geometry FROM areas ORDER BY code"):
        h.update(f"\0{code}\0{level}\0{parent}\0".encode())
        h.update(geometry.encode())
    return h.hexdigest()


def load_locator(conn: sqlite3.Connection, *, border_tolerance_m: float = DEFAULT_BORDER_TOLERANCE_M) -> AreaLocator:
    """The point-in-polygon locator over the loaded areas (empty when none are loaded), with the
    border rule when a country outline is stored."""
    return AreaLocator(load_areas(conn), outline=load_outline(conn), border_tolerance_m=border_tolerance_m)


def list_areas(conn: sqlite3.Connection, *, level: str | None = None, parent: str | None = None) -> list[dict[str, Any]]:
    """Areas without geometry, with how many (non-removed) facilities each holds."""
    clauses, params = [], []
    if level:
        clauses.append("a.level = ?")
        params.append(level)
    if parent:
        clauses.append("a.parent_code = ?")
        params.append(parent)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"""
        SELECT a.code, a.level, a.name, a.parent_code, a.county, a.population,
               a.min_lon, a.min_lat, a.max_lon, a.max_lat,
               CASE a.level
                 WHEN 'municipality' THEN (SELECT count(*) FROM facilities f
                                           WHERE f.municipality_code = a.code AND f.status != 'removed')
                 ELSE (SELECT count(*) FROM facilities f
                       WHERE f.eldership_code = a.code AND f.status != 'removed')
               END AS facilities
        FROM areas a {where} ORDER BY a.level DESC, a.name"""
    return [
        {
            "code": r["code"], "level": r["level"], "name": r["name"], "parent_code": r["parent_code"],
            "county": r["county"], "population": r["population"],
            "bbox": [r["min_lon"], r["min_lat"], r["max_lon"], r["max_lat"]],
            "facilities": r["facilities"],
        }
        for r in conn.execute(sql, params)
    ]


def find_area(conn: sqlite3.Connection, name_or_code: str) -> dict[str, Any] | None:
    """An area by code or (case-insensitive) name, e.g. '13' or 'Vilniaus m. sav.'."""
    r = conn.execute(
        "SELECT code, level, name, min_lon, min_lat, max_lon, max_lat FROM areas"
        " WHERE code = ? OR lower(name) = lower(?) ORDER BY level DESC LIMIT 1",
        (name_or_code, name_or_code),
    ).fetchone()
    return dict(r) if r else None


def outline_collection(conn: sqlite3.Connection, *, level: str, bbox: tuple[float, float, float, float] | None = None,
                       limit: int | None = None) -> str:
    """The simplified outlines of a level's areas (the audit's stored shapes, at most `limit`,
    those whose bounds meet `bbox`) as GeoJSON text with code and name; the geometry text is
    passed through without parsing. An empty collection when the shapes are not computed."""
    sql = ("SELECT a.code, a.name, s.geometry FROM areas a JOIN audit_shapes s ON s.level = a.level AND s.code = a.code"
           " WHERE a.level = ?")
    params: list[Any] = [level]
    if bbox is not None:
        sql += " AND a.max_lon >= ? AND a.min_lon <= ? AND a.max_lat >= ? AND a.min_lat <= ?"
        params += [bbox[0], bbox[2], bbox[1], bbox[3]]
    sql += " ORDER BY a.code"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    parts = []
    for code, name, geometry in conn.execute(sql, params):
        props = json.dumps({"code": code, "name": name, "level": level}, ensure_ascii=False)
        parts.append(f'{{"type":"Feature","id":{json.dumps(code)},"geometry":{geometry},"properties":{props}}}')
    return '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"
