"""OpenStreetMap adapter, parse half: OSM files and Overpass JSON -> `Facility` records.

Pure: no network. `ingest.overpass` fetches bytes; everything here only reads what it is given,
so tests feed it recorded payloads and real extracts.

Positions follow Overpass `out center` exactly, so a file read here and the same data fetched
live give the same elements: a node is its own lat/lon; a way is the centre of the bounding box
of its nodes; a relation is the centre of the bounding box of its node members and of its way
members' nodes. Like Overpass, members that are themselves relations add nothing (see
drolbr/Overpass-API relation_geometry_store.cc). Nodes missing from a clipped extract are
skipped; an element left with no position gets lon = lat = None and is rejected later with a
reason. Centres are rounded to 7 decimals, the precision OSM stores and Overpass prints.

Tag table (`CATEGORY_RULES`, the one source of truth: `ingest.overpass.build_query` and
docs/osm-tags.md are derived from it). A rule holds when all its conditions hold; `=` is an exact
value, `∋` a `;`-separated list containing one of the values, `≠` "absent or not one of".

    day_centre        amenity=social_facility + social_facility=day_care
    day_centre        amenity=social_facility + social_facility:for ∋ child|senior|disabled|
                      juvenile|mental_health|dementia + social_facility ≠ nursing_home|group_home|
                      assisted_living|shelter (residential care is not a day centre)
    kindergarten      amenity=kindergarten
    childcare         amenity=childcare
    playground        leisure=playground + indoor ≠ yes + playground ≠ forest
    indoor_play       leisure=playground + indoor=yes + playground ≠ forest
    indoor_play       leisure=indoor_play
    indoor_play       kids_area=indoor, or kids_area:indoor=yes (a play room inside a venue)
    baby_room         changing_table=yes|limited + changing_table:location ∋ dedicated_room|room
    baby_room         baby_feeding=room
    toilet            amenity=toilets
    toilet            toilets=yes + toilets:access=yes|permissive|public (toilet inside a venue)
    library / community_centre / townhall     amenity=<same>
    culture           amenity=theatre|arts_centre
    school            amenity=school
    state_institution office=government + government=* (any value), or amenity=courthouse
    baby_room (*)     changing_table=yes           (* fallback: only when no rule above matched)
    baby_room (*)     baby_feeding=yes

Decisions: a changing table or feeding space on a place that is already listed (a library, a
toilet) is a *feature* of it, not a second "baby room"; only a dedicated room adds baby_room.
A place with no category of its own but changing_table=yes / baby_feeding=yes (a mall, a café)
still becomes a baby_room, because a parent who needs to change a nappy now is served by it and
OSM keeps most of that data on shops; `extra["baby_room_basis"]` says "room" or
"changing_table"/"feeding" so the audit can count dedicated rooms alone. changing_table=limited
(an improvised surface) alone does not. kids_area=yes (a corner in a restaurant) is only the
play_corner feature: it does not make a customers-only venue a play facility.
Never mapped: amenity=baby_hatch (an anonymous baby drop-off). Excluded: access=private|no.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import osmium

from directory.errors import InputError
from directory.model import CATEGORIES, Facility, Rejection, check_coordinates
from directory.sectors import from_osm_tags as sector_from_tags

TagFilter = Callable[[Mapping[str, str]], bool]
Box = tuple[float, float, float, float]  # west, south, east, north


# --------------------------------------------------------------------------- the tag table


@dataclass(frozen=True, slots=True)
class Cond:
    """One tag condition. op: "eq" (value is one of), "list" (;-list contains one of),
    "not" (absent or not one of), "any" (present with any value)."""

    key: str
    values: tuple[str, ...]
    op: str = "eq"

    def holds(self, tags: Mapping[str, str]) -> bool:
        value = tags.get(self.key)
        if self.op == "any":
            return bool(value)
        if self.op == "not":
            return value not in self.values
        if value is None:
            return False
        if self.op == "list":
            return any(part.strip() in self.values for part in value.split(";"))
        return value in self.values

    def overpass(self) -> str:
        """The Overpass tag filter meaning the same thing (`!~` also matches a missing key)."""
        alts = "|".join(self.values)
        if self.op == "any":
            return f'["{self.key}"]'
        if self.op == "list":
            return f'["{self.key}"~"(^|;) *({alts}) *(;|$)"]'
        if self.op == "not":
            return f'["{self.key}"!="{alts}"]' if len(self.values) == 1 else f'["{self.key}"!~"^({alts})$"]'
        return f'["{self.key}"="{alts}"]' if len(self.values) == 1 else f'["{self.key}"~"^({alts})$"]'


def is_(key: str, *values: str) -> Cond:
    return Cond(key, values, "eq")


def has_any(key: str, *values: str) -> Cond:
    return Cond(key, values, "list")


def not_(key: str, *values: str) -> Cond:
    return Cond(key, values, "not")


def present(key: str) -> Cond:
    return Cond(key, (), "any")


@dataclass(frozen=True, slots=True)
class TagRule:
    """Elements matching every condition get `category` (fallback rules only if nothing else)."""

    category: str
    conds: tuple[Cond, ...]
    fallback: bool = False

    def holds(self, tags: Mapping[str, str]) -> bool:
        return all(c.holds(tags) for c in self.conds)

    def overpass(self) -> str:
        return "".join(c.overpass() for c in self.conds)


def _rule(category: str, *conds: Cond, fallback: bool = False) -> TagRule:
    return TagRule(category, conds, fallback)


_DAY_CARE_FOR = ("child", "senior", "disabled", "juvenile", "mental_health", "dementia")
_RESIDENTIAL = ("nursing_home", "group_home", "assisted_living", "shelter")

CATEGORY_RULES: tuple[TagRule, ...] = (
    _rule("day_centre", is_("amenity", "social_facility"), is_("social_facility", "day_care")),
    _rule("day_centre", is_("amenity", "social_facility"), has_any("social_facility:for", *_DAY_CARE_FOR),
          not_("social_facility", *_RESIDENTIAL)),
    _rule("kindergarten", is_("amenity", "kindergarten")),
    _rule("childcare", is_("amenity", "childcare")),
    _rule("playground", is_("leisure", "playground"), not_("indoor", "yes"), not_("playground", "forest")),
    _rule("indoor_play", is_("leisure", "playground"), is_("indoor", "yes"), not_("playground", "forest")),
    _rule("indoor_play", is_("leisure", "indoor_play")),
    _rule("indoor_play", is_("kids_area", "indoor")),
    _rule("indoor_play", is_("kids_area:indoor", "yes")),
    _rule("baby_room", is_("changing_table", "yes", "limited"),
          has_any("changing_table:location", "dedicated_room", "room")),
    _rule("baby_room", is_("baby_feeding", "room")),
    _rule("toilet", is_("amenity", "toilets")),
    _rule("toilet", is_("toilets", "yes"), is_("toilets:access", "yes", "permissive", "public")),
    _rule("library", is_("amenity", "library")),
    _rule("community_centre", is_("amenity", "community_centre")),
    _rule("townhall", is_("amenity", "townhall")),
    _rule("culture", is_("amenity", "theatre", "arts_centre")),
    # (issue 15) schools, and the state's offices a citizen walks into: a government office
    # that says which (government=tax|social_security|ministry|...), and courts.
    _rule("school", is_("amenity", "school")),
    _rule("state_institution", is_("office", "government"), present("government")),
    _rule("state_institution", is_("amenity", "courthouse")),
    _rule("baby_room", is_("changing_table", "yes"), fallback=True),
    _rule("baby_room", is_("baby_feeding", "yes"), fallback=True),
)

# Conditions every element must meet whatever rule it matched.
GLOBAL_EXCLUDE: tuple[Cond, ...] = (not_("access", "private", "no"), not_("amenity", "baby_hatch"))

# operator:type -> sector (OSM uses "charitable" more than "charity"; both accepted). Kept for
# callers; the facility's sector now comes from directory.sectors (operator:type + legal forms).
SECTOR_BY_OPERATOR_TYPE: dict[str, str] = {
    **dict.fromkeys(("public", "government", "municipal"), "public"),
    **dict.fromkeys(("private", "commercial"), "private"),
    **dict.fromkeys(("community", "ngo", "religious", "charity", "charitable"), "civic"),
}
_YES_LIMITED_NO = {"yes": "yes", "limited": "limited", "no": "no", "designated": "yes"}
_FEE_TO_FREE = {"no": "yes", "yes": "no"}
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?")


def overpass_selectors() -> list[str]:
    """One Overpass tag-filter string per rule (global exclusions appended), duplicates dropped."""
    out: list[str] = []
    for rule in CATEGORY_RULES:
        pinned = {c.key for c in rule.conds if c.op == "eq"}
        extra = "".join(c.overpass() for c in GLOBAL_EXCLUDE if c.key not in pinned)
        sel = rule.overpass() + extra
        if sel not in out:
            out.append(sel)
    return out


def categories_for(tags: Mapping[str, str]) -> list[str]:
    """The categories an element's tags give, in legend order (empty: not of interest)."""
    if not all(c.holds(tags) for c in GLOBAL_EXCLUDE):
        return []
    found = {r.category for r in CATEGORY_RULES if not r.fallback and r.holds(tags)}
    if not found:
        found = {r.category for r in CATEGORY_RULES if r.fallback and r.holds(tags)}
    return [c for c in CATEGORIES if c in found]


def is_of_interest(tags: Mapping[str, str]) -> bool:
    """A `read_elements(keep=...)` filter: skip everything no rule maps before locating it."""
    return bool(categories_for(tags))


# --------------------------------------------------------------------------- elements


@dataclass(frozen=True, slots=True)
class OsmElement:
    type: str  # node | way | relation
    id: int
    tags: dict[str, str]
    lon: float | None
    lat: float | None

    @property
    def key(self) -> str:
        return f"{self.type}/{self.id}"


def _grow(box: Box | None, lon: float, lat: float) -> Box:
    if box is None:
        return (lon, lat, lon, lat)
    return (min(box[0], lon), min(box[1], lat), max(box[2], lon), max(box[3], lat))


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _centre(box: Box | None) -> tuple[float | None, float | None]:
    if box is None:
        return None, None
    return round((box[0] + box[2]) / 2, 7), round((box[1] + box[3]) / 2, 7)


def read_elements(path: Path, *, keep: TagFilter | None = None) -> Iterator[OsmElement]:
    """Every tagged element of an OSM file (optionally only those `keep(tags)` accepts).

    The format comes from the file name. Unreadable input raises InputError naming the file
    *before* anything is yielded: the whole file is read once up front (pyosmium's first pass
    collects relation members; JSON is loaded), so a truncated file never half-ingests.
    """
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise InputError("file not found or not a regular file", where=str(path))
    if name.endswith((".json", ".json.gz")):
        return _read_json_file(path, keep)
    if name.endswith(".pbf"):
        return _read_osmium(path, None, keep)
    if name.endswith((".osm", ".osm.bz2", ".osm.gz")):
        return _read_osmium(path, None, keep)
    if name.endswith((".xml", ".xml.bz2", ".xml.gz")):
        return _read_osmium(path, "osm" + name[name.rindex(".xml") + 4:], keep)
    raise InputError("unknown OSM file type (expected .osm.pbf, .pbf, .osm, .osm.bz2, .xml, .json, .json.gz)",
                     where=str(path))


# What pyosmium raises for an unreadable file: RuntimeError for most format errors, and its own
# InvalidLocationError (not a RuntimeError) for a coordinate it cannot read, such as lat="šiaurė"
# or LKS-94 metres (lat="6061000") in an .osm file; ValueError for a tag key or value over
# libosmium's 1024-character limit ("OSM tag value is too long").
_OSMIUM_ERRORS = (RuntimeError, ValueError, osmium.InvalidLocationError)


def _tags(obj: Any) -> dict[str, str]:
    return {t.k: t.v for t in obj.tags}


def _read_osmium(path: Path, fmt: str | None, keep: TagFilter | None) -> Iterator[OsmElement]:
    where = str(path)
    source: Any = osmium.io.File(str(path), fmt) if fmt else str(path)
    # Pass 1: which relations we will yield, and the member ids their positions need (in PBF
    # order relations come last, so way boxes must be kept while ways stream past in pass 2).
    members: dict[int, tuple[list[int], list[int]]] = {}
    try:
        for obj in osmium.FileProcessor(source, osmium.osm.RELATION):
            if len(obj.tags) == 0 or (keep is not None and not keep(_tags(obj))):
                continue
            members[obj.id] = ([m.ref for m in obj.members if m.type == "n"],
                               [m.ref for m in obj.members if m.type == "w"])
    except _OSMIUM_ERRORS as exc:
        raise InputError(f"cannot read OSM file: {exc}", where=where) from exc
    return _osmium_second_pass(source, where, members, keep)


def _osmium_second_pass(source: Any, where: str, members: dict[int, tuple[list[int], list[int]]],
                        keep: TagFilter | None) -> Iterator[OsmElement]:
    wanted_ways = {w for _, ways in members.values() for w in ways}
    way_boxes: dict[int, Box | None] = {}
    proc = osmium.FileProcessor(source).with_locations()
    store = proc.node_location_storage
    try:
        for obj in proc:
            if obj.is_relation() and obj.id in members:
                node_refs, way_refs = members[obj.id]
                box: Box | None = None
                for ref in node_refs:
                    try:
                        loc = store.get(ref)
                    except KeyError:
                        continue  # clipped out of the extract
                    if loc.valid():
                        box = _grow(box, loc.lon, loc.lat)
                for ref in way_refs:
                    box = _union(box, way_boxes.get(ref))
                lon, lat = _centre(box)
                yield OsmElement("relation", obj.id, _tags(obj), lon, lat)
                continue
            if obj.is_relation() or (len(obj.tags) == 0 and not (obj.is_way() and obj.id in wanted_ways)):
                continue
            tags = _tags(obj)
            kept = len(tags) > 0 and (keep is None or keep(tags))
            if obj.is_node():
                if kept:
                    ok = obj.location.valid()
                    yield OsmElement("node", obj.id, tags, obj.location.lon if ok else None,
                                     obj.location.lat if ok else None)
            elif obj.is_way() and (kept or obj.id in wanted_ways):
                box = None
                for nd in obj.nodes:
                    if nd.location.valid():
                        box = _grow(box, nd.location.lon, nd.location.lat)
                if obj.id in wanted_ways:
                    way_boxes[obj.id] = box
                if kept:
                    lon, lat = _centre(box)
                    yield OsmElement("way", obj.id, tags, lon, lat)
    except _OSMIUM_ERRORS as exc:
        raise InputError(f"cannot read OSM file: {exc}", where=where) from exc


# --------------------------------------------------------------------------- Overpass JSON

# Overpass reports failures in "remark" (often with HTTP 200). "runtime remark: Timeout is 180
# and maxsize is ..." is informational; "runtime error: Query timed out ..." is not.
_REMARK_ERROR = re.compile(r"error|timed out|timeout(?! is\b)|out of memory", re.IGNORECASE)


def remark_error(doc: Any) -> str | None:
    """The `remark` of an Overpass JSON document when it reports a failure, else None."""
    remark = doc.get("remark") if isinstance(doc, dict) else None
    if isinstance(remark, str) and _REMARK_ERROR.search(remark):
        return remark.strip()
    return None


def load_overpass_json(payload: bytes | str | dict[str, Any], *, where: str) -> dict[str, Any]:
    """Decode and check an Overpass JSON document; InputError says what and where."""
    if isinstance(payload, dict):
        doc: Any = payload
    else:
        try:
            doc = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                             where=where) from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text: {exc}", where=where) from exc
        except RecursionError:
            raise InputError("JSON nested too deeply to be an Overpass answer", where=where) from None
    if not isinstance(doc, dict):
        raise InputError(f"not an Overpass JSON document (top level is {type(doc).__name__})", where=where)
    remark = remark_error(doc)
    if remark is not None:
        raise InputError(f"Overpass reported an error: {remark!r}", where=where)
    if not isinstance(doc.get("elements"), list):
        raise InputError("not an Overpass JSON document: no 'elements' list", where=where)
    return doc


def parse_overpass_json(payload: bytes | str | dict[str, Any], *, where: str,
                        keep: TagFilter | None = None) -> Iterator[OsmElement]:
    """Tagged elements of an Overpass JSON answer (out center / out geom / plain out).

    Checks the whole document first (so errors come before any element), then yields lazily.
    """
    doc = load_overpass_json(payload, where=where)
    return _iter_overpass(doc["elements"], where, keep)


def _num(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _point(obj: Any) -> tuple[float, float] | None:
    if not isinstance(obj, dict):
        return None
    lon, lat = _num(obj.get("lon")), _num(obj.get("lat"))
    return None if lon is None or lat is None else (lon, lat)


def _box_of(points: Iterable[Any]) -> Box | None:
    box: Box | None = None
    for p in points:
        pt = _point(p)
        if pt is not None:
            box = _grow(box, *pt)
    return box


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Resolver:
    """Positions for elements that carry no center: from nodes/ways in the same document."""

    def __init__(self, elements: list[Any]) -> None:
        self.nodes: dict[int, tuple[float, float]] = {}
        self.ways: dict[int, list[Any]] = {}
        for el in elements:
            if not isinstance(el, dict) or not _is_id(el.get("id")):
                continue
            if el.get("type") == "node" and (pt := _point(el)) is not None:
                self.nodes[el.get("id")] = pt  # type: ignore[index]
            elif el.get("type") == "way" and isinstance(el.get("nodes"), list):
                self.ways[el.get("id")] = el["nodes"]  # type: ignore[index]
        self._way_boxes: dict[Any, Box | None] = {}

    def way_box(self, way_id: Any, refs: list[Any] | None = None) -> Box | None:
        if not _is_id(way_id):  # a garbled id (a list, a dict) names nothing in the document
            return None
        if way_id not in self._way_boxes:
            box: Box | None = None
            for ref in refs if refs is not None else self.ways.get(way_id, []):
                if _is_id(ref) and (pt := self.nodes.get(ref)) is not None:
                    box = _grow(box, *pt)
            self._way_boxes[way_id] = box
        return self._way_boxes[way_id]

    def position(self, el: dict[str, Any]) -> tuple[float | None, float | None]:
        if (pt := _point(el)) is not None:
            return pt
        if (pt := _point(el.get("center"))) is not None:
            return pt
        b = el.get("bounds")
        if isinstance(b, dict) and all(_num(b.get(k)) is not None for k in ("minlon", "minlat", "maxlon", "maxlat")):
            return _centre((b["minlon"], b["minlat"], b["maxlon"], b["maxlat"]))
        if isinstance(el.get("geometry"), list):
            return _centre(_box_of(el["geometry"]))
        if el.get("type") == "way" and isinstance(el.get("nodes"), list):
            return _centre(self.way_box(el.get("id"), el["nodes"]))
        if el.get("type") == "relation" and isinstance(el.get("members"), list):
            box: Box | None = None
            for m in el["members"]:
                if not isinstance(m, dict):
                    continue
                if m.get("type") == "node":
                    ref = m.get("ref")
                    pt = _point(m) or (self.nodes.get(ref) if _is_id(ref) else None)
                    box = _grow(box, *pt) if pt else box
                elif m.get("type") == "way":
                    geom = m.get("geometry")
                    box = _union(box, _box_of(geom) if isinstance(geom, list) else self.way_box(m.get("ref")))
            return _centre(box)
        return None, None


def _iter_overpass(elements: list[Any], where: str, keep: TagFilter | None) -> Iterator[OsmElement]:
    resolver: _Resolver | None = None
    for i, el in enumerate(elements):
        if not isinstance(el, dict) or el.get("type") not in ("node", "way", "relation"):
            continue  # areas, counts, stray values: not OSM elements
        raw_tags = el.get("tags")
        if not raw_tags or not isinstance(raw_tags, dict):
            continue
        el_id = el.get("id")
        if not isinstance(el_id, int) or isinstance(el_id, bool):
            raise InputError(f"element #{i} ({el['type']}) has no integer id: {el_id!r}", where=where)
        tags = {str(k): str(v) for k, v in raw_tags.items()}
        if keep is not None and not keep(tags):
            continue
        if resolver is None:
            resolver = _Resolver(elements)
        lon, lat = resolver.position(el)
        yield OsmElement(el["type"], el_id, tags, lon, lat)


def _read_json_file(path: Path, keep: TagFilter | None) -> Iterator[OsmElement]:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                payload = fh.read()
        else:
            payload = path.read_bytes()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(f"cannot read file: {exc}", where=str(path)) from exc
    return parse_overpass_json(payload, where=str(path), keep=keep)


# --------------------------------------------------------------------------- facilities


def _address(tags: Mapping[str, str]) -> str | None:
    """Lithuanian order: "Gedimino pr. 9, 01103 Vilnius" (addr:full wins when present)."""
    if tags.get("addr:full"):
        return tags["addr:full"].strip()
    street = tags.get("addr:street") or tags.get("addr:place") or ""
    first = " ".join(p for p in (street, tags.get("addr:housenumber", "")) if p).strip()
    second = " ".join(p for p in (tags.get("addr:postcode", ""), tags.get("addr:city", "")) if p).strip()
    text = ", ".join(p for p in (first, second) if p)
    return text or None


def _features(tags: Mapping[str, str], categories: list[str]) -> dict[str, str]:
    feats: dict[str, str] = {}

    def put(name: str, value: str | None) -> None:
        if value is not None:
            feats[name] = value

    put("wheelchair", _YES_LIMITED_NO.get(tags.get("wheelchair", "")))
    put("changing_table", {"yes": "yes", "limited": "limited", "no": "no"}.get(tags.get("changing_table", "")))
    put("feeding_room", {"yes": "yes", "room": "yes", "no": "no"}.get(tags.get("baby_feeding", "")))
    if tags.get("kids_area") in ("yes", "indoor") or "yes" in (tags.get("kids_area:indoor"), tags.get("kids_area:outdoor")):
        feats["play_corner"] = "yes"
    elif tags.get("kids_area") == "no":
        feats["play_corner"] = "no"
    if tags.get("amenity") == "toilets":
        put("free", _FEE_TO_FREE.get(tags.get("fee", "")))  # missing fee stays unknown, not free
    elif "toilet" in categories:
        put("free", _FEE_TO_FREE.get(tags.get("toilets:fee", "")))
        feats["toilet"] = "yes"
    else:
        put("free", _FEE_TO_FREE.get(tags.get("fee", "")))
        put("toilet", {"yes": "yes", "no": "no"}.get(tags.get("toilets", "")))
    return feats


def element_to_facility(el: OsmElement, *, fetched_at: str, source: str = "osm",
                        licence: str = "ODbL-1.0") -> Facility | Rejection | None:
    """None: not of interest. Rejection: of interest but unusable (why). Facility otherwise."""
    categories = categories_for(el.tags)
    if not categories:
        return None
    if el.lon is None or el.lat is None:
        if el.type == "node":
            return Rejection(el.key, "no valid position: its lat/lon are missing, not numbers or out of range")
        return Rejection(el.key, "no position: none of its nodes or members are in the data")
    checked = check_coordinates(el.lon, el.lat)
    if isinstance(checked, str):
        return Rejection(el.key, checked)
    tags = el.tags
    extra: dict[str, Any] = {"osm_tags": dict(tags)}
    for name, keys in (("website", ("website", "contact:website", "url")), ("phone", ("phone", "contact:phone")),
                       ("capacity", ("capacity",))):
        value = next((tags[k] for k in keys if tags.get(k)), None)
        if value is not None:
            extra[name] = int(value) if name == "capacity" and value.isdigit() else value
    if "baby_room" in categories:
        room = any(r.category == "baby_room" and not r.fallback and r.holds(tags) for r in CATEGORY_RULES)
        extra["baby_room_basis"] = "room" if room else (
            "changing_table" if tags.get("changing_table") == "yes" else "feeding")
    verified = next((tags[k] for k in ("check_date", "survey:date") if _DATE.match(tags.get(k, ""))), None)
    # operator:type, then a legal form in the operator or the name (directory/sectors.py).
    sector = sector_from_tags(tags)
    extra.update(sector.extra())
    return Facility(
        source=source,
        source_id=el.key,
        name=(tags.get("name") or tags.get("name:lt") or "").strip(),
        categories=categories,
        lon=checked[0],
        lat=checked[1],
        licence=licence,
        address=_address(tags),
        operator=tags.get("operator") or None,
        sector=sector.sector,
        features=_features(tags, categories),
        opening_hours=tags.get("opening_hours") or None,
        last_verified=verified,
        fetched_at=fetched_at,
        extra=extra,
    )


def rules_markdown() -> str:
    """The tag table as the markdown rows docs/osm-tags.md carries (a test keeps them equal)."""
    rows = ["| category | Overpass selector | fallback |", "|---|---|---|"]
    for rule in CATEGORY_RULES:
        sel = rule.overpass().replace("|", "\\|")
        rows.append(f"| {rule.category} | `{sel}` | {'yes' if rule.fallback else ''} |")
    return "\n".join(rows) + "\n"
