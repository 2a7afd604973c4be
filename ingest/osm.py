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

import codecs
import functools
import gzip
import hashlib
import io
import itertools
import json
import re
import struct
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import osmium
import osmium.geom

import directory.model
import directory.sectors
from directory.errors import InputError
from directory.model import CATEGORIES, Facility, Rejection, check_coordinates
from directory.sectors import decide as sector_decide

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


# The tag table compiled for speed (categories_for runs once or twice per element of a country
# extract): every rule starts with an exact `key=value` condition, so rules are indexed by that
# pair and only the few whose first tag is present are tested; conditions become plain tuples.
_Compiled = tuple[tuple[str, str, frozenset[str]], ...]


def _compile(conds: Iterable[Cond]) -> _Compiled:
    return tuple((c.key, c.op, frozenset(c.values)) for c in conds)


def _holds(conds: _Compiled, tags: Mapping[str, str]) -> bool:
    """`all(c.holds(tags) for c in conds)`, without the method calls."""
    for key, op, values in conds:
        value = tags.get(key)
        if op == "eq":
            if value not in values:
                return False
        elif op == "not":
            if value in values:
                return False
        elif op == "any":
            if not value:
                return False
        elif value is None or not any(part.strip() in values for part in value.split(";")):
            return False
    return True


# An indexed rule: its category, whether it is a fallback, and its conditions after the first.
_Indexed = tuple[str, bool, _Compiled]


def _index_rules() -> tuple[tuple[str, ...], dict[tuple[str, str], tuple[_Indexed, ...]]]:
    by_tag: dict[tuple[str, str], list[_Indexed]] = {}
    for rule in CATEGORY_RULES:
        first = rule.conds[0]
        assert first.op == "eq", f"rule {rule} must start with an exact tag (the index needs it)"
        for value in first.values:
            by_tag.setdefault((first.key, value), []).append((rule.category, rule.fallback, _compile(rule.conds[1:])))
    keys = tuple(dict.fromkeys(k for k, _ in by_tag))
    return keys, {k: tuple(v) for k, v in by_tag.items()}


_FIRST_KEYS, _RULES_BY_TAG = _index_rules()
_FIRST_KEY_SET = frozenset(_FIRST_KEYS)
_EXCLUDE = _compile(GLOBAL_EXCLUDE)
_BABY_ROOMS = tuple((r, _compile(r.conds)) for r in CATEGORY_RULES if r.category == "baby_room" and not r.fallback)


def categories_for(tags: Mapping[str, str]) -> list[str]:
    """The categories an element's tags give, in legend order (empty: not of interest)."""
    found: set[str] = set()
    fallback: set[str] = set()
    # the rules' first keys the element has (one C-level pass; the order is irrelevant: sets)
    for key in _FIRST_KEY_SET.intersection(tags):
        for category, is_fallback, rest in _RULES_BY_TAG.get((key, tags[key]), ()):
            if not rest or _holds(rest, tags):  # most rules are their first tag alone
                (fallback if is_fallback else found).add(category)
    if not (found or fallback) or not _holds(_EXCLUDE, tags):
        return []
    found = found or fallback
    if len(found) == 1:  # the usual case: one category, no legend order to keep
        return [*found]
    return [c for c in CATEGORIES if c in found]


def is_of_interest(tags: Mapping[str, str]) -> bool:
    """A `read_elements(keep=...)` filter: skip everything no rule maps before locating it."""
    return bool(categories_for(tags))


_DROP: Any = object()


def _verdict(tags: dict[str, str], keep: TagFilter | None) -> Any:
    """_DROP when `keep` refuses the tags; else what OsmElement.categories gets (the categories
    when `keep` is is_of_interest, which works them out anyway; None otherwise)."""
    if keep is is_of_interest:
        return categories_for(tags) or _DROP
    if keep is not None and not keep(tags):
        return _DROP
    return None


# --------------------------------------------------------------------------- elements


@dataclass(frozen=True, slots=True)
class OsmElement:
    type: str  # node | way | relation
    id: int
    tags: dict[str, str]
    lon: float | None
    lat: float | None
    # categories_for(tags) when the reader already worked them out (keep=is_of_interest), so
    # element_to_facility does not match the tag table a second time; not part of equality.
    categories: list[str] | None = field(default=None, compare=False, repr=False)

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

    The format comes from the file name. Unreadable input raises InputError naming the file.
    An OSM file (PBF, XML) raises it *before* anything is yielded: pyosmium's first pass, which
    collects the relations, reads the whole file here. Overpass JSON is streamed (a 1M-element
    answer would take GBs decoded whole), so its errors, and the error remark Overpass appends
    at the end, are raised when the reader reaches them, possibly after elements were yielded;
    `apply_records` applies a run in one transaction, so a truncated file never half-ingests.
    Elements are yielded in file order, except that JSON elements whose position needs other
    elements (ways given by node ids, relations by member ids: not `out center`) come last.
    """
    return _read_file(Path(path), keep)


def _read_file(path: Path, keep: TagFilter | None) -> Iterator[OsmElement]:
    """read_elements."""
    if not path.is_file():
        raise InputError("file not found or not a regular file", where=str(path))
    if path.name.lower().endswith((".json", ".json.gz")):
        return _read_json_file(path, keep)
    return _osmium_second_pass(_osmium_open(path, keep), keep)


# What pyosmium raises for an unreadable file: RuntimeError for most format errors, and its own
# InvalidLocationError (not a RuntimeError) for a coordinate it cannot read, such as lat="šiaurė"
# or LKS-94 metres (lat="6061000") in an .osm file; ValueError for a tag key or value over
# libosmium's 1024-character limit ("OSM tag value is too long").
_OSMIUM_ERRORS = (RuntimeError, ValueError, osmium.InvalidLocationError)


def _tags(obj: Any) -> dict[str, str]:
    """The tags as a dict. pyosmium's TagList iterator is a Python class calling the C++ side
    once per tag; asking the C++ side directly (the same calls TagIterator makes) halves the
    cost, which is most of reading a candidate element. The public API is the fallback."""
    data = getattr(obj, "_pyosmium_data", None)
    if data is None:
        return {t.k: t.v for t in obj.tags}
    return dict(map(data.tags_next, itertools.repeat(data.tags_begin(), data.tags_size())))  # a C loop


def _prefilter(keep: TagFilter | None) -> Any:
    """The libosmium filter that lets through every element `keep` could accept, so the rest of
    a country extract (untagged way nodes, benches, shops) never reaches Python: for
    `is_of_interest`, the first tag of every rule (a TagFilter of key=value pairs); otherwise any
    tagged element."""
    if keep is is_of_interest:
        return osmium.filter.TagFilter(*_RULES_BY_TAG)
    return osmium.filter.EmptyTagFilter()


# A relation kept by the first pass: id, tags, categories, node member ids, way member ids.
_Relation = tuple[int, dict[str, str], Any, list[int], list[int]]


@dataclass(frozen=True, slots=True)
class _OsmiumInput:
    source: Any  # what pyosmium opens: the file name, or an io.File naming the format
    where: str
    relations: list[_Relation]  # the first pass's
    pbf: bool  # a PBF file: its versions are trusted (read_hashed)


def _osmium_open(path: Path, keep: TagFilter | None) -> _OsmiumInput:
    """An OSM file, with its first pass done here and not lazily: it reads the whole file, so
    an unreadable one fails at the call. It keeps the relations we will yield (few) with the
    member ids their positions need."""
    where = str(path)
    name = path.name.lower()
    if name.endswith((".pbf", ".osm", ".osm.bz2", ".osm.gz")):
        source: Any = str(path)
    elif name.endswith((".xml", ".xml.bz2", ".xml.gz")):
        source = osmium.io.File(str(path), "osm" + name[name.rindex(".xml") + 4:])
    else:
        raise InputError("unknown OSM file type (expected .osm.pbf, .pbf, .osm, .osm.bz2, .xml, .json, .json.gz)",
                         where=where)
    relations: list[_Relation] = []
    try:
        for obj in osmium.FileProcessor(source, osmium.osm.RELATION).with_filter(_prefilter(keep)):
            tags = _tags(obj)
            if not tags or (cats := _verdict(tags, keep)) is _DROP:
                continue
            relations.append((obj.id, tags, cats, [m.ref for m in obj.members if m.type == "n"],
                              [m.ref for m in obj.members if m.type == "w"]))
    except _OSMIUM_ERRORS as exc:
        raise InputError(f"cannot read OSM file: {exc}", where=where) from exc
    return _OsmiumInput(source, where, relations, name.endswith(".pbf"))


def _nodes_and_ways(src: _OsmiumInput, keep: TagFilter | None) -> tuple[Any, Any]:
    """The second pass's processor (only candidates reach Python; every node's location is
    kept in libosmium's index for the ways) and that index."""
    # sparse_mem_array holds 16 bytes per node whatever the ids (flex_mem may switch to a dense
    # array sized by the largest id).
    proc = osmium.FileProcessor(src.source, osmium.osm.NODE | osmium.osm.WAY).with_locations("sparse_mem_array")
    proc.with_filter(_prefilter(keep))
    return proc, proc.node_location_storage


def _node_position(obj: Any) -> tuple[float | None, float | None]:
    loc = obj.location
    return (loc.lon, loc.lat) if loc.valid() else (None, None)


_WKB = osmium.geom.WKBFactory()
_ALL_NODES = osmium.geom.use_nodes.ALL


def _way_centre(obj: Any) -> tuple[float | None, float | None]:
    """The centre of the bounding box of the way's nodes that have a location (Overpass's).
    The coordinates come in one call, as the way's WKB line (pyosmium makes two Python objects
    per node otherwise); a way with a node clipped out of the extract (no location: the WKB
    factory refuses it) or under two nodes takes the node by node way."""
    try:
        wkb = bytes.fromhex(_WKB.create_linestring(obj, _ALL_NODES))
    except (RuntimeError, osmium.InvalidLocationError):
        return _way_centre_by_node(obj)
    # little-endian (1) LineString (2): the point count, then lon, lat as doubles
    if wkb[:5] != b"\x01\x02\x00\x00\x00":
        return _way_centre_by_node(obj)
    count = int.from_bytes(wkb[5:9], "little")
    coords = struct.unpack_from(f"<{2 * count}d", wkb, 9)
    lons, lats = coords[0::2], coords[1::2]
    return round((min(lons) + max(lons)) / 2, 7), round((min(lats) + max(lats)) / 2, 7)


def _way_centre_by_node(obj: Any) -> tuple[float | None, float | None]:
    box: Box | None = None
    for nd in obj.nodes:
        loc = nd.location
        if loc.valid():
            box = _grow(box, loc.lon, loc.lat)
    return _centre(box)


def _osmium_second_pass(src: _OsmiumInput, keep: TagFilter | None) -> Iterator[OsmElement]:
    """Nodes and ways as they stream past, then the relations (_positioned_relations)."""
    proc, store = _nodes_and_ways(src, keep)
    try:
        for obj in proc:
            tags = _tags(obj)
            if not tags or (cats := _verdict(tags, keep)) is _DROP:
                continue
            if obj.is_node():
                yield OsmElement("node", obj.id, tags, *_node_position(obj), cats)
            else:
                yield OsmElement("way", obj.id, tags, *_way_centre(obj), cats)
    except _OSMIUM_ERRORS as exc:
        raise InputError(f"cannot read OSM file: {exc}", where=src.where) from exc
    yield from _positioned_relations(src, store)


def _positioned_relations(src: _OsmiumInput, store: Any) -> Iterator[OsmElement]:
    """The first pass's relations, positioned: their way members' node lists come from a third
    pass over the ways alone (only when a relation has way members), their positions from the
    second pass's location index."""
    if not src.relations:
        return
    wanted_ways = {w for *_, ways in src.relations for w in ways}
    way_boxes: dict[int, Box | None] = {}
    if wanted_ways:
        try:
            for way in osmium.FileProcessor(src.source, osmium.osm.WAY).with_filter(osmium.filter.IdFilter(wanted_ways)):
                box = None
                for ref in way.nodes:
                    loc = _stored_location(store, ref.ref)
                    if loc is not None:
                        box = _grow(box, loc.lon, loc.lat)
                way_boxes[way.id] = box
        except _OSMIUM_ERRORS as exc:
            raise InputError(f"cannot read OSM file: {exc}", where=src.where) from exc
    for rel_id, tags, cats, node_refs, way_refs in src.relations:
        box = None
        for ref in node_refs:
            loc = _stored_location(store, ref)
            if loc is not None:
                box = _grow(box, loc.lon, loc.lat)
        for ref in way_refs:
            box = _union(box, way_boxes.get(ref))
        lon, lat = _centre(box)
        yield OsmElement("relation", rel_id, tags, lon, lat, cats)


def _stored_location(store: Any, ref: int) -> Any:
    """A node's valid location from the index, or None (clipped out of the extract)."""
    try:
        loc = store.get(ref)
    except KeyError:
        return None
    return loc if loc.valid() else None


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

    Bytes are decoded as they are read (`_stream_overpass`): a bad document raises InputError
    when the reader reaches the problem, which may be after some elements were yielded (the
    error remark Overpass appends comes last). Callers therefore apply the elements in one
    transaction (`apply_records`), so a failed run stores nothing.
    """
    if isinstance(payload, dict):
        doc = load_overpass_json(payload, where=where)
        return _iter_overpass(doc["elements"], where, keep)
    data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    return _iter_overpass_stream(lambda: io.BytesIO(data), where, keep)


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

    @classmethod
    def collect(cls, open_input: Callable[[], Any], where: str, pending: list[dict[str, Any]]) -> _Resolver:
        """A resolver holding only what `pending` (elements needing look-ups) needs, read in at
        most two more passes over the document (ways named by relations, then nodes)."""
        resolver = cls([])
        want_ways = {m.get("ref") for el in pending if el.get("type") == "relation" for m in el["members"]
                     if isinstance(m, dict) and m.get("type") == "way" and not isinstance(m.get("geometry"), list)}
        want_ways = {w for w in want_ways if _is_id(w)}
        if want_ways:
            for _, el, _text in _stream_overpass(open_input, where):
                if (isinstance(el, dict) and el.get("type") == "way" and _is_id(el.get("id"))
                        and el["id"] in want_ways and isinstance(el.get("nodes"), list)):
                    resolver.ways[el["id"]] = el["nodes"]
        want_nodes: set[Any] = {ref for refs in resolver.ways.values() for ref in refs if _is_id(ref)}
        for el in pending:
            if el.get("type") == "way":
                want_nodes.update(ref for ref in el["nodes"] if _is_id(ref))
            else:
                want_nodes.update(m.get("ref") for m in el["members"] if isinstance(m, dict)
                                  and m.get("type") == "node" and _is_id(m.get("ref")))
        if want_nodes:
            for _, el, _text in _stream_overpass(open_input, where):
                if (isinstance(el, dict) and el.get("type") == "node" and _is_id(el.get("id"))
                        and el["id"] in want_nodes and (pt := _point(el)) is not None):
                    resolver.nodes[el["id"]] = pt
        return resolver

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


def _kept(i: int, el: Any, where: str, keep: TagFilter | None) -> tuple[int, dict[str, str], Any] | None:
    """(id, tags, categories) of an OSM element worth positioning (`_verdict`), None for anything
    else; InputError for a tagged element without an integer id."""
    if not isinstance(el, dict) or el.get("type") not in ("node", "way", "relation"):
        return None  # areas, counts, stray values: not OSM elements
    raw_tags = el.get("tags")
    if not raw_tags or not isinstance(raw_tags, dict):
        return None
    el_id = el.get("id")
    if not isinstance(el_id, int) or isinstance(el_id, bool):
        raise InputError(f"element #{i} ({el['type']}) has no integer id: {el_id!r}", where=where)
    tags = {str(k): str(v) for k, v in raw_tags.items()}
    cats = _verdict(tags, keep)
    return None if cats is _DROP else (el_id, tags, cats)


# Positions that need no other element (a node's own lat/lon, a center, bounds, geometry).
_DIRECT = _Resolver([])


def _iter_overpass(elements: list[Any], where: str, keep: TagFilter | None) -> Iterator[OsmElement]:
    resolver: _Resolver | None = None
    for i, el in enumerate(elements):
        found = _kept(i, el, where, keep)
        if found is None:
            continue
        if resolver is None:
            resolver = _Resolver(elements)
        lon, lat = resolver.position(el)
        yield OsmElement(el["type"], *found[:2], lon, lat, found[2])


def _direct_position(el: dict[str, Any]) -> tuple[float | None, float | None] | None:
    """`_Resolver.position(el)` when it needs no other element; None when it does (a way given by
    its node ids, a relation by its member ids). The same checks in the same order."""
    lon, lat = el.get("lon"), el.get("lat")
    if type(lon) is float and type(lat) is float:  # the common node: what _point returns for it
        return lon, lat
    if (pt := _point(el)) is not None:
        return pt
    if (pt := _point(el.get("center"))) is not None:
        return pt
    b = el.get("bounds")
    if isinstance(b, dict) and all(_num(b.get(k)) is not None for k in ("minlon", "minlat", "maxlon", "maxlat")):
        return _DIRECT.position(el)
    if isinstance(el.get("geometry"), list):
        return _DIRECT.position(el)
    kind = el.get("type")
    if (kind == "way" and isinstance(el.get("nodes"), list)) or (
            kind == "relation" and isinstance(el.get("members"), list)):
        return None
    return None, None


# --------------------------------------------------------------------------- streaming JSON
#
# A 1M-element Overpass answer is ~250 MB; json.loads of it holds GBs of Python objects. The
# document is therefore read in chunks and each element decoded alone by the standard library's
# C scanner (`raw_decode`), whatever the layout (Overpass's pretty print, one line, anything):
# memory stays at one chunk plus one element. Anything but a top-level object (not an Overpass
# answer anyway) is handed to json.loads whole, so its error is exactly the old one.

_CHUNK = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_NEXT = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")  # between two items of a list
_DECODER = json.JSONDecoder()
_SCAN = _DECODER.scan_once


class _Cut(Exception):
    """The value at the buffer's end may continue in the next chunk: read more and retry."""


class _JsonReader:
    """One pass over a JSON document from a binary stream, with exact error positions."""

    def __init__(self, fh: Any, where: str) -> None:
        self.fh = fh
        self.where = where
        self.utf8 = codecs.getincrementaldecoder("utf-8")("surrogatepass")  # as json.loads decodes
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.start = 0  # where the last value decoded began in buf (its text: buf[start:pos])
        self.lines_before = 0  # newlines in the text already dropped from buf
        self.col_before = 0  # characters after the last dropped newline

    # -- buffer

    def _more(self) -> bool:
        """Append a chunk (dropping what is consumed); False at the end of the input."""
        if self.eof:
            return False
        if self.pos:
            done = self.buf[:self.pos]
            newlines = done.count("\n")
            if newlines:
                self.lines_before += newlines
                self.col_before = len(done) - done.rfind("\n") - 1
            else:
                self.col_before += len(done)
            self.buf = self.buf[self.pos:]
            self.pos = 0
        try:
            raw = self.fh.read(_CHUNK)
            text = self.utf8.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text: {exc}", where=self.where) from exc
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise InputError(f"cannot read file: {exc}", where=self.where) from exc
        if not raw:
            self.eof = True
        self.buf += text
        return bool(raw) or bool(text)

    def error(self, msg: str, pos: int) -> InputError:
        """"invalid JSON at line L, column C" counted from the start of the document."""
        line = self.buf.count("\n", 0, pos)
        col = pos - self.buf.rfind("\n", 0, pos)
        if line == 0:
            col += self.col_before
        return InputError(f"invalid JSON at line {self.lines_before + line + 1}, column {col}: {msg}",
                          where=self.where)

    def skip_ws(self) -> str:
        """The next significant character ('' at the end of the input), not consumed."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def value(self) -> Any:
        """Decode the value at the cursor (after white space), reading more input if it is cut."""
        self.skip_ws()
        while True:
            try:
                return self._value_here()
            except _Cut:
                if not self._more():
                    return self._value_here(final=True)  # the last value, or json.loads's error

    def _value_here(self, final: bool = False) -> Any:
        buf, pos = self.buf, self.pos
        try:
            obj, end = _SCAN(buf, pos)
        except StopIteration as exc:
            if not final and exc.value >= len(buf) - 8:
                raise _Cut from None
            raise self.error("Expecting value", exc.value) from None
        except json.JSONDecodeError as exc:
            # A value cut by the chunk boundary fails within a few characters of the end, or as
            # an unterminated string; any other failure is the document's own.
            if not final and (exc.pos >= len(buf) - 16 or exc.msg.startswith("Unterminated string")):
                raise _Cut from None
            raise self.error(exc.msg, exc.pos) from None
        except RecursionError:
            raise InputError("JSON nested too deeply to be an Overpass answer", where=self.where) from None
        if end + 8 > len(buf) and not final and not self.eof:
            raise _Cut  # a number may go on in the next chunk ("0" then ".6", "1e" then "5")
        self.start, self.pos = pos, end
        return obj

    def expect(self, chars: str, msg: str) -> str:
        c = self.skip_ws()
        if c == "" or c not in chars:
            raise self.error(msg, self.pos)
        self.pos += 1
        return c


def _stream_overpass(open_input: Callable[[], Any], where: str, stored: Mapping[bytes, str] | None = None,
                     in_context: Any = None) -> Iterator[tuple[int, Any, str | None]]:
    """(index, element, its text) for each item of the document's "elements" list, as it is
    read; at the end the document is checked as `load_overpass_json` checks it (the error
    remark, the list), and InputError is raised then if it fails. A top-level value that is not
    an object is decoded whole (json.loads) for the same errors as before (its text: None).

    `stored` (raw hash as 16 bytes -> source id; `in_context`: a sha256 of the raw context, as
    _hashed_overpass_stream hashes an element's text): an element whose text's raw hash is
    there is not decoded; such elements in a row come as one item, (index of the first,
    (source ids, raw hashes, texts), None) (a tuple: what json never decodes). Its text is found without the decoder (_stream_elements), and only a
    text equal to one a run decoded before can have a stored hash, so its extent is the one
    the decoder would find; anything else is decoded as before, with the same errors."""
    with open_input() as fh:
        r = _JsonReader(fh, where)
        first = r.skip_ws()
        if first != "{":
            # Not an object (or a byte-order mark, UTF-16, nothing at all): decode it whole for
            # exactly json.loads's answer; load_overpass_json raises for anything but an object.
            with open_input() as again:
                try:
                    payload = again.read()
                except (OSError, EOFError) as exc:
                    raise InputError(f"cannot read file: {exc}", where=where) from exc
            doc = load_overpass_json(payload, where=where)
            for i, el in enumerate(doc["elements"]):
                yield i, el, None
            return
        r.pos += 1
        top: dict[str, Any] = {}
        if r.skip_ws() == "}":
            r.pos += 1
        else:
            while True:
                if r.skip_ws() != '"':
                    raise r.error("Expecting property name enclosed in double quotes", r.pos)
                key = r.value()
                r.expect(":", "Expecting ':' delimiter")
                if key == "elements" and r.skip_ws() == "[":
                    r.pos += 1
                    top[key] = []
                    if r.skip_ws() == "]":
                        r.pos += 1
                    elif stored:
                        yield from _stream_elements(r, stored, in_context)
                    else:
                        yield from _stream_elements(r, None, None)
                else:
                    top[key] = r.value()
                if r.expect(",}", "Expecting ',' delimiter") == "}":
                    break
        if r.skip_ws() != "":
            raise r.error("Extra data", r.pos)
    remark = remark_error(top)
    if remark is not None:
        raise InputError(f"Overpass reported an error: {remark!r}", where=where)
    if not isinstance(top.get("elements"), list):
        raise InputError("not an Overpass JSON document: no 'elements' list", where=where)


def _stream_elements(r: _JsonReader, stored: Mapping[bytes, str] | None, in_context: Any
                     ) -> Iterator[tuple[int, Any, str | None]]:
    """_stream_overpass's elements, from the first one (the cursor on it) to the list's "]"
    (consumed).

    With `stored`, each element's text is first guessed without the decoder: from the cursor to
    the next `tail` in the buffer, the text the last element decoded ended with (its last line:
    Overpass prints an element's closing brace alone at the start of a line and inner ones
    indented; on one line, its last two characters). The guess is only trusted when its raw
    hash is stored: a stored hash is the hash of a text the decoder read whole as one element
    before, so the decoder would end this one at the same character (an object ends at its own
    closing brace, whatever follows it). Anything else is decoded, with its exact errors."""
    i = 0
    tail = ""  # none until an element is decoded (the first always is)
    match = _NEXT.match
    get = stored.get if stored else None
    while True:
        # The cursor is on an element's first character.
        after = False  # the cursor is after the element (found stored), not on it
        if tail and get is not None:
            # The stored elements in a row, collected (one item for all of them: a re-run's
            # unchanged records are counted together: sync.Raw.run).
            ids: list[str] = []
            raws: list[bytes] = []
            texts: list[str] = []
            pos, copy, width = r.pos, in_context.copy, len(tail)
            while True:
                buf = r.buf
                find, size = buf.find, len(buf)
                while (end := find(tail, pos + 1)) >= 0:
                    end += width
                    text = buf[pos:end]
                    digest = copy()
                    digest.update(text.encode("utf-8", "surrogatepass"))
                    raw = digest.digest()[:16]
                    sid = get(raw)
                    if sid is None:
                        break
                    ids.append(sid)
                    raws.append(raw)
                    texts.append(text)
                    m = match(buf, end)
                    if m is None or m.end() >= size:  # the list's end, or the buffer's: the general way
                        pos, after = end, True
                        break
                    pos = m.end()
                else:  # no tail in the rest of the buffer: the element goes on in the next chunk
                    r.pos = pos
                    if ids:  # a run holds one buffer's elements at most (their texts are kept)
                        yield i, (ids, raws, texts), None
                        i += len(ids)
                        ids, raws, texts = [], [], []
                    more = r._more()
                    pos = r.pos  # what was read is dropped from the buffer
                    if more:
                        continue
                break
            r.pos = pos
            if ids:
                yield i, (ids, raws, texts), None
                i += len(ids)
        if not after:
            try:
                el = r._value_here()
            except _Cut:
                el = r.value()
            text = r.buf[r.start:r.pos]
            if get is not None:
                nl = text.rfind("\n")
                tail = text[nl:] if nl >= 0 else text[-2:]
            yield i, el, text
            i += 1
        # The usual case in one step (a comma, the next element in the buffer); anything else,
        # the end of the list or of the buffer included, the general way with its exact errors.
        m = match(r.buf, r.pos)
        if m is not None and m.end() < len(r.buf):
            r.pos = m.end()
            continue
        if r.expect(",]", "Expecting ',' delimiter") == "]":
            return
        r.skip_ws()


def _iter_overpass_stream(open_input: Callable[[], Any], where: str, keep: TagFilter | None) -> Iterator[OsmElement]:
    """Tagged elements as the document streams past. Elements whose position needs other
    elements (a way given by node ids, a relation by member ids: not Overpass `out center`)
    are kept aside and yielded at the end, after a second pass has collected what they need."""
    deferred: list[tuple[dict[str, Any], tuple[int, dict[str, str], Any]]] = []
    for i, el, _text in _stream_overpass(open_input, where):
        found = _kept(i, el, where, keep)
        if found is None:
            continue
        pos = _direct_position(el)
        if pos is None:
            deferred.append((el, found))
            continue
        lon, lat = pos
        yield OsmElement(el["type"], *found[:2], lon, lat, found[2])
    if not deferred:
        return
    resolver = _Resolver.collect(open_input, where, [el for el, _ in deferred])
    for el, found in deferred:
        lon, lat = resolver.position(el)
        yield OsmElement(el["type"], *found[:2], lon, lat, found[2])


def _read_json_file(path: Path, keep: TagFilter | None) -> Iterator[OsmElement]:
    gz = path.name.lower().endswith(".gz")

    def open_input() -> Any:
        try:
            return gzip.open(path, "rb") if gz else path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read file: {exc}", where=str(path)) from exc

    return _iter_overpass_stream(open_input, str(path), keep)


# --------------------------------------------------------------------------- facilities


def _address(tags: Mapping[str, str]) -> str | None:
    """Lithuanian order: "Gedimino pr. 9, 01103 Vilnius" (addr:full wins when present)."""
    full = tags.get("addr:full")
    if full:
        return full.strip()
    street = tags.get("addr:street") or tags.get("addr:place") or ""
    number = tags.get("addr:housenumber", "")
    postcode = tags.get("addr:postcode", "")
    city = tags.get("addr:city", "")
    # " ".join of the non-empty parts, then ", ".join of the non-empty halves (spelled out: this
    # runs once per element of a country extract)
    first = (f"{street} {number}" if street and number else street or number).strip()
    second = (f"{postcode} {city}" if postcode and city else postcode or city).strip()
    text = f"{first}, {second}" if first and second else first or second
    return text or None


_CHANGING_TABLE = {"yes": "yes", "limited": "limited", "no": "no"}
_FEEDING = {"yes": "yes", "room": "yes", "no": "no"}
_YES_NO = {"yes": "yes", "no": "no"}


def _features(tags: Mapping[str, str], categories: list[str]) -> dict[str, str]:
    feats: dict[str, str] = {}
    get = tags.get
    if (value := _YES_LIMITED_NO.get(get("wheelchair", ""))) is not None:
        feats["wheelchair"] = value
    if (value := _CHANGING_TABLE.get(get("changing_table", ""))) is not None:
        feats["changing_table"] = value
    if (value := _FEEDING.get(get("baby_feeding", ""))) is not None:
        feats["feeding_room"] = value
    kids = get("kids_area")
    if kids in ("yes", "indoor") or "yes" in (get("kids_area:indoor"), get("kids_area:outdoor")):
        feats["play_corner"] = "yes"
    elif kids == "no":
        feats["play_corner"] = "no"
    if get("amenity") == "toilets":
        if (value := _FEE_TO_FREE.get(get("fee", ""))) is not None:  # missing fee stays unknown, not free
            feats["free"] = value
    elif "toilet" in categories:
        if (value := _FEE_TO_FREE.get(get("toilets:fee", ""))) is not None:
            feats["free"] = value
        feats["toilet"] = "yes"
    else:
        if (value := _FEE_TO_FREE.get(get("fee", ""))) is not None:
            feats["free"] = value
        if (value := _YES_NO.get(get("toilets", ""))) is not None:
            feats["toilet"] = value
    return feats


@functools.lru_cache(maxsize=4096)  # operators repeat
def _sector(operator_type: str | None, operator: str | None, name: str | None) -> tuple[str, dict[str, object]]:
    """The sector and its Sector.extra() (made once per distinct triple: the caller copies it)."""
    sector = sector_decide(operator_type=operator_type, operator=operator, name=name)
    return sector.sector, sector.extra()


OSM_LICENCE = "ODbL-1.0"


def element_to_facility(el: OsmElement, *, fetched_at: str, source: str = "osm",
                        licence: str = OSM_LICENCE) -> Facility | Rejection | None:
    """None: not of interest. Rejection: of interest but unusable (why). Facility otherwise."""
    tags = el.tags
    categories = list(el.categories) if el.categories is not None else categories_for(tags)
    if not categories:
        return None
    if el.lon is None or el.lat is None:
        if el.type == "node":
            return Rejection(el.key, "no valid position: its lat/lon are missing, not numbers or out of range")
        return Rejection(el.key, "no position: none of its nodes or members are in the data")
    lon, lat = el.lon, el.lat
    if type(lon) is float and type(lat) is float and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0:
        checked: tuple[float, float] | str = (lon, lat)  # what check_coordinates says of it, sooner
    else:
        checked = check_coordinates(lon, lat)
        if isinstance(checked, str):
            return Rejection(el.key, checked)
    get = tags.get
    extra: dict[str, Any] = {"osm_tags": dict(tags)}
    # extra[...] <- the first of these tags that is set (capacity as a number when it is digits)
    if value := get("website") or get("contact:website") or get("url"):
        extra["website"] = value
    if value := get("phone") or get("contact:phone"):
        extra["phone"] = value
    if value := get("capacity"):
        extra["capacity"] = int(value) if value.isdigit() else value
    if "baby_room" in categories:
        room = any(_holds(conds, tags) for _, conds in _BABY_ROOMS)
        extra["baby_room_basis"] = "room" if room else (
            "changing_table" if tags.get("changing_table") == "yes" else "feeding")
    verified = None
    for k in ("check_date", "survey:date"):
        value = tags.get(k)
        if value and _DATE.match(value):
            verified = value
            break
    # operator:type, then a legal form in the operator or the name (directory/sectors.py; what
    # sectors.from_osm_tags reads, decided once per distinct triple).
    sector, sector_extra = _sector(tags.get("operator:type"), tags.get("operator"),
                                   tags.get("name") or tags.get("name:lt"))
    extra.update(sector_extra)
    if "sector_evidence" in sector_extra:  # the one nested value: each record gets its own copy
        extra["sector_evidence"] = dict(sector_extra["sector_evidence"])
    return Facility(
        source=source,
        source_id=f"{el.type}/{el.id}",
        name=(tags.get("name") or tags.get("name:lt") or "").strip(),
        categories=categories,
        lon=checked[0],
        lat=checked[1],
        licence=licence,
        address=_address(tags),
        operator=tags.get("operator") or None,
        sector=sector,
        features=_features(tags, categories),
        opening_hours=tags.get("opening_hours") or None,
        last_verified=verified,
        fetched_at=fetched_at,
        extra=extra,
    )


# --------------------------------------------------------------------------- raw hashes
#
# A re-run skips every element whose raw hash the store holds already (directory.sync.Raw). The
# hash covers what element_to_facility reads (type, id, position, tags) and a fingerprint of
# what it does with them: the tag table, and the source text of this module and of the sector
# rules and record model it uses, so any change to the mapping (a new category tag, a fixed
# address format) maps every element again on the next run.
#
# A PBF element that carries a version (every extract cut from the OSM database: Geofabrik's,
# the planet's) is keyed by its type, id, version, changeset and position instead of its tags:
# OSM never changes a version once written, so (type, id, version) names one set of tags, and a
# re-run need not read the tags of an element whose key the store holds (pyosmium makes a Python
# object per tag: most of reading a candidate). The position stays in the key because a way's
# version does not change when its nodes move (its centre does). What is trusted is the OSM
# database's rule; a PBF whose tags were rewritten without new versions (a tag-transform tool)
# breaks it, so only PBF files are keyed so: .osm XML is what editors save, and JOSM keeps the
# version of an element edited locally (marking it action="modify", which libosmium does not
# report). Elements without a version (0: written without metadata) or with a negative id (not
# in the OSM database) are hashed by their tags as before.


@functools.lru_cache(maxsize=1)
def _code_digest() -> bytes:
    h = hashlib.sha256()
    for module in (__file__, directory.sectors.__file__, directory.model.__file__):
        h.update(Path(module).read_bytes() if module else b"")
    return h.digest()


def mapping_fingerprint() -> str:
    """The mapping rules' fingerprint: the tag table as it is now and the mapping code."""
    return hashlib.sha256(_code_digest() + repr((CATEGORY_RULES, GLOBAL_EXCLUDE)).encode()).hexdigest()


def raw_context(*, source: str, licence: str, fetched_from: str = "", placement: str = "") -> bytes:
    """What a run's mapped records depend on beside the element: the mapping fingerprint, the
    source and licence the records are stored under, and the areas that place them (a digest:
    new areas may refuse a point). fetched_at is not in it: it is not content."""
    return "\0".join((mapping_fingerprint(), source, licence, fetched_from, placement)).encode() + b"\0"


def element_raw_hash(el: OsmElement, context: bytes) -> str:
    """The raw hash of an element as read (its position resolved), in `context` (raw_context)."""
    return _raw_hash(el.type, el.id, el.lon, el.lat, el.tags, context)


def _raw_hash(kind: str, el_id: int, lon: float | None, lat: float | None, tags: dict[str, str], context: bytes) -> str:
    return hashlib.sha256(context + orjson.dumps((kind, el_id, lon, lat, tags))).hexdigest()[:32]


# An element as a re-run first needs it: its key ("node/1"), its raw hash, and a function that
# makes the element (None: not kept) only when the raw hash turns out to be new; with a fourth
# item True when the reader found the raw hash among the run's stored ones (read_hashed's
# `stored`: sync.Raw.stored). Several such elements in a row may come as one instead:
# ("", "", a function giving the j-th as those 4 items, True, their keys) (sync.Raw.run).
HashedElement = (tuple[str, str, Callable[[], Any]] | tuple[str, str, Callable[[], Any], bool]
                 | tuple[str, str, Callable[[int], Any], bool, list[str]])
Then = Callable[[OsmElement], Any] | None  # what read_hashed's makers apply to the element made


def _given(el: OsmElement, then: Then) -> Callable[[], Any]:
    return (lambda: el) if then is None else functools.partial(then, el)


def _hashed(elements: Iterable[OsmElement], context: bytes, then: Then) -> Iterator[HashedElement]:
    for el in elements:
        yield el.key, element_raw_hash(el, context), _given(el, then)


def read_hashed(path: Path, *, keep: TagFilter | None, context: bytes, then: Then = None,
                known: Callable[[], Container[str]] | None = None,
                stored: Callable[[], Mapping[bytes, str]] | None = None) -> Iterator[HashedElement]:
    """`read_elements(path, keep=keep)` as (key, raw hash in `context` (raw_context), maker):
    the maker makes the element only when called (None: `keep` refuses it), and returns
    `then(element)` when `then` is given (run_osm maps it there: one call, not two).
    An Overpass JSON element that carries its own position is hashed from its text as the file
    gives it (nothing is made and no tag table consulted for one whose hash is stored already);
    a PBF element with a version by its version and position (versioned_raw_hash; its tags are
    not even read when its hash is in `known()`, the raw hashes the store holds: the maker of
    such an element reads them again from the file, should it be called); the rest from the
    element as read (element_raw_hash). The same elements, the same errors (an element with no
    integer id raises when it is made: within the run). `known` is called once, here, and only
    for a PBF file, so what it returns must be what the store holds when the run starts.

    `stored` (sync.StoredKeys for the run's source and scope) serves Overpass JSON: an
    element whose text hashes to one of its raw hashes is not even decoded, and comes as
    (key, raw hash, maker, True) (the key is the one stored with that hash: the same text).
    It is called when the first element is read (apply_records reads inside its transaction),
    and only when the file is JSON."""
    path = Path(path)
    name = path.name.lower()
    if path.is_file() and name.endswith((".json", ".json.gz")):
        gz = name.endswith(".gz")

        def open_input() -> Any:
            try:
                return gzip.open(path, "rb") if gz else path.open("rb")
            except OSError as exc:
                raise InputError(f"cannot read file: {exc}", where=str(path)) from exc

        return _hashed_overpass_stream(open_input, str(path), keep, context, then, stored)
    if not path.is_file():
        raise InputError("file not found or not a regular file", where=str(path))
    src = _osmium_open(path, keep)
    stored = known() if known is not None and src.pbf else frozenset()
    return _hashed_osmium(src, keep, context, then, stored)


def versioned_raw_hash(kind: str, el_id: int, version: int, changeset: int, lon: float | None, lat: float | None,
                       context: bytes) -> str:
    """The raw hash of a PBF element that carries a version, in `context` (raw_context): its
    type, id, version and changeset (its tags are the version's), and its position (a way's
    centre moves with its nodes, its version does not)."""
    return hashlib.sha256(context + orjson.dumps(("version", kind, el_id, version, changeset, lon, lat))).hexdigest()[:32]


def _hashed_osmium(src: _OsmiumInput, keep: TagFilter | None, context: bytes, then: Then,
                   known: Container[str]) -> Iterator[HashedElement]:
    """_osmium_second_pass's elements, hashed, not matched against `keep` until made (only
    those whose raw hash is new are). A versioned element whose hash is in `known` is yielded
    without its tags when it is certainly its id's first copy in the file (its id above every
    id of its type met so far, nodes before ways, as a sorted extract has them): apply_records
    then skips it as unchanged without calling its maker. A later copy (a duplicate, which
    apply_records rejects) is read whole, as is everything in an unsorted file after the point
    where it stops being sorted."""
    proc, store = _nodes_and_ways(src, keep)
    partial, dumps = functools.partial, orjson.dumps
    in_context = hashlib.sha256(context)  # versioned_raw_hash's, copied per element (cheaper)
    top_node = top_way = 0  # the highest ids met so far (only positive ids are keyed by version)
    ways_begun = False
    try:
        for obj in proc:
            el_id = obj.id
            if obj.is_node():
                kind = "node"
                lon, lat = _node_position(obj)
                first = not ways_begun and el_id > top_node
                if first:
                    top_node = el_id
            else:
                kind = "way"
                lon, lat = _way_centre(obj)
                ways_begun = True
                first = el_id > top_way
                if first:
                    top_way = el_id
            raw = None
            if src.pbf and el_id > 0 and (version := obj.version) > 0:
                digest = in_context.copy()
                digest.update(dumps(("version", kind, el_id, version, obj.changeset, lon, lat)))
                raw = digest.hexdigest()[:32]  # = versioned_raw_hash(kind, el_id, ..., context)
                if first and raw in known:
                    yield (f"{kind}/{el_id}", raw,
                           partial(_read_again, src, kind, el_id, lon, lat, keep, then))
                    continue
            tags = _tags(obj)
            if not tags:
                continue
            if raw is None:  # not versioned: keyed by its tags
                raw = _raw_hash(kind, el_id, lon, lat, tags, context)
            yield f"{kind}/{el_id}", raw, partial(_make, then, keep, kind, el_id, tags, lon, lat)
    except _OSMIUM_ERRORS as exc:
        raise InputError(f"cannot read OSM file: {exc}", where=src.where) from exc
    for el in _positioned_relations(src, store):  # matched against `keep` in the first pass
        yield el.key, element_raw_hash(el, context), _given(el, then)


def _read_again(src: _OsmiumInput, kind: str, el_id: int, lon: float | None, lat: float | None,
                keep: TagFilter | None, then: Then) -> Any:
    """The maker of an element yielded without its tags (_hashed_osmium): its first copy's tags
    read again from the file, in a pass of their own. apply_records never calls it (it skips an
    element whose raw hash it holds); it is here so that no maker makes a wrong element."""
    entity = osmium.osm.NODE if kind == "node" else osmium.osm.WAY
    try:
        for obj in osmium.FileProcessor(src.source, entity).with_filter(osmium.filter.IdFilter([el_id])):
            return _make(then, keep, kind, el_id, _tags(obj), lon, lat)
    except _OSMIUM_ERRORS as exc:
        raise InputError(f"cannot read OSM file: {exc}", where=src.where) from exc
    raise InputError(f"{kind}/{el_id} is no longer in the file (was it replaced during the run?)", where=src.where)


def _make(then: Then, keep: TagFilter | None, kind: str, el_id: int, tags: dict[str, str], lon: float | None,
          lat: float | None) -> Any:
    """The element read (not matched against `keep` yet), or None when `keep` refuses it."""
    cats = _verdict(tags, keep)
    if cats is _DROP:
        return None
    made = OsmElement(kind, el_id, tags, lon, lat, cats)
    return made if then is None else then(made)


def parse_overpass_hashed(payload: bytes | str | dict[str, Any], *, where: str, keep: TagFilter | None,
                          context: bytes, then: Then = None,
                          stored: Callable[[], Mapping[bytes, str]] | None = None) -> Iterator[HashedElement]:
    """`parse_overpass_json` as `read_hashed` gives a file's elements (`stored`: as there)."""
    if isinstance(payload, dict):
        return _hashed(parse_overpass_json(payload, where=where, keep=keep), context, then)
    data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    return _hashed_overpass_stream(lambda: io.BytesIO(data), where, keep, context, then, stored)


def _json_element(then: Then, i: int, el: dict[str, Any], where: str, keep: TagFilter | None,
                  pos: tuple[float | None, float | None]) -> Any:
    found = _kept(i, el, where, keep)
    if found is None:
        return None
    made = OsmElement(el["type"], found[0], found[1], pos[0], pos[1], found[2])
    return made if then is None else then(made)


_KINDS = frozenset(("node", "way", "relation"))


def _json_text_element(then: Then, i: int, text: str, where: str, keep: TagFilter | None) -> Any:
    """The maker of an element yielded undecoded (its text's raw hash was stored): the text
    decoded (it decoded before: the same text) and made as _hashed_overpass_stream makes it."""
    el = json.loads(text)
    pos = _direct_position(el)
    # Only an element positioned by its own text is hashed by its text (_hashed_overpass_stream).
    assert pos is not None, "a raw hash of an element's text is only kept for one positioned by it"
    return _json_element(then, i, el, where, keep, pos)


def _stored_element(then: Then, where: str, keep: TagFilter | None, first: int, ids: list[str], raws: list[bytes],
                    texts: list[str], j: int) -> HashedElement:
    """The j-th of stored elements in a row (_stream_overpass) as read_hashed gives one alone."""
    return ids[j], raws[j].hex(), functools.partial(_json_text_element, then, first + j, texts[j], where, keep), True


def _hashed_overpass_stream(open_input: Callable[[], Any], where: str, keep: TagFilter | None,
                            context: bytes, then: Then,
                            stored: Callable[[], Mapping[bytes, str]] | None = None) -> Iterator[HashedElement]:
    """_iter_overpass_stream's elements, hashed: an element whose position is in its own text
    (a node's lat/lon, a center, bounds, geometry) by that text; the others (positions from
    other elements, yielded at the end as before) by the element once positioned. An element
    whose text's hash is in `stored()` comes undecoded, marked stored (read_hashed)."""
    deferred: list[tuple[dict[str, Any], tuple[int, dict[str, str], Any]]] = []
    sha256 = hashlib.sha256
    partial = functools.partial
    # Called here, when the first element is asked for (inside apply_records's transaction).
    # An empty store (a first run) gives {}: nothing to skip, no hash made twice.
    keys = stored() if stored is not None else None
    for i, el, text in _stream_overpass(open_input, where, keys, sha256(context) if keys else None):
        if type(el) is tuple:  # stored already (_stream_overpass): (keys, raw hashes, texts) from i
            yield "", "", partial(_stored_element, then, where, keep, i, *el), True, el[0]
            continue
        if type(el) is not dict or el.get("type") not in _KINDS:
            continue  # what _kept leaves out, without making anything
        tags = el.get("tags")
        if not tags or type(tags) is not dict:
            continue
        pos = _direct_position(el)
        if pos is None:
            found = _kept(i, el, where, keep)
            if found is not None:
                deferred.append((el, found))
            continue
        if text is None:  # decoded whole (not an object at the top: an error follows anyway)
            made = _json_element(None, i, el, where, keep, pos)
            if made is not None:
                yield made.key, element_raw_hash(made, context), _given(made, then)
            continue
        key = f"{el['type']}/{el.get('id')}"
        raw = sha256(context + text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        if keys and keys.get(bytes.fromhex(raw)) == key:  # decoded all the same (the first, a fooled guess)
            yield key, raw, partial(_json_element, then, i, el, where, keep, pos), True
            continue
        yield key, raw, partial(_json_element, then, i, el, where, keep, pos)
    if not deferred:
        return
    resolver = _Resolver.collect(open_input, where, [el for el, _ in deferred])
    for el, found in deferred:
        lon, lat = resolver.position(el)
        made = OsmElement(el["type"], *found[:2], lon, lat, found[2])
        yield made.key, element_raw_hash(made, context), _given(made, then)


def rules_markdown() -> str:
    """The tag table as the markdown rows docs/osm-tags.md carries (a test keeps them equal)."""
    rows = ["| category | Overpass selector | fallback |", "|---|---|---|"]
    for rule in CATEGORY_RULES:
        sel = rule.overpass().replace("|", "\\|")
        rows.append(f"| {rule.category} | `{sel}` | {'yes' if rule.fallback else ''} |")
    return "\n".join(rows) + "\n"
