"""The one GeoJSON projection of a facility, assembled by SQLite's JSON functions.

The API's list rows, the map (with `open_state`, and `distance_m` near a point) and the
GeoJSON export all ask `feature_sql` for the properties they carry; each property has one SQL
expression here, so a field added or renamed changes every answer at once. Building the JSON
inside SQLite means a page costs little more than the query itself: Python only joins strings.
"""

from __future__ import annotations

import json

# A facility's RFC 7946 geometry (lon, lat), or null for a place without a map position.
GEOMETRY_SQL = """CASE WHEN f.lon IS NULL THEN NULL
                     ELSE json_object('type', 'Point', 'coordinates', json_array(f.lon, f.lat)) END"""

# A facility's source records as a JSON array (the export's `sources`): one probe of
# source_records per row, so the store keeps its result ready (facilities.sources_json).
SOURCES_SQL = """coalesce((SELECT json_group_array(json_object('source', s.source, 'source_id', s.source_id,
                        'licence', s.licence, 'fetched_at', s.fetched_at, 'removed_at', s.removed_at))
                        FROM source_records s WHERE s.facility_id = f.id),
                   json_array(json_object('source', f.source, 'source_id', f.source_id, 'licence', f.licence,
                        'fetched_at', f.fetched_at, 'removed_at', NULL)))"""

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
}

# The properties of a list row (the API); the detail view adds every source record and extra.
LIST_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "operator", "sector",
                   "status", "municipality_code", "eldership_code", "last_verified", "source", "licence",
                   "fetched_at")
# The map and list: the list row plus the opening state now.
MAP_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "open_state", "operator",
                  "sector", "status", "municipality_code", "eldership_code", "last_verified", "source", "licence",
                  "fetched_at")
# A download: area names beside their codes, and every source with its licence.
EXPORT_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "operator", "sector",
                     "status", "municipality_code", "municipality", "eldership_code", "eldership", "sources",
                     "last_verified", "fetched_at", "updated_at")


def feature_sql(properties: tuple[str, ...] = LIST_PROPERTIES, *, overrides: dict[str, str] | None = None) -> str:
    """SQL for one RFC 7946 Feature of row `f`, carrying `properties` in that order.

    `overrides` replaces some properties' SQL (the ready features put a marker where the
    time-dependent open_state goes)."""
    sql = {**PROPERTY_SQL, **(overrides or {})}
    unknown = [p for p in properties if p not in sql]
    if unknown:
        raise ValueError(f"no SQL for feature properties {unknown}")
    props = ",\n        ".join(f"'{p}', {sql[p]}" for p in properties)
    return f"""json_object(
    'type', 'Feature',
    'id', f.id,
    'geometry', {GEOMETRY_SQL},
    'properties', json_object(
        {props}
    )
)"""


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
        + features
        + "]}"
    )


def detail_feature(fac: dict) -> dict:
    """One facility as the detail API gives it (`store.get_facility`: every stored field, each
    source record with its licence and why it was merged) as a GeoJSON Feature. Python, not SQL:
    one row, with parts (sources, conflicts) that are lists of their own."""
    geometry = None
    if fac.get("lon") is not None and fac.get("lat") is not None:
        geometry = {"type": "Point", "coordinates": [fac["lon"], fac["lat"]]}
    props = {k: v for k, v in fac.items() if k not in ("rid", "lon", "lat", "updated_at")}
    return {"type": "Feature", "id": fac["id"], "geometry": geometry, "properties": props}
