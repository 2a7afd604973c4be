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
    "sources": """coalesce((SELECT json_group_array(json_object('source', s.source, 'source_id', s.source_id,
                        'licence', s.licence, 'fetched_at', s.fetched_at, 'removed_at', s.removed_at))
                        FROM source_records s WHERE s.facility_id = f.id),
                   json_array(json_object('source', f.source, 'source_id', f.source_id, 'licence', f.licence,
                        'fetched_at', f.fetched_at, 'removed_at', NULL)))""",
    "last_verified": "f.last_verified",
    "source": "f.source",
    "licence": "f.licence",
    "fetched_at": "f.fetched_at",
    "updated_at": "f.updated_at",
}

# The properties of a list row (the API); the detail view adds every source record and extra.
LIST_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "operator", "sector",
                   "sector_detail", "sector_source", "status", "municipality_code", "eldership_code",
                   "last_verified", "source", "licence", "fetched_at")
# The map and list: the list row plus the opening state now.
MAP_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "open_state", "operator",
                  "sector", "sector_detail", "sector_source", "status", "municipality_code", "eldership_code", "last_verified", "source", "licence",
                  "fetched_at")
# A download: area names beside their codes, and every source with its licence.
EXPORT_PROPERTIES = ("id", "name", "categories", "features", "address", "opening_hours", "operator", "sector",
                     "sector_detail", "sector_source", "status", "municipality_code", "municipality", "eldership_code", "eldership", "sources",
                     "last_verified", "fetched_at", "updated_at")


def feature_sql(properties: tuple[str, ...] = LIST_PROPERTIES) -> str:
    """SQL for one RFC 7946 Feature of row `f`, carrying `properties` in that order."""
    unknown = [p for p in properties if p not in PROPERTY_SQL]
    if unknown:
        raise ValueError(f"no SQL for feature properties {unknown}")
    props = ",\n        ".join(f"'{p}', {PROPERTY_SQL[p]}" for p in properties)
    return f"""json_object(
    'type', 'Feature',
    'id', f.id,
    'geometry', {GEOMETRY_SQL},
    'properties', json_object(
        {props}
    )
)"""


def feature_collection(features: list[str], *, next_url: str | None, truncated: bool | None = None,
                       interpreted: dict | None = None) -> str:
    """Join pre-rendered features into an RFC 7946 FeatureCollection (no CRS member).

    `truncated` says more rows matched than were returned (with or without a `next` link);
    `interpreted` is how the search text was understood (directory.interpret), when there was one."""
    links = f',"links":[{{"rel":"next","href":{json.dumps(next_url)}}}]' if next_url else ',"links":[]'
    nxt = f',"next":{json.dumps(next_url)}' if next_url else ',"next":null'
    return (
        '{"type":"FeatureCollection","numberReturned":'
        + str(len(features))
        + nxt
        + f',"truncated":{"true" if (truncated if truncated is not None else bool(next_url)) else "false"}'
        + links
        + (f',"interpreted":{json.dumps(interpreted, ensure_ascii=False)}' if interpreted is not None else "")
        + ',"features":['
        + ",".join(features)
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
