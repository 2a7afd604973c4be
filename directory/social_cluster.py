"""The social-cluster view: who provides what in each area, across the public, private and civic
sectors, and who could work together to provide more (issue 15).

Two halves, like the audit:

- `recompute(conn)` runs in `refresh_derived` (its "cluster" part) and stores, per country,
  municipality and eldership: the count of live facilities per kind (category) and sector
  (`cluster_counts`, '*' = any kind), the first actors of each kind × sector cell
  (`cluster_actors`), and per area the totals, the sector conflicts and a reference point
  (`cluster_areas`). A page or the API reads those small tables; nothing scans the facilities.
- `area_report(conn, code)` reads them for one area and adds the partner suggestions: for each
  kind the area lacks in one sector, the nearest places of the *other* sectors that have that
  kind, or could host it (`HOSTS`), by true geodesic distance (WGS84 ellipsoid, pyproj.Geod)
  from the area's reference point. The search is bounded: a growing box on the R*Tree, and a
  box's candidates are only trusted when the k-th nearest lies within the box's inscribed
  radius, so the answer is the true k nearest (tested against a brute-force scan).

`unknown` is never a sector: it is counted in its own column and never suggested as a partner
(a place whose operator nobody knows cannot be said to be of "another" sector).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import shapely
from pyproj import Geod

from . import clock
from .errors import BadRequest, NotFound
from .model import CATEGORIES
from .store import get_meta, indexes_after, set_meta, transaction

SECTORS = ("public", "private", "civic")  # the three that cooperate; "unknown" is not one
ALL_SECTORS = (*SECTORS, "unknown")
LIVE = "f.status IN ('active', 'unknown')"
ACTORS_PER_CELL = 8
SUGGESTIONS = 3  # per kind, missing sector and kind of suggestion ("has it" / "could host")
MAX_SEARCH_M = 400_000.0  # the whole country fits: beyond this nothing is suggested
COUNTRY = "LT"
PILOTS = ("Utenos", "Druskininkų", "Prienų", "Biržų")  # the social-clustering pilots, linked first

# Kinds of place that could host a kind they do not provide (a room, a hall, a yard, staff who
# are there anyway). Shown with every "could host" suggestion, so the reasoning is public.
HOSTS: dict[str, tuple[str, ...]] = {
    "day_centre": ("community_centre", "library", "culture", "school"),
    "kindergarten": ("school", "community_centre"),
    "childcare": ("community_centre", "library", "culture", "school"),
    "playground": ("school", "kindergarten", "community_centre"),
    "indoor_play": ("community_centre", "library", "culture", "day_centre"),
    "baby_room": ("library", "community_centre", "culture", "townhall", "state_institution", "day_centre"),
    "toilet": ("townhall", "library", "community_centre", "culture", "state_institution"),
    "library": ("school", "community_centre", "culture"),
    "community_centre": ("school", "library", "culture", "townhall"),
    "townhall": ("community_centre", "library"),
    "culture": ("community_centre", "library", "school"),
    "school": (),
    "state_institution": ("townhall", "library", "community_centre"),
}

GEOD = Geod(ellps="WGS84")
# Metres per degree, the smallest over Lithuania's latitudes and beyond (a conservative box).
_M_PER_DEG_LAT = 110_574.0


def geodesic_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """The distance on the WGS84 ellipsoid, in metres."""
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# --- recompute (stored figures) ------------------------------------------------------------


# The incremental update's facilities, as one bound JSON list (:ids).
IDS = "(SELECT value FROM json_each(:ids))"
FACT_COLUMNS = ("facility_id", "m", "e", "name", "operator", "sector", "categories", "conflict")


def _facts_sql(*, only: bool) -> str:
    """SELECT giving cluster_facts' columns for every live facility (or only those in :ids)."""
    # a cheap text test first: most rows have neither evidence nor a sector conflict. CASE, not
    # AND: SQLite computes both sides of an AND it must return as a value, so the JSON test
    # (a json_each per row) ran for every facility (100k: 0.15 s of the recompute's 0.7)
    return f"""
        SELECT f.id, f.municipality_code, f.eldership_code, f.name, f.operator, f.sector, f.categories,
               CASE WHEN f.extra LIKE '%sector_evidence%' OR f.conflicts LIKE '%"sector"%'
                    THEN coalesce({SECTOR_CONFLICT}, 0) ELSE 0 END
        FROM facilities f WHERE {LIVE} {f"AND f.id IN {IDS}" if only else ""}"""


def recompute(conn: sqlite3.Connection) -> dict[str, Any]:
    """Rebuild the stored cluster figures in one transaction; returns a summary with timings."""
    started = time.perf_counter()
    with transaction(conn):
        for table in ("cluster_counts", "cluster_actors", "cluster_areas", "cluster_facts", "cluster_pairs"):
            conn.execute(f"DELETE FROM {table}")
        # One pass over the facilities into cluster_facts, one row per (facility, kind) in
        # cluster_pairs; every level groups those (and an incremental update moves them).
        conn.execute(f"INSERT INTO cluster_facts({', '.join(FACT_COLUMNS)}) {_facts_sql(only=False)}")
        # cluster_pairs' indexes built after its rows (one sort each) instead of entry by entry
        # in random order (1M: 12.9 s of the recompute's 41)
        with indexes_after(conn, "tbl_name = ?", "cluster_pairs"):
            conn.execute("""
                INSERT INTO cluster_pairs(facility_id, category, m, e, sector, name, operator)
                SELECT facility_id, c.value, m, e, sector, name, operator FROM cluster_facts, json_each(categories) c""")
        levels = (("country", f"'{COUNTRY}'"), ("municipality", "m"), ("eldership", "e"))
        for level, code in levels:
            conn.execute(f"""
                INSERT INTO cluster_counts(level, code, category, sector, count)
                SELECT '{level}', {code}, category, sector, count(*) FROM cluster_pairs
                WHERE {code} IS NOT NULL GROUP BY {code}, category, sector""")
            # '*': distinct facilities of any kind (one facility of two kinds counts once here).
            conn.execute(f"""
                INSERT INTO cluster_counts(level, code, category, sector, count)
                SELECT '{level}', {code}, '*', sector, count(*) FROM cluster_facts
                WHERE {code} IS NOT NULL GROUP BY {code}, sector""")
        for level, code in levels[1:]:
            # each cell's first actors read from the index in its order (what _actors does for
            # one cell), not every pair numbered by a window and all but the first dropped
            # (1M: 8 s a level)
            conn.execute(f"""
                INSERT INTO cluster_actors(level, code, category, sector, position, facility_id, name, operator)
                SELECT '{level}', p.{code}, p.category, p.sector,
                       row_number() OVER (PARTITION BY p.{code}, p.category, p.sector ORDER BY p.name, p.facility_id),
                       p.facility_id, p.name, p.operator
                FROM cluster_counts AS c, cluster_pairs AS p
                WHERE c.level = '{level}' AND c.category != '*' AND p.rowid IN (
                    SELECT rowid FROM cluster_pairs WHERE {code} = c.code AND category = c.category
                    AND sector = c.sector ORDER BY name, facility_id LIMIT {ACTORS_PER_CELL})""")
        _areas(conn)
        summary = {"computed_at": clock.stamp(),  # the one clock (tests freeze it)
                   "seconds": round(time.perf_counter() - started, 3),
                   "areas": conn.execute("SELECT count(*) FROM cluster_areas").fetchone()[0]}
        set_meta(conn, "cluster", summary)
    return summary


def update(conn: sqlite3.Connection, ids: list[str]) -> dict[str, Any]:
    """Bring the stored cluster figures up to date for the facilities `ids` only.

    Each facility's stored row (cluster_facts: what it counted for) is compared with the row it
    gives now; the counts of its areas (old and new place, and the country) move by the
    difference, the actor lists of the cells it leaves or enters are read again from the
    indexed cluster_pairs, and its areas' totals are recomputed from their stored counts. A
    change to nothing the figures read (hours, features) changes nothing here. Equal to
    `recompute` (tests/test_derived_incremental.py).
    """
    started = time.perf_counter()
    params = {"ids": json.dumps(ids)}
    with transaction(conn):
        old = {r[0]: tuple(r) for r in conn.execute(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM cluster_facts WHERE facility_id IN {IDS}", params)}
        new = {r[0]: tuple(r) for r in conn.execute(_facts_sql(only=True), params)}
        changed = [i for i in ids if old.get(i) != new.get(i)]
        if not changed:
            return {"changed": 0}
        counts: dict[tuple[str, str, str, str], int] = {}
        conflicts: dict[tuple[str, str], int] = {}
        cells: set[tuple[str, str, str, str]] = set()
        areas: set[tuple[str, str]] = set()
        for fid in changed:
            for row, sign in ((old.get(fid), -1), (new.get(fid), 1)):
                if row is None:
                    continue
                _fid, m, e, _name, _operator, sector, cats, conflict = row
                places = [("country", COUNTRY)] + [(lv, c) for lv, c in (("municipality", m), ("eldership", e)) if c]
                for level, code in places:
                    areas.add((level, code))
                    for cat in [*json.loads(cats), "*"]:
                        key = (level, code, cat, sector)
                        counts[key] = counts.get(key, 0) + sign
                        if level != "country" and cat != "*":
                            cells.add(key)
                    # the country's conflicts are the municipalities' sum (as in _areas)
                    if conflict and (level != "country" or m):
                        conflicts[(level, code)] = conflicts.get((level, code), 0) + sign
        gone = {"ids": json.dumps(changed)}
        conn.execute(f"DELETE FROM cluster_facts WHERE facility_id IN {IDS}", gone)
        conn.execute(f"DELETE FROM cluster_pairs WHERE facility_id IN {IDS}", gone)
        rows = [new[i] for i in changed if i in new]
        conn.executemany(f"INSERT INTO cluster_facts({', '.join(FACT_COLUMNS)})"
                         f" VALUES ({', '.join('?' * len(FACT_COLUMNS))})", rows)
        conn.executemany("INSERT INTO cluster_pairs(facility_id, category, m, e, sector, name, operator)"
                         " SELECT ?, value, ?, ?, ?, ?, ? FROM json_each(?)",
                         [(r[0], r[1], r[2], r[5], r[3], r[4], r[6]) for r in rows])
        moved = [(*k, v) for k, v in counts.items() if v]
        conn.executemany("INSERT INTO cluster_counts(level, code, category, sector, count) VALUES (?, ?, ?, ?, ?)"
                         " ON CONFLICT (level, code, category, sector) DO UPDATE SET count = count + excluded.count",
                         moved)
        conn.executemany("DELETE FROM cluster_counts WHERE level = ? AND code = ? AND category = ? AND sector = ?"
                         " AND count <= 0", [k[:4] for k in moved])
        for level, code, cat, sector in sorted(cells):
            _actors(conn, level, code, cat, sector)
        for level, code in sorted(areas):
            _area_totals(conn, level, code, conflicts.get((level, code), 0))
        summary = dict(get_meta(conn, "cluster") or {})
        summary.update({"computed_at": clock.stamp(), "seconds": round(time.perf_counter() - started, 3),
                        "incremental": {"facilities": len(ids), "changed": len(changed), "cells": len(cells)}})
        set_meta(conn, "cluster", summary)
    return summary


def _actors(conn: sqlite3.Connection, level: str, code: str, category: str, sector: str) -> None:
    """One cell's first actors again, on the indexed cluster_pairs."""
    col = {"municipality": "m", "eldership": "e"}[level]
    conn.execute("DELETE FROM cluster_actors WHERE level = ? AND code = ? AND category = ? AND sector = ?",
                 (level, code, category, sector))
    conn.execute(f"""
        INSERT INTO cluster_actors(level, code, category, sector, position, facility_id, name, operator)
        SELECT ?, {col}, category, sector, row_number() OVER (ORDER BY name, facility_id), facility_id, name, operator
        FROM (SELECT * FROM cluster_pairs WHERE {col} = ? AND category = ? AND sector = ?
              ORDER BY name, facility_id LIMIT {ACTORS_PER_CELL})""", (level, code, category, sector))


def _area_totals(conn: sqlite3.Connection, level: str, code: str, conflicts: int) -> None:
    """An area's totals again from its stored '*' counts; its sector conflicts moved by `conflicts`."""
    t = {r[0]: r[1] for r in conn.execute(
        "SELECT sector, count FROM cluster_counts WHERE level = ? AND code = ? AND category = '*'", (level, code))}
    known = sum(t.get(s, 0) for s in SECTORS)
    outside = (t.get("private", 0) + t.get("civic", 0)) / known if known else None
    conn.execute(
        "UPDATE cluster_areas SET facilities = ?, known = ?, public = ?, private = ?, civic = ?, unknown = ?,"
        " share_outside_public = ?, sector_conflicts = sector_conflicts + ? WHERE code = ? AND level = ?",
        (sum(t.values()), known, *(t.get(s, 0) for s in ALL_SECTORS), outside, conflicts, code, level))


# A facility's sector is in conflict when its sources disagree on it (conflation's conflicts) or
# the rules of one source did (sectors.Sector.extra's evidence).
SECTOR_CONFLICT = ("(json_extract(f.extra, '$.sector_evidence') IS NOT NULL OR EXISTS"
                   " (SELECT 1 FROM json_each(f.conflicts) x WHERE json_extract(x.value, '$.field') = 'sector'))")


def _areas(conn: sqlite3.Connection) -> None:
    """Per area: totals by sector, sector conflicts, the share run outside the public sector
    (of the facilities whose sector is known) and a reference point for the suggestions."""
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for r in conn.execute("SELECT level, code, sector, count FROM cluster_counts WHERE category = '*'"):
        totals.setdefault((r[0], r[1]), {})[r[2]] = r[3]
    conflicts: dict[tuple[str, str], int] = {}
    for level, col in (("municipality", "m"), ("eldership", "e")):
        for code, n in conn.execute(
                f"SELECT {col}, count(*) FROM cluster_facts WHERE conflict AND {col} IS NOT NULL GROUP BY 1"):
            conflicts[(level, code)] = n
    conflicts[("country", COUNTRY)] = sum(n for (lv, _), n in conflicts.items() if lv == "municipality")
    rows = []
    areas = [("country", COUNTRY, "Lietuva", None, None)] + [
        (r["level"], r["code"], r["name"], r["parent_code"], r["geometry"])
        for r in conn.execute("SELECT level, code, name, parent_code, geometry FROM areas")]
    for level, code, name, parent, geometry in areas:
        t = totals.get((level, code), {})
        known = sum(t.get(s, 0) for s in SECTORS)
        outside = (t.get("private", 0) + t.get("civic", 0)) / known if known else None
        lon = lat = None
        if geometry:
            point = shapely.point_on_surface(shapely.from_geojson(geometry))
            lon, lat = round(point.x, 6), round(point.y, 6)
        rows.append((level, code, name, parent, sum(t.values()), known, *(t.get(s, 0) for s in ALL_SECTORS),
                     outside, conflicts.get((level, code), 0), lon, lat))
    conn.executemany(
        "INSERT INTO cluster_areas(level, code, name, parent_code, facilities, known, public, private, civic,"
        " unknown, share_outside_public, sector_conflicts, lon, lat) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def computed(conn: sqlite3.Connection) -> dict[str, Any] | None:
    return get_meta(conn, "cluster")


# --- reading ---------------------------------------------------------------------------------


def _area(conn: sqlite3.Connection, code: str) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM cluster_areas WHERE code = ?", (code,)).fetchone()
    if row is None:
        if conn.execute("SELECT 1 FROM areas WHERE code = ?", (code,)).fetchone():
            raise NotFound(f"the cluster figures for area {code!r} are not computed yet: run `atvira audit"
                           " --recompute`", where="code")
        raise NotFound(f"no municipality or eldership with code {code!r} (see /api/areas)", where="code")
    return dict(row)


def kind_sector_table(conn: sqlite3.Connection, level: str, code: str) -> dict[str, dict[str, int]]:
    """kind -> sector -> count (every kind and sector present, zeros included)."""
    table = {k: dict.fromkeys(ALL_SECTORS, 0) for k in CATEGORIES}
    for r in conn.execute("SELECT category, sector, count FROM cluster_counts WHERE level = ? AND code = ?"
                          " AND category != '*'", (level, code)):
        if r[0] in table and r[1] in table[r[0]]:
            table[r[0]][r[1]] = r[2]
    return table


def actors(conn: sqlite3.Connection, level: str, code: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in conn.execute(
            "SELECT a.category, a.sector, a.facility_id, a.name, a.operator,"
            " json_extract(f.extra, '$.sector_detail') AS detail, json_extract(f.extra, '$.sector_source') AS source,"
            f" {SECTOR_CONFLICT} AS conflict"
            " FROM cluster_actors a JOIN facilities f ON f.id = a.facility_id"
            " WHERE a.level = ? AND a.code = ? ORDER BY a.category, a.sector, a.position", (level, code)):
        out.setdefault((r["category"], r["sector"]), []).append({
            "id": r["facility_id"], "name": r["name"], "operator": r["operator"], "sector_detail": r["detail"],
            "sector_source": r["source"], "sector_conflict": bool(r["conflict"])})
    return out


def only_one_sector(table: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    """sector -> the kinds only that sector provides here (of the three; unknown left out)."""
    out: dict[str, list[str]] = {s: [] for s in SECTORS}
    for kind, row in table.items():
        having = [s for s in SECTORS if row[s] > 0]
        if len(having) == 1:
            out[having[0]].append(kind)
    return out


def area_report(conn: sqlite3.Connection, code: str, *, suggestions: bool = True) -> dict[str, Any]:
    """Everything /cluster/<code> and /api/cluster/<code> show, from the stored figures."""
    area = _area(conn, code)
    level = area["level"]
    table = kind_sector_table(conn, level, code)
    listed = actors(conn, level, code) if level != "country" else {}
    rows = []
    for kind in CATEGORIES:
        counts = table[kind]
        rows.append({
            "category": kind, "counts": counts, "total": sum(counts.values()),
            "actors": {s: listed.get((kind, s), []) for s in ALL_SECTORS},
        })
    parent = None
    if area["parent_code"]:
        p = conn.execute("SELECT code, name FROM areas WHERE code = ?", (area["parent_code"],)).fetchone()
        parent = {"code": p[0], "name": p[1]} if p else None
    children = [dict(r) for r in conn.execute(
        "SELECT code, name, facilities, known, share_outside_public FROM cluster_areas WHERE parent_code = ?"
        " ORDER BY name", (code,))] if level == "municipality" else []
    report = {
        "code": code, "name": area["name"], "level": level, "parent": parent,
        "totals": {s: area[s] for s in ALL_SECTORS} | {"facilities": area["facilities"], "known": area["known"]},
        "share_outside_public": area["share_outside_public"],
        "sector_conflicts": area["sector_conflicts"],
        "reference_point": None if area["lon"] is None else [area["lon"], area["lat"]],
        "table": rows,
        "only_one_sector": only_one_sector(table),
        "elderships": children,
        "suggestions": [],
        "computed": computed(conn),
    }
    if suggestions and area["lon"] is not None:
        report["suggestions"] = partner_suggestions(conn, table, lon=area["lon"], lat=area["lat"],
                                                    area_name=area["name"])
    return report


def partner_suggestions(conn: sqlite3.Connection, table: dict[str, dict[str, int]], *, lon: float, lat: float,
                        area_name: str, k: int = SUGGESTIONS) -> list[dict[str, Any]]:
    """For each kind a sector does not provide here: the nearest places of the other sectors
    that have the kind, and those that could host it (HOSTS), with geodesic distances.

    One block per (kind, missing sector); when no sector provides the kind here at all, one
    block for the kind, with the nearest places of any of the three sectors.
    """
    out = []
    cache: dict[tuple[tuple[str, ...], str], list[dict[str, Any]]] = {}
    present = _country_pairs(conn)

    def near(kinds: tuple[str, ...], sector: str) -> list[dict[str, Any]]:
        kinds = tuple(c for c in kinds if (c, sector) in present)  # none in the country: no search
        if (kinds, sector) not in cache:
            cache[(kinds, sector)] = nearest(conn, lon=lon, lat=lat, categories=kinds, sectors=(sector,), k=k)
        return cache[(kinds, sector)]

    def block(kind: str, missing: list[str], partners: list[str]) -> dict[str, Any] | None:
        hosts = HOSTS.get(kind, ())
        has = sorted((p for s in partners for p in near((kind,), s)), key=_by_distance)[:k]
        could = sorted((p for s in partners for p in near(hosts, s)), key=_by_distance)[:k] if hosts else []
        if not has and not could:
            return None
        return {"category": kind, "missing_sectors": missing, "partner_sectors": partners, "area": area_name,
                "has_it": has, "could_host": could, "host_kinds": list(hosts)}

    for kind in CATEGORIES:
        missing = [s for s in SECTORS if table[kind][s] == 0]
        if len(missing) == len(SECTORS):
            blocks = [block(kind, missing, list(SECTORS))]
        else:
            blocks = [block(kind, [m], [s for s in SECTORS if s != m]) for m in missing]
        out.extend(b for b in blocks if b is not None)
    _add_sources(conn, [p for b in out for p in (*b["has_it"], *b["could_host"])])
    return out


def _by_distance(p: dict[str, Any]) -> tuple[float, str]:
    return p["distance_m"], p["id"]


def _country_pairs(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    """The (kind, sector) pairs that exist anywhere in the country (from the stored counts)."""
    return {(r[0], r[1]) for r in conn.execute(
        "SELECT category, sector FROM cluster_counts WHERE level = 'country' AND category != '*' AND count > 0")}


def _add_sources(conn: sqlite3.Connection, places: list[dict[str, Any]]) -> None:
    """Each suggested place's live sources (looked up for the few shown, not for every candidate)."""
    for p in places:
        if "sources" not in p:
            p["sources"] = [r[0] for r in conn.execute(
                "SELECT DISTINCT source FROM source_records WHERE facility_id = ? AND removed_at IS NULL"
                " ORDER BY source", (p["id"],))] or [p.pop("_source", "")]
        p.pop("_source", None)


def nearest(conn: sqlite3.Connection, *, lon: float, lat: float, categories: tuple[str, ...],
            sectors: tuple[str, ...], k: int, max_m: float = MAX_SEARCH_M) -> list[dict[str, Any]]:
    """The k live places of these kinds and sectors nearest to (lon, lat) by geodesic distance.

    A box of half-side r metres (in degrees, conservatively wide) is searched on the R*Tree;
    every point outside it is farther than r, so once k candidates lie within r they are the
    true k nearest. Otherwise r doubles, up to max_m (the whole country).
    """
    if not categories or not sectors:
        return []
    radius = 2_000.0
    cat_marks = " OR ".join("f.categories LIKE ?" for _ in categories)
    while True:
        dlat = radius / _M_PER_DEG_LAT
        dlon = radius / (_M_PER_DEG_LAT * max(0.05, math.cos(math.radians(min(89.0, abs(lat) + dlat)))))
        rows = conn.execute(
            "SELECT f.id, f.name, f.operator, f.sector, f.categories, f.lon, f.lat, f.source,"
            " json_extract(f.extra, '$.sector_detail') AS detail, json_extract(f.extra, '$.sector_source') AS ssource"
            " FROM facilities_rtree r JOIN facilities f ON f.rid = r.rid"
            " WHERE r.max_lon >= ? AND r.min_lon <= ? AND r.max_lat >= ? AND r.min_lat <= ?"
            f" AND {LIVE} AND f.sector IN ({','.join('?' * len(sectors))}) AND ({cat_marks})",
            (lon - dlon, lon + dlon, lat - dlat, lat + dlat, *sectors,
             *(f'%"{c}"%' for c in categories))).fetchall()
        found = []
        for r in rows:
            kinds = json.loads(r["categories"])
            if not set(kinds) & set(categories):
                continue
            d = geodesic_m(lon, lat, r["lon"], r["lat"])
            if d <= radius:
                found.append({"id": r["id"], "name": r["name"], "operator": r["operator"], "sector": r["sector"],
                              "sector_detail": r["detail"], "sector_source": r["ssource"], "categories": kinds,
                              "distance_m": round(d, 1), "lon": r["lon"], "lat": r["lat"], "_source": r["source"],
                              "_d": d})
        if len(found) >= k or radius >= max_m:
            found.sort(key=lambda p: (p["_d"], p["id"]))
            for p in found:
                p.pop("_d")
            return found[:k]
        radius *= 2


# --- the national overview -------------------------------------------------------------------


def national(conn: sqlite3.Connection, *, per_kind: bool = True, category: str | None = None) -> dict[str, Any]:
    """The share of each sector per kind (country) and per municipality, pilots first.

    `per_kind=False` leaves out each municipality's kind x sector counts (3,360 rows: the JSON
    carries them all). `category` adds `selected` to each municipality: that one kind's counts by
    sector and its share run outside the public sector (240 rows: the page's kind selector)."""
    if category is not None and category not in CATEGORIES:
        raise BadRequest(f"unknown category {category[:40]!r}; known are {', '.join(CATEGORIES)}", where="category")
    row = conn.execute("SELECT * FROM cluster_areas WHERE code = ?", (COUNTRY,)).fetchone()
    # Never computed (an empty store, or one from before this view): zeros, and the page says so.
    country = dict(row) if row is not None else {**dict.fromkeys((*ALL_SECTORS, "facilities", "known",
                                                                  "sector_conflicts"), 0),
                                                 "share_outside_public": None}
    table = kind_sector_table(conn, "country", COUNTRY)
    kinds = []
    for kind in CATEGORIES:
        counts = table[kind]
        total = sum(counts.values())
        known = sum(counts[s] for s in SECTORS)
        kinds.append({"category": kind, "counts": counts, "total": total, "known": known,
                      "shares": {s: (counts[s] / known if known else None) for s in SECTORS}})
    by_kind: dict[str, dict[str, dict[str, int]]] = {}
    rows = conn.execute("SELECT code, category, sector, count FROM cluster_counts WHERE level = 'municipality'"
                        " AND category != '*'").fetchall() if per_kind else []
    for code, kind, sector, count in rows:
        by_kind.setdefault(code, {}).setdefault(kind, dict.fromkeys(ALL_SECTORS, 0))[sector] = count
    selected: dict[str, dict[str, int]] = {}
    if category is not None:
        for code, sector, count in conn.execute(
                "SELECT code, sector, count FROM cluster_counts WHERE level = 'municipality' AND category = ?",
                (category,)):
            selected.setdefault(code, dict.fromkeys(ALL_SECTORS, 0))[sector] = count
    municipalities = []
    for r in conn.execute("SELECT * FROM cluster_areas WHERE level = 'municipality' ORDER BY name"):
        d = dict(r)
        d["pilot"] = d["name"].startswith(PILOTS)
        if per_kind:
            d["kinds"] = by_kind.get(d["code"], {})
        if category is not None:
            counts = selected.get(d["code"], dict.fromkeys(ALL_SECTORS, 0))
            known = sum(counts[s] for s in SECTORS)
            d["selected"] = {**counts, "facilities": sum(counts.values()), "known": known,
                             "share_outside_public": (counts["private"] + counts["civic"]) / known if known else None}
        municipalities.append(d)
    municipalities.sort(key=lambda d: (not d["pilot"], d["name"]))
    return {"totals": {s: country[s] for s in ALL_SECTORS} | {"facilities": country["facilities"],
                                                               "known": country["known"]},
            "share_outside_public": country["share_outside_public"], "sector_conflicts": country["sector_conflicts"],
            "kinds": kinds, "municipalities": municipalities, "computed": computed(conn)}


def share(counts: dict[str, int], sector: str) -> float | None:
    """A sector's share of the facilities whose sector is known (None when none is known)."""
    known = sum(counts.get(s, 0) for s in SECTORS)
    return counts.get(sector, 0) / known if known else None


# --- CSV rows --------------------------------------------------------------------------------

CSV_HEADER = ["section", "area_code", "area", "category", "sector", "count", "facility_id", "name", "operator",
              "sector_detail", "sector_source", "missing_sectors", "distance_m", "sources"]


def report_rows(report: dict[str, Any]) -> Iterator[list[Any]]:
    """The area report as CSV rows: the kind × sector table (one row per listed actor, or one
    row for an empty cell), then every suggestion. Text cells are guarded by the caller."""
    yield CSV_HEADER
    code, name = report["code"], report["name"]
    for row in report["table"]:
        for sector in ALL_SECTORS:
            listed = row["actors"][sector]
            if not listed:
                yield ["table", code, name, row["category"], sector, row["counts"][sector], "", "", "", "", "", "", "", ""]
            for a in listed:
                yield ["table", code, name, row["category"], sector, row["counts"][sector], a["id"], a["name"],
                       a["operator"], a["sector_detail"], a["sector_source"], "", "", ""]
    for s in report["suggestions"]:
        for section, places in (("has_it", s["has_it"]), ("could_host", s["could_host"])):
            for p in places:
                yield [f"suggestion_{section}", code, name, s["category"], p["sector"], "", p["id"], p["name"],
                       p["operator"], p["sector_detail"], p["sector_source"], ";".join(s["missing_sectors"]),
                       p["distance_m"],
                       "; ".join(p["sources"])]
