"""Named places for the gazetteer (`directory.places`): OSM `place` nodes (cities, towns,
villages, suburbs, ...) with their population, from an Overpass JSON / OSM file or live from the
Overpass API through the same client and cache as the facilities.

`../shared/data/geodata-lt-osm-nodes/lithuania-2019-places.json.gz` is such a file (22,132 named
place nodes of Lithuania in the Overpass JSON envelope), read by the same reader as facilities.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from directory.errors import InputError
from directory.places import PLACE_KINDS, PlaceEntry

from . import osm

# The place=* values worth a search suggestion (no farms, plots or islands without people).
KINDS = frozenset(PLACE_KINDS)


def is_place(tags: Mapping[str, str]) -> bool:
    return tags.get("place") in KINDS and bool((tags.get("name") or "").strip())


def _population(value: str | None) -> int | None:
    text = (value or "").strip().replace(" ", "").replace(",", "")
    return int(text) if text.isdigit() else None  # "~300" or "unknown": unknown, not an error


def to_entries(elements: Iterator[osm.OsmElement]) -> Iterator[PlaceEntry]:
    for el in elements:
        if el.lon is None or el.lat is None:
            continue
        yield PlaceEntry(name=el.tags["name"].strip(), kind=el.tags["place"], source_id=el.key, lon=el.lon,
                         lat=el.lat, population=_population(el.tags.get("population")))


def read_places(path: Path) -> list[PlaceEntry]:
    """The named places of one OSM file (.json/.json.gz Overpass envelope, .osm, .pbf)."""
    entries = list(to_entries(osm.read_elements(Path(path), keep=is_place)))
    if not entries:
        raise InputError("no named place nodes (place=city|town|village|suburb|...) in this file", where=str(path))
    return entries


def overpass_query(*, area: str = "LT", timeout: int = 180) -> str:
    """Every named place node of a country (ISO 3166-1 code), for a live gazetteer."""
    kinds = "|".join(sorted(KINDS))
    return (f'[out:json][timeout:{timeout}];\n'
            f'area["ISO3166-1"="{area.upper()}"][admin_level=2][boundary=administrative]->.a;\n'
            f'node["place"~"^({kinds})$"]["name"](area.a);\nout;\n')


def parse_places(payload: bytes, *, where: str) -> list[PlaceEntry]:
    return list(to_entries(osm.parse_overpass_json(payload, where=where, keep=is_place)))
