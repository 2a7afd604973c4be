"""The one GeoJSON projection of a facility, assembled by SQLite's JSON functions.

The API's list rows, the map (with `open_state`, and `distance_m` near a point) and the
GeoJSON export all ask `feature_sql` for the properties they carry; each property has one SQL
expression here, so a field added or renamed changes every answer at once. Building the JSON
inside SQLite means a page costs little more than the query itself: Python only joins strings.
"""

from __future__ import annotations

import json

from .model import EXTRA_FIELDS

# A facility's RFC 7946 geometry (lon, lat), or null for a place without a map position.
GEOMETRY_SQL = """CASE WHEN f.lon IS NULL THEN NULL
                     ELSE json_object('type', 'Point', 'coordinates', json_array(f.lon, f.lat)) END"""



def extra_sql(key: str, kind: str, *, alias: str = "f", json_text: str | None = None, path: str | None = None) -> str:
    """SQL: the value of `key` in the facility's extra as a column of `kind` (model.EXTRA_FIELDS),
    NULL when absent (or, for integer, not a whole number). The instr() test skips the JSON parse
    for the many rows that do not carry the key (an OpenStreetMap row's extra holds all its tags).

    `json_text` and `path`: read the value from another JSON text instead (the CSV reads all the
    extras out of the big extra once, into a small array, and each cell from that)."""
    extra, path = (json_text, path) if json_text else (f"{alias}.extra", f"'$.{key}'")
    if kind == "integer":
        value = f"iif(json_type({extra}, {path}) = 'integer', json_extract({extra}, {path}), NULL)"
    elif kind == "list":  # a single text where a list was expected becomes a list of one
        value = (f"CASE WHEN json_type({extra}, {path}) = 'array' THEN json_extract({extra}, {path})"
                 f" WHEN json_type({extra}, {path}) NOT IN ('null', 'object') THEN json_array(json_extract({extra}, {path}))"
                 " END")
    else:
        value = f"CAST(json_extract({extra}, {path}) AS TEXT)"
    if json_text:
        return value
    return f"iif(instr({extra}, '\"{key}\"') = 0, NULL, {value})"


# SQL: the facility's extra holds none of EXTRA_FIELDS (one small parse; '{}' not even that).
NO_EXTRA_FIELDS_SQL = (
    "(f.extra = '{}' OR json_extract(f.extra, " + ", ".join(f"'$.{k}'" for k in EXTRA_FIELDS) + ") = '["
    + ",".join(["null"] * len(EXTRA_FIELDS)) + "]')"
)


# The `sources` of a facility whose one source record is the one its own columns name (source,
# source_id, licence, fetched_at; not removed): what SOURCES_SQL gives for it, without the probe
# (a new facility the sync inserts in bulk: directory.ready.insert_ready). Also SOURCES_SQL's
# fallback for a row without source records.
OWN_SOURCES_SQL = """json_array(json_object('source', f.source, 'source_id', f.source_id, 'licence', f.licence,
                        'fetched_at', f.fetched_at, 'removed_at', NULL))"""
# A facility's source records as a JSON array (the export's `sources`): one probe of
# source_records per row, so the store keeps its result ready (facilities.sources_json).
# (json_group_array of one object is '[' || the object || ']', as json_array of it.)
SOURCES_SQL = """coalesce((SELECT json_group_array(json_object('source', s.source, 'source_id', s.source_id,
                        'licence', s.licence, 'fetched_at', s.fetched_at, 'removed_at', s.removed_at))
                        FROM source_records s WHERE s.facility_id = f.id),
                   """ + OWN_SOURCES_SQL + ")"

# Every property a feature may carry, by name: its SQL over the row `f`.
PROPERTY_SQL: dict[str, str] = {
    "id": "f.id",
    "name": "f.name",
    "categories": "json(f.categories)",
    "features": "json(f.features)",
    "address": "f.address",
    "opening_hours": "f.opening_hours",
    # Needs the SQL function atvira_open_state (query.register_hours) on the connection.
    "open_state": "atvira_open_state(f.opening_hours)",
    "operator": "f.operator",
    "sector": "f.sector",
    # (issue 15) the finer sector and the rule that decided it (directory/sectors.py)
    "sector_detail": "json_extract(f.extra, '$.sector_detail')",
    "sector_source": "json_extract(f.extra, '$.sector_source')",
    "status": "f.status",
    "municipality_code": "f.municipality_code",
    "municipality": "(SELECT a.name FROM areas a WHERE a.code = f.municipality_code)",
    "eldership_code": "f.eldership_code",
    "eldership": "(SELECT a.name FROM areas a WHERE a.code = f.eldership_code)",
    # kept ready in f.sources_json (directory.ready); the look-up only for rows without it
    "sources": f"coalesce(json(f.sources_json), {SOURCES_SQL})",
    "last_verified": "f.last_verified",
    "source": "f.source",
    "licence": "f.licence",
    "fetched_at": "f.fetched_at",
    "updated_at": "f.updated_at",
    # The register's extras (capacity, children, free places ...), one property each; a list is
    # a JSON array (json() keeps it one, not a string holding JSON).
    **{key: (f"json({extra_sql(key, kind)})" if kind == "list" else extra_sql(key, kind))
       for key, (kind, _) in EXTRA_FIELDS.items()},
}

# The properties of a list row (the API); the detail view adds every source record and extra.
LIST_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "operator", "sector",
                   "sector_detail", "sector_source", "status", "municipality_code", "eldership_code",
                   "last_verified", "source", "licence", "fetched_at")
# The map and list: the list row plus the opening state now.
MAP_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "open_state", "operator",
                  "sector", "sector_detail", "sector_source", "status", "municipality_code", "eldership_code", "last_verified", "source", "licence",
                  "fetched_at")
# A download: area names beside their codes, every source with its licence, and the extras.
EXPORT_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "operator", "sector",
                     "sector_detail", "sector_source", "status", "municipality_code", "municipality", "eldership_code",
                     "eldership", "sources", "last_verified", "fetched_at", "updated_at", *EXTRA_FIELDS)


def feature_sql(properties: tuple[str, ...] = LIST_PROPERTIES, *, overrides: dict[str, str] | None = None) -> str:
    """SQL for one RFC 7946 Feature of row `f`, carrying `properties` in that order.

    `overrides` replaces some properties' SQL (the ready features put a marker where the
    time-dependent open_state goes)."""
    sql = {**PROPERTY_SQL, **(overrides or {})}
    unknown = [p for p in properties if p not in sql]
    if unknown:
        raise ValueError(f"no SQL for feature properties {unknown}")
    props = _properties(properties, sql)
    # The extras' keys (capacity, children ...) only for a facility that has at least one of
    # them: most places have none (extra '{}', or only OSM's raw tags), and thirteen null keys per
    # feature made the GeoJSON export a third bigger and slower for nothing. A place with any
    # of them carries every key (null when unknown).
    plain = tuple(p for p in properties if p not in EXTRA_FIELDS)
    if plain != properties:
        props = f"iif({NO_EXTRA_FIELDS_SQL}, {_properties(plain, sql)}, {props})"
    return f"""json_object(
    'type', 'Feature',
    'id', f.id,
    'geometry', {GEOMETRY_SQL},
    'properties', {props}
)"""


def _properties(properties: tuple[str, ...], sql: dict[str, str]) -> str:
    pairs = ",\n        ".join(f"'{p}', {sql[p]}" for p in properties)
    return f"json_object(\n        {pairs}\n    )"


# --- ready features -----------------------------------------------------------------------
# The map/list feature of every facility is kept ready in the store (facilities.feature_head and
# feature_tail: the JSON text before and after the open_state value), written whenever the
# facility changes (directory.sync, directory.areas_store). A page is then a concatenation of
# ready text inside SQLite: head || '"open"' || tail. open_state is the only time-dependent
# property, so it is the only gap. The text is exactly what feature_sql(MAP_PROPERTIES) gives.

OPEN_MARKER = "@open_state@"
OPEN_KEY = '"open_state":'
# Inside a JSON string a quote is always escaped, so `"open_state":"@open_state@"` with bare
# quotes can only be the property itself (directory.ready splits the text there with instr).
OPEN_MARKED = f'{OPEN_KEY}"{OPEN_MARKER}"'
READY_FEATURE_SQL = feature_sql(MAP_PROPERTIES, overrides={"open_state": f"'{OPEN_MARKER}'"})


def page_feature_sql(fallback_sql: str) -> str:
    """SQL for a row's map feature from its ready text and the temp state table `s`
    (directory.open_now) joined on its hours; `fallback_sql` where the text is missing.

    A row without hours costs nothing ('unknown' is constant); a row whose hours string the
    state table does not hold calls atvira_open_state (register_hours) for it."""
    return (
        f"CASE WHEN f.feature_head IS NULL THEN {fallback_sql} ELSE f.feature_head"
        " || CASE WHEN f.opening_hours IS NULL THEN '\"unknown\"'"
        " ELSE coalesce(s.state, json_quote(atvira_open_state(f.opening_hours))) END"
        " || f.feature_tail END"
    )


def feature_collection(features: list[str], *, next_url: str | None, truncated: bool | None = None,
                       interpreted: dict | None = None) -> str:
    """Join pre-rendered features into an RFC 7946 FeatureCollection (no CRS member).

    `truncated` says more rows matched than were returned (with or without a `next` link);
    `interpreted` is how the search text was understood (directory.interpret), when there was one."""
    return feature_collection_joined(",".join(features), len(features), next_url=next_url, truncated=truncated,
                                     interpreted=interpreted)


def feature_collection_joined(features: str, count: int, *, next_url: str | None,
                              truncated: bool | None = None, interpreted: dict | None = None) -> str:
    """feature_collection for features already joined with ',' (by SQLite's group_concat)."""
    head, tail = collection_frame(count, next_url=next_url, truncated=truncated, interpreted=interpreted)
    return head + features + tail


def collection_frame(count: int, *, next_url: str | None, truncated: bool | None = None,
                     interpreted: dict | None = None) -> tuple[str, str]:
    """The FeatureCollection's text before and after its features (feature_collection_joined
    without the join: the API sends the page's bytes between the two as they came from SQLite)."""
    links = f',"links":[{{"rel":"next","href":{json.dumps(next_url)}}}]' if next_url else ',"links":[]'
    nxt = f',"next":{json.dumps(next_url)}' if next_url else ',"next":null'
    return (
        '{"type":"FeatureCollection","numberReturned":'
        + str(count)
        + nxt
        + f',"truncated":{"true" if (truncated if truncated is not None else bool(next_url)) else "false"}'
        + links
        + (f',"interpreted":{json.dumps(interpreted, ensure_ascii=False)}' if interpreted is not None else "")
        + ',"features":['
    ), "]}"


def detail_feature(fac: dict) -> dict:
    """One facility as the detail API gives it (`store.get_facility`: every stored field, each
    source record with its licence and why it was merged) as a GeoJSON Feature. Python, not SQL:
    one row, with parts (sources, conflicts) that are lists of their own."""
    geometry = None
    if fac.get("lon") is not None and fac.get("lat") is not None:
        geometry = {"type": "Point", "coordinates": [fac["lon"], fac["lat"]]}
    props = {k: v for k, v in fac.items() if k not in ("rid", "lon", "lat", "updated_at")}
    return {"type": "Feature", "id": fac["id"], "geometry": geometry, "properties": props}
