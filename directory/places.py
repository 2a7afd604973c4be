"""The gazetteer: place search by name, as the user types, with no geocoder on the request path.

Places are the loaded municipalities and elderships (`areas`) and the named places of a country
(cities, towns, villages, suburbs: OSM `place` nodes, loaded by `ingest.places`). Each is stored
under keys made of its words folded and stemmed (`vocabulary.word_stem`), with the words that
only say what kind of area it is left out ("sen.", "seniūnija", "sav.", "m.", "r.", "miesto",
"rajono"), so "Antakalnis", "Antakalnio sen." and "antakalnio" share the key "antakaln", and
"Žirmūnai" / "Zirmunu" share "zirmun". A search is a prefix match on the keys.

Ranking: a whole-name match (of 4 letters or more: "Vil" is still being typed) before a match from a later word; then the kind group (cities and
municipalities; towns, elderships and suburbs; villages and the rest), then the kind (a city
before its municipality, an eldership before a suburb of the same name), then population. So
"Vilnius" is the city, "Kaunas" the city before Kauno m. and r. sav., and "Antakalnis" the
eldership before the suburb and the villages of that name.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import shapely

from .areas import AreaLocator
from .query import fts_expression
from .vocabulary import fold, word_stem, words

__all__ = ["PlaceEntry", "find_place", "fold", "place_keys", "rebuild_area_places", "save_places", "suggest"]

# Words that say what kind of area a name is, not which one (folded).
AREA_WORDS = frozenset({"sen", "seniunija", "sav", "savivaldybe", "m", "r", "miesto", "rajono", "apyl"})

# kind -> (group, order within the group); unknown kinds go last.
KIND_RANK: dict[str, tuple[int, int]] = {
    "city": (0, 0), "municipality": (0, 1),
    "town": (1, 1), "eldership": (1, 0), "suburb": (1, 2), "quarter": (1, 3), "neighbourhood": (1, 4),
    "village": (2, 0), "hamlet": (2, 1), "locality": (2, 2), "isolated_dwelling": (2, 3), "island": (2, 4),
}
PLACE_KINDS = tuple(k for k in KIND_RANK if k not in ("municipality", "eldership"))
MAX_SUGGESTIONS = 20


def _kind_rank(kind: str) -> tuple[int, int]:
    return KIND_RANK.get(kind, (3, 0))


def key_words(name: str) -> list[str]:
    """The stemmed words of a name, without the area-kind words."""
    stems = [word_stem(w) for w in words(name) if fold(w) not in AREA_WORDS]
    return [s for s in stems if s]


def place_keys(name: str) -> list[tuple[str, int]]:
    """(key, whole) pairs for a name: the whole name, and the name from each later word on
    ("Kazlų Rūda" is found by "kazlu" and by "ruda")."""
    stems = key_words(name)
    return [(" ".join(stems[i:]), 1 if i == 0 else 0) for i in range(len(stems))]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceEntry:
    """A named place from a source (not an area: those come from the areas table)."""

    name: str
    kind: str
    source_id: str
    lon: float
    lat: float
    population: int | None = None


def _insert(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    cur = conn.execute(
        "INSERT INTO places(name, kind, source, source_id, area_code, municipality_code, eldership_code, lon, lat,"
        " min_lon, min_lat, max_lon, max_lat, population, rank_group)"
        " VALUES (:name, :kind, :source, :source_id, :area_code, :municipality_code, :eldership_code, :lon, :lat,"
        " :min_lon, :min_lat, :max_lon, :max_lat, :population, :rank_group)", row)
    conn.executemany("INSERT OR IGNORE INTO place_keys(key, place_id, whole) VALUES (?, ?, ?)",
                     [(k, cur.lastrowid, whole) for k, whole in place_keys(row["name"])])


def _delete_source(conn: sqlite3.Connection, source: str) -> None:
    conn.execute("DELETE FROM place_keys WHERE place_id IN (SELECT id FROM places WHERE source = ?)", (source,))
    conn.execute("DELETE FROM places WHERE source = ?", (source,))


def save_places(conn: sqlite3.Connection, entries: Iterable[PlaceEntry], *, locator: AreaLocator,
                source: str = "osm") -> int:
    """Replace the places of `source` with `entries`, each placed in its municipality and
    eldership; inside the caller's transaction. Returns how many were stored."""
    entries = list(entries)
    placed = locator.bulk_locate([e.lon for e in entries], [e.lat for e in entries])
    _delete_source(conn, source)
    for e, (mun, eld) in zip(entries, placed):
        _insert(conn, {"name": e.name, "kind": e.kind, "source": source, "source_id": e.source_id,
                       "area_code": None, "municipality_code": mun, "eldership_code": eld, "lon": e.lon,
                       "lat": e.lat, "min_lon": None, "min_lat": None, "max_lon": None, "max_lat": None,
                       "population": e.population, "rank_group": _kind_rank(e.kind)[0]})
    return len(entries)


def rebuild_area_places(conn: sqlite3.Connection, locator: AreaLocator) -> int:
    """Make the gazetteer's areas match the loaded areas and re-place the other places under
    `locator`; inside the caller's transaction (areas_store.save_areas calls it)."""
    _delete_source(conn, "areas")
    n = 0
    for area in [*locator.municipalities, *locator.elderships]:
        inside = shapely.point_on_surface(area.geometry)  # a point inside, even for a crescent
        min_lon, min_lat, max_lon, max_lat = (float(v) for v in shapely.bounds(area.geometry))
        is_mun = area.level == "municipality"
        _insert(conn, {"name": area.name, "kind": area.level, "source": "areas",
                       "source_id": f"{area.level}/{area.code}",  # codes are unique within a level only
                       "area_code": area.code, "municipality_code": area.code if is_mun else area.parent_code,
                       "eldership_code": None if is_mun else area.code, "lon": inside.x, "lat": inside.y,
                       "min_lon": min_lon, "min_lat": min_lat, "max_lon": max_lon, "max_lat": max_lat,
                       "population": area.population, "rank_group": _kind_rank(area.level)[0]})
        n += 1
    rows = conn.execute("SELECT id, lon, lat FROM places WHERE source != 'areas'").fetchall()
    placed = locator.bulk_locate([r["lon"] for r in rows], [r["lat"] for r in rows])
    conn.executemany("UPDATE places SET municipality_code = ?, eldership_code = ? WHERE id = ?",
                     [(m, e, r["id"]) for r, (m, e) in zip(rows, placed)])
    return n


def _row_to_place(r: sqlite3.Row) -> dict[str, Any]:
    bbox = None if r["min_lon"] is None else [r["min_lon"], r["min_lat"], r["max_lon"], r["max_lat"]]
    return {"name": r["name"], "kind": r["kind"], "lon": r["lon"], "lat": r["lat"], "bbox": bbox,
            "area_code": r["area_code"], "municipality_code": r["municipality_code"],
            "municipality": r["municipality"], "eldership_code": r["eldership_code"],
            "population": r["population"]}


def suggest(conn: sqlite3.Connection, text: str, *, limit: int = 10, exact: bool = False) -> list[dict[str, Any]]:
    """Places whose name (or a later word of it) starts with `text`, best first (see the module
    docstring); `exact` keeps only names equal to `text` after folding and stemming."""
    key = " ".join(key_words(text))
    if not key:
        return []
    order = " ".join(f"WHEN '{kind}' THEN {o}" for kind, (_g, o) in KIND_RANK.items())
    match = "k.key = ?" if exact else "k.key >= ? AND k.key < ?"
    params: list[Any] = [key] if exact else [key, key + "\U0010ffff"]
    rows = conn.execute(
        f"""SELECT p.*, (SELECT a.name FROM areas a WHERE a.code = p.municipality_code
                         AND a.level = 'municipality') AS municipality,
                   max(k.key = ? AND k.whole AND length(k.key) >= 4) AS whole_exact, max(k.key = ? AND length(k.key) >= 4) AS any_exact, max(k.whole) AS whole
            FROM place_keys k JOIN places p ON p.id = k.place_id
            WHERE {match}
            GROUP BY p.id
            ORDER BY whole_exact DESC, any_exact DESC, whole DESC, p.rank_group,
                     CASE p.kind {order} ELSE 9 END, coalesce(p.population, -1) DESC, p.name, p.id
            LIMIT ?""",
        (key, key, *params, max(1, min(limit, MAX_SUGGESTIONS))),
    ).fetchall()
    return [_row_to_place(r) for r in rows]


def _area_by_name(conn: sqlite3.Connection, text: str) -> dict[str, Any] | None:
    """An area whose folded name contains `text`, for areas not (yet) in the gazetteer (a store
    whose areas were written before the gazetteer existed): exact, then prefix, then substring."""
    wanted = fold(text)
    best = None
    for r in conn.execute("SELECT code, level, name, parent_code, population, min_lon, min_lat, max_lon, max_lat"
                          " FROM areas WHERE min_lon IS NOT NULL AND max_lon IS NOT NULL"):
        name = fold(r["name"])
        if wanted and wanted in name:
            rank = (0 if name == wanted else 1 if name.startswith(wanted) else 2, r["level"] != "municipality", len(name))
            if best is None or rank < best[0]:
                best = (rank, r)
    if best is None:
        return None
    r = best[1]
    is_mun = r["level"] == "municipality"
    return {"name": r["name"], "kind": r["level"], "lon": (r["min_lon"] + r["max_lon"]) / 2,
            "lat": (r["min_lat"] + r["max_lat"]) / 2, "bbox": [r["min_lon"], r["min_lat"], r["max_lon"], r["max_lat"]],
            "area_code": r["code"], "municipality_code": r["code"] if is_mun else r["parent_code"],
            "municipality": None, "eldership_code": None if is_mun else r["code"], "population": r["population"]}


def find_place(conn: sqlite3.Connection, text: str) -> dict[str, Any] | None:
    """The best place for `text` (gazetteer first), else a facility's address or name; or None."""
    found = suggest(conn, text, limit=1)
    if found:
        return found[0]
    area = _area_by_name(conn, text)
    if area is not None:
        return area
    expr = fts_expression(text)
    if expr is None:
        return None
    row = conn.execute(
        "SELECT f.name, f.address, f.lon, f.lat, f.municipality_code FROM facilities_fts"
        " JOIN facilities f ON f.rid = facilities_fts.rowid"
        " WHERE facilities_fts MATCH ? AND f.lon IS NOT NULL AND f.status != 'removed' ORDER BY rank LIMIT 1",
        (expr,),
    ).fetchone()
    if row is None:
        return None
    return {"name": row["address"] or row["name"], "kind": "address", "lon": row["lon"], "lat": row["lat"],
            "bbox": None, "area_code": None, "municipality_code": row["municipality_code"], "municipality": None,
            "eldership_code": None, "population": None}
