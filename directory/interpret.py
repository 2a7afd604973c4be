"""How a search text is understood: need words, a place, and name words.

"darželis Antakalnis" is the category kindergarten (`vocabulary`), the place Antakalnio sen.
(`places`, the gazetteer) and no name words; "Žiogelis" stays a name search. The API, the map's
list and clusters, and the downloads (web and CLI) all call `interpret` on the parsed query
before running it, so they agree; the API says what it understood (`interpreted`).

The rules, in order:
1. Need words (categories and features, Lithuanian or English, any case ending) become filters.
   An explicit `category=` wins over category words; feature words add to `features=`.
2. The remaining words stay a name/address search when some facility matches them (with the
   filters of step 1). Only when none does is a run of them read as a place name (the longest
   run that is exactly a place's name, after folding and stemming); the words left over are
   the name search.
3. A place filters by its area: an eldership or municipality by its code, a city by its
   municipality (each Lithuanian city is a municipality of its own), any other place (town,
   suburb, village) by a box around its point (`PLACE_RADIUS_M`).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from typing import Any

from . import places
from .query import FacilityQuery, compile_where
from .vocabulary import match_needs

# Half the side of the box a point-only place filters by, by kind (metres).
PLACE_RADIUS_M = {"city": 10_000, "town": 3000, "suburb": 1500, "quarter": 1000, "neighbourhood": 1000,
                  "village": 1500}
DEFAULT_RADIUS_M = 1000


def _box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    dlat = radius_m / 111_320.0
    dlon = radius_m / (111_320.0 * max(0.01, math.cos(math.radians(lat))))
    return (max(-180.0, lon - dlon), max(-90.0, lat - dlat), min(180.0, lon + dlon), min(90.0, lat + dlat))


def _matches_any(conn: sqlite3.Connection, query: FacilityQuery) -> bool:
    """Whether any facility matches the text and filters, wherever it is (not only in view)."""
    probe = replace(query, bbox=None, within=None, after=None, near=None, radius_m=None, open_states=())
    source, where, params, _key = compile_where(probe)
    return conn.execute(f"SELECT 1 FROM {source} WHERE {where} LIMIT 1", params).fetchone() is not None


def _find_place(conn: sqlite3.Connection, rest: list[str]) -> tuple[dict[str, Any], list[str]] | None:
    """The longest run of `rest` that is exactly a place name, and the words left over."""
    for n in range(len(rest), 0, -1):
        for i in range(len(rest) - n + 1):
            found = places.suggest(conn, " ".join(rest[i:i + n]), limit=1, exact=True)
            if found:
                return found[0], rest[:i] + rest[i + n:]
    return None


def _apply_place(query: FacilityQuery, place: dict[str, Any]) -> FacilityQuery:
    kind = place["kind"]
    if kind == "eldership" and place.get("area_code"):
        return replace(query, eldership=place["area_code"])
    if kind == "municipality" and place.get("area_code"):
        return replace(query, municipality=place["area_code"])
    if kind == "city" and place.get("municipality_code"):
        return replace(query, municipality=place["municipality_code"])
    return replace(query, within=_box(place["lon"], place["lat"], PLACE_RADIUS_M.get(kind, DEFAULT_RADIUS_M)))


def interpret(conn: sqlite3.Connection, query: FacilityQuery) -> tuple[FacilityQuery, dict[str, Any] | None]:
    """The query to run for `query.q`, and what was understood (None when there is no text):
    {"categories": [...], "features": [...], "place": {name, kind, ...} | null, "words": "..."}."""
    if not query.q:
        return query, None
    need = match_needs(query.q)
    rest = list(need.rest)
    run = replace(query, categories=query.categories or need.categories,
                  features=tuple(dict.fromkeys((*query.features, *need.features))),
                  q=" ".join(rest) or None)
    place = None
    if rest and not _matches_any(conn, run):
        found = _find_place(conn, rest)
        if found is not None:
            place, rest = found
            run = _apply_place(replace(run, q=" ".join(rest) or None), place)
    if not need.matched and place is None:
        run = query  # a plain name search, exactly as typed
    understood = {
        "categories": list(run.categories if need.categories else ()),
        "features": list(need.features),
        "place": None if place is None else {
            k: place[k] for k in ("name", "kind", "area_code", "municipality_code", "municipality", "lon", "lat",
                                  "bbox")},
        "words": run.q or "",
    }
    if place is not None and understood["place"]["bbox"] is None and run.within is not None:
        understood["place"]["bbox"] = list(run.within)
    return run, understood
