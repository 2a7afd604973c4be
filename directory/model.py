"""The facility record every source adapter produces and the store keeps.

The taxonomy (category slugs, feature names, sectors, statuses) is public: the API, the CLI and
the exports all use these exact strings, so they only ever grow.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

# Category slugs. Order is the order a legend shows them in.
CATEGORIES: dict[str, str] = {
    "day_centre": "Day centre",
    "kindergarten": "Kindergarten",
    "childcare": "Childcare",
    "playground": "Playground",
    "indoor_play": "Indoor play",
    "baby_room": "Baby room",
    "toilet": "Toilet",
    "library": "Library",
    "community_centre": "Community centre",
    "townhall": "Town hall",
    "culture": "Culture",
    # (issue 15) the places the social-cluster question names beside the ones above.
    "school": "School",
    "state_institution": "State institution",
}

# Feature flags. A facility's features map a name to "yes", "limited" or "no"; a feature that
# is absent is *unknown*, which is never the same as "no" (the audit depends on that).
FEATURES: dict[str, str] = {
    "changing_table": "Changing table",
    "feeding_room": "Feeding room",
    "wheelchair": "Wheelchair access",
    "free": "Free of charge",
    "play_corner": "Play corner",
    "toilet": "Toilet",
    "seating": "Place to sit",
    "cafe": "Café",
    "open_foyer": "Open to anyone",
    "pram_access": "Pram access",
}
FEATURE_VALUES = ("yes", "limited", "no")

# The extras every export carries as a column of its own (issue 12): key in Facility.extra ->
# (kind, description). kind: integer (a whole number; anything else a source wrote there stays in
# the detail API only), string, or list (a list of texts: joined with ';' in CSV and GeoPackage,
# a JSON array in GeoJSON). Other extras (e.g. the raw `osm_tags`) are in the detail API
# (/api/facilities/<id>) and the SQLite download, not in the flat files.
EXTRA_FIELDS: dict[str, tuple[str, str]] = {
    "capacity": ("integer", "Places (registers: the sum over the groups; OpenStreetMap: capacity=*)"),
    "children": ("integer", "Children enrolled (registers)"),
    "free_places": ("integer", "Free places (registers)"),
    "waiting_list": ("integer", "Children on the waiting list (registers)"),
    "age_from": ("integer", "Youngest age admitted, in years (registers)"),
    "age_to": ("integer", "Oldest age admitted, in years (registers)"),
    "rows": ("integer", "How many register rows (e.g. kindergarten groups) were merged into this place"),
    "groups": ("list", "The register's group ids, separated by ';'"),
    "languages": ("list", "Languages of instruction, separated by ';' (registers)"),
    "elderate": ("string", "The eldership as the register names it (beside the computed eldership)"),
    "website": ("string", "Website"),
    "phone": ("string", "Phone number"),
    "baby_room_basis": ("string", "Why a place counts as a baby room: room, changing_table or feeding"),
}

SECTORS = ("public", "private", "civic", "unknown")
STATUSES = ("active", "closed", "unknown", "removed")

# Facility ids must survive in URLs and file names untouched.
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def make_facility_id(source: str, source_id: str) -> str:
    """A stable, URL-safe id derived from the first source record that described a place."""
    return _ID_UNSAFE.sub("-", f"{source}-{source_id}").strip("-")


def suffixed_facility_id(source: str, source_id: str) -> str:
    """The id for a record whose `make_facility_id` another record already holds ("a/b" and
    "a b" both slug to "x-a-b"): the slug plus a digest of the exact source id, so the same
    record gets the same id in every run and on every machine."""
    digest = hashlib.sha1(f"{source}\0{source_id}".encode()).hexdigest()[:8]
    return f"{make_facility_id(source, source_id)}-{digest}"


@dataclass(slots=True)
class Facility:
    """One place as a source describes it (before it is merged with other sources)."""

    source: str
    source_id: str
    name: str
    categories: list[str]
    lon: float | None
    lat: float | None
    licence: str
    address: str | None = None
    operator: str | None = None
    sector: str = "unknown"
    features: dict[str, str] = field(default_factory=dict)
    opening_hours: str | None = None
    status: str = "active"
    last_verified: str | None = None
    fetched_at: str | None = None
    municipality_code: str | None = None
    eldership_code: str | None = None
    # Source-specific extras worth keeping (capacity, website, raw tags, ...): JSON-able only.
    extra: dict[str, Any] = field(default_factory=dict)
    # The hash of the source's raw record this was mapped from (directory.sync.Raw), stored on
    # the source record so a re-run can skip it unmapped; not content (never in the hash).
    raw_hash: str | None = field(default=None, compare=False, repr=False)

    def content(self) -> dict[str, Any]:
        """The fields that, when they change at the source, make an update.

        fetched_at is excluded: fetching the same data again is not a change. So are the area
        codes: they are derived here from the loaded areas, not said by the source.
        (A shallow dict on purpose: dataclasses.asdict deep-copies and was half the ingest time.)
        """
        d = {name: getattr(self, name) for name in _CONTENT_FIELDS}
        d["categories"] = sorted(set(self.categories))
        return d

    def content_json(self) -> str:
        """content() as canonical JSON: what is stored and what the hash is taken of.

        Exactly `json.dumps(self.content(), sort_keys=True, ensure_ascii=False, default=str)` (the
        hash of it is stored: it must never change for the same record), by one encoder made once
        (json.dumps with options builds a new encoder per call).
        """
        return CANONICAL_JSON(self.content())

    def content_json_parts(self) -> tuple[str, str, str, str]:
        """content_json() and, made on the way, the canonical JSON of the sorted categories, of
        `features or {}` and of `extra or {}` (the facility row's JSON columns, sync).

        The same bytes as content_json(): the encoder is compositional (no indent; sort_keys
        applies at every level), so the object is its sorted keys' parts joined with its
        separators. Each JSON column is encoded once instead of twice (once in the content, once
        for the row): the extra (OSM tags) was a third of an ingest's JSON encoding."""
        categories = _categories_json(self.categories)
        features = CANONICAL_JSON(self.features or {})
        extra = CANONICAL_JSON(self.extra or {})
        # Only the same value is the same text: a None features/extra is `null` in the content.
        content_features = features if isinstance(self.features, dict) else CANONICAL_JSON(self.features)
        content_extra = extra if isinstance(self.extra, dict) else CANONICAL_JSON(self.extra)
        # The scalar tail (_CONTENT_TAIL, in its sorted order) joined here too: the encoder's dict
        # path (sorting the items, ~0.5 us an item) cost 6-8 us a record for these 11 values.
        j = scalar_json
        data = (f'{{"address": {j(self.address)}, "categories": {categories}, "extra": {content_extra},'
                f' "features": {content_features}, "last_verified": {j(self.last_verified)},'
                f' "lat": {j(self.lat)}, "licence": {j(self.licence)}, "lon": {j(self.lon)}, "name": {j(self.name)},'
                f' "opening_hours": {j(self.opening_hours)}, "operator": {j(self.operator)},'
                f' "sector": {j(self.sector)}, "source": {j(self.source)}, "source_id": {j(self.source_id)},'
                f' "status": {j(self.status)}}}')
        return data, categories, features, extra

    def content_hash(self, content_json: str | None = None) -> str:
        blob = content_json if content_json is not None else self.content_json()
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


_CONTENT_FIELDS = tuple(
    f.name for f in fields(Facility)
    if f.name not in ("fetched_at", "municipality_code", "eldership_code", "raw_hash")
)
# content_json_parts: the content's keys after "features" (sorted, as the canonical encoder
# sorts them; the four before it are joined by hand there).
_CONTENT_TAIL = tuple(sorted(set(_CONTENT_FIELDS) - {"address", "categories", "extra", "features"}))
assert sorted(_CONTENT_FIELDS)[:4] == ["address", "categories", "extra", "features"] and _CONTENT_TAIL


def _canonical_json() -> Callable[[Any], str]:
    """json.dumps(o, sort_keys=True, ensure_ascii=False, default=str) (check_circular off: the
    values are parsed data, never cyclic), made once.

    JSONEncoder.encode builds its C encoder anew on every call (json.encoder.c_make_encoder, with
    the encoder's own options): about 2.5 us of the ~3 us a small value costs, four times per
    record. This makes that C encoder once and calls it as encode does (a str is escaped by the
    same function encode uses), so every text is the one JSONEncoder.encode gives; where the C
    encoder is missing, JSONEncoder.encode itself."""
    encoder = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str, check_circular=False)
    make = json.encoder.c_make_encoder
    if make is None:
        return encoder.encode
    string = json.encoder.encode_basestring  # what encode() uses for a str when ensure_ascii is off
    iterencode = make(None, encoder.default, string, encoder.indent, encoder.key_separator,
                      encoder.item_separator, encoder.sort_keys, encoder.skipkeys, encoder.allow_nan)
    join = "".join

    def encode(o: Any) -> str:
        if isinstance(o, str):
            return string(o)
        return join(iterencode(o, 0))

    return encode


# The canonical JSON encoder (content text and hash, the facility row's JSON columns).
CANONICAL_JSON = _canonical_json()
# The keys content_json_parts writes by hand after "features", in the order it writes them.
assert _CONTENT_TAIL == ("last_verified", "lat", "licence", "lon", "name", "opening_hours", "operator", "sector",
                         "source", "source_id", "status"), "content_json_parts must write the new field"
_JSON_STRING = json.encoder.encode_basestring  # what json's encoders write for a str (ensure_ascii off)
_FLOAT_REPR = float.__repr__  # what they write for a finite float
_INF = math.inf


def scalar_json(value: Any, encode: Callable[[Any], str] = CANONICAL_JSON) -> str:
    """encode(value) for a record's scalar field, where `encode` is a json encoder with
    ensure_ascii off (CANONICAL_JSON, or the change log's): the usual kinds (a str, None, a finite
    float) written here as every such encoder writes them, without a call into it (its dict path
    cost 6-8 us a record for the content's 11 scalars); anything else by `encode`."""
    kind = type(value)
    if kind is str:
        return _JSON_STRING(value)
    if value is None:
        return "null"
    if kind is float and -_INF < value < _INF:
        return _FLOAT_REPR(value)
    return encode(value)


# Facility.categories as a tuple -> the canonical JSON of its sorted set (the few combinations
# a source uses, so most records look their text up instead of sorting and encoding it).
_CATEGORIES_JSON: dict[tuple, str] = {}


def _categories_json(categories: Any) -> str:
    try:
        key = tuple(categories)
        text = _CATEGORIES_JSON.get(key)
    except TypeError:  # an unhashable item: the encoder says what is wrong with it
        return CANONICAL_JSON(sorted(set(categories)))
    if text is None:
        text = CANONICAL_JSON(sorted(set(categories)))
        if len(_CATEGORIES_JSON) < 4096:
            _CATEGORIES_JSON[key] = text
    return text



def check_coordinates(lon: Any, lat: Any) -> tuple[float, float] | str:
    """Return (lon, lat) as floats, or the reason they are not a valid WGS84 position."""
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError):
        return f"coordinates are not numbers (lon={lon!r}, lat={lat!r})"
    if not (math.isfinite(lon_f) and math.isfinite(lat_f)):
        return f"coordinates are not finite (lon={lon!r}, lat={lat!r})"
    if not -90.0 <= lat_f <= 90.0:
        return f"latitude {lat_f:g} is out of range -90..90"
    if not -180.0 <= lon_f <= 180.0:
        return f"longitude {lon_f:g} is out of range -180..180"
    return lon_f, lat_f


def validate(fac: Facility) -> list[str]:
    """Every problem with a record, as field-named messages (empty when it is fine)."""
    problems: list[str] = []
    if not fac.source_id:
        problems.append("source_id: empty")
    unknown = [c for c in fac.categories if c not in CATEGORIES]
    if unknown:
        problems.append(f"categories: unknown {', '.join(unknown)}")
    if not fac.categories:
        problems.append("categories: none")
    for name, value in fac.features.items():
        if name not in FEATURES:
            problems.append(f"features: unknown feature {name!r}")
        elif value not in FEATURE_VALUES:
            problems.append(f"features.{name}: {value!r} is not one of {', '.join(FEATURE_VALUES)}")
    if fac.sector not in SECTORS:
        problems.append(f"sector: {fac.sector!r} is not one of {', '.join(SECTORS)}")
    if fac.status not in STATUSES:
        problems.append(f"status: {fac.status!r} is not one of {', '.join(STATUSES)}")
    if fac.lon is not None or fac.lat is not None:
        checked = check_coordinates(fac.lon, fac.lat)
        if isinstance(checked, str):
            problems.append(f"coordinates: {checked}")
    return problems


@dataclass(slots=True, frozen=True)
class Rejection:
    """A source record that was not stored, and why. `where` is file[:line] or a URL."""

    source_id: str
    reason: str
    where: str | None = None

    def __str__(self) -> str:
        loc = f"{self.where}: " if self.where else ""
        return f"{loc}{self.source_id}: {self.reason}"
