"""The OpenAPI 3 document for /api (and the downloads), built from plain data.

To document a new endpoint: write one function returning its path item and add it to `PATHS`.
`tests/test_openapi.py` fails for any GET rule under /api that is missing here, and runs
schemathesis against the document, so it cannot drift from what the views really do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .audit_report import SORT_KEYS
from .clusters import LIVE_ROW_CEILING, MAX_CELLS
from .contributions import CONTRIBUTION_LICENCE, PROBLEMS
from .model import CATEGORIES, FEATURES, SECTORS, STATUSES
from .query import NEAR_MAX_M, OPEN_STATES
from .sectors import DETAILS as SECTOR_DETAILS
from .sectors import SOURCES as SECTOR_SOURCES

JSON = "application/json"
GEOJSON = "application/geo+json"


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


STR = {"type": "string"}
NSTR = _nullable(STR)


def _param(name: str, description: str, schema: dict[str, Any] | None = None, *, example: Any = None) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": "query", "required": False, "description": description,
                         "schema": schema or STR}
    if example is not None:
        p["example"] = example
    return p


def _csv_of(values: list[str]) -> dict[str, Any]:
    """A comma-separated list of known values (schemathesis generates only valid ones)."""
    one = "|".join(values)
    return {"type": "string", "pattern": f"^({one})(,({one}))*$"}


BBOX = {"type": "string", "pattern": r"^-?\d{1,3}(\.\d{1,7})?(,-?\d{1,3}(\.\d{1,7})?){3}$"}
FILTER_PARAMS = [
    _param("bbox", "west,south,east,north in WGS84 degrees", BBOX, example="25.2,54.6,25.4,54.8"),
    _param("category", "comma-separated category slugs: " + ", ".join(CATEGORIES), _csv_of(list(CATEGORIES)),
           example="playground"),
    _param("features", "comma-separated features that must be yes or limited: " + ", ".join(FEATURES),
           _csv_of(list(FEATURES)), example="changing_table"),
    _param("feature", "alias of features", _csv_of(list(FEATURES))),
    _param("q", "search by need, place and name: category and feature words in Lithuanian (any case ending) or"
                " English become filters (see docs/search.md), a place name (when no facility's name matches the"
                " words) filters by its eldership, municipality or surroundings, and the other words search name,"
                " address and operator (diacritics ignored); the answer's `interpreted` says how it was read",
           {"type": "string", "maxLength": 200}, example="darželis Antakalnis"),
    _param("status", "comma-separated statuses (default active,closed,unknown)", _csv_of(list(STATUSES))),
    _param("municipality", "municipality code (see /api/areas)"),
    _param("eldership", "eldership code (see /api/areas)"),
    _param("sector", "comma-separated sectors (public, private, civic, unknown) or finer values kept in"
           " properties.sector_detail (government, municipal, ngo, community, religious): see docs/sectors.md",
           _csv_of(list(SECTOR_DETAILS)), example="civic"),
    _param("near", "lon,lat (longitude first; a Lithuanian lat,lon is refused with the fix): nearest first,"
           " each feature with properties.distance_m (not paged: raise limit)",
           {"type": "string", "pattern": r"^-?\d{1,3}(\.\d{1,7})?,-?\d{1,2}(\.\d{1,7})?$"}, example="25.28,54.68"),
    _param("radius", f"with near: at most this many metres away (near= never looks farther than {NEAR_MAX_M:,} m)",
           {"type": "integer", "minimum": 1, "maximum": NEAR_MAX_M}),
    _param("open", "comma-separated opening states now (Europe/Vilnius): " + ", ".join(OPEN_STATES),
           _csv_of(list(OPEN_STATES)), example="open,unknown"),
    _param("open_now", "1: only places open now (same as open=open)", {"type": "string", "enum": ["0", "1"]}),
]
PAGE_PARAMS = [
    _param("limit", "rows per page (default 500, at most 5000)", {"type": "integer", "minimum": 1, "maximum": 5000}),
    _param("after", "the cursor from the previous page's next link", {"type": "integer", "minimum": 0}),
]


def _ok(schema_ref: str, media: str = JSON, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
            "headers": {"ETag": {"schema": STR}, "Last-Modified": {"schema": STR}}}


ERRORS = {
    "304": {"description": "Not modified (If-None-Match / If-Modified-Since matched)"},
    "400": {"description": "A parameter is wrong; `where` names it",
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}},
}
BUSY = {"description": "Busy: this worker already runs its expensive requests (downloads, live clusters); "
                       "try again after Retry-After seconds", "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
NOT_FOUND = {"description": "No such thing", "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


# The map pins its requests to the content version (GET /api/version): the current one makes
# the answer cacheable by a shared cache; another one is redirected to the current (302).
VERSION_PARAM = {"name": "v", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 80},
                 "description": "content version from /api/version: the answer is then public and cacheable"
                                " (max-age ends at the next opening or closing time among its rows); an old"
                                " version is redirected to the current one"}


# The answer to a `v=` naming another content version: the same request pinned to the current one.
REDIRECT_302 = {"302": {"description": "`v` names another content version: Location is the same request"
                                       " pinned to the current one (never cached)"}}


def _version() -> dict[str, Any]:
    return {"/api/version": {"get": {
        "summary": "The store's content version, to pin cacheable map requests to (`v=`); never cached",
        "operationId": "contentVersion", "tags": ["facilities"],
        "responses": {"200": {"description": "OK", "content": {JSON: {"schema": {"type": "object",
                      "required": ["version"], "properties": {"version": STR}}}}}},
    }}}


def _facilities() -> dict[str, Any]:
    return {"/api/facilities": {"get": {
        "summary": "Facilities as a GeoJSON FeatureCollection (RFC 7946), keyset-paged",
        "description": "Bounded: at most `limit` (<= 5000) rows per page; near= looks at most "
                       f"{NEAR_MAX_M:,} m away. Every feature carries open_state, so the ETag also holds the next "
                       "opening-hours boundary (no 304 across an open/close).",
        "operationId": "listFacilities", "tags": ["facilities"],
        "parameters": FILTER_PARAMS + PAGE_PARAMS + [VERSION_PARAM],
        "responses": {"200": _ok("FeatureCollection", GEOJSON), **REDIRECT_302, **ERRORS},
    }}}


def _facility() -> dict[str, Any]:
    return {"/api/facilities/{facility_id}": {"get": {
        "summary": "One facility as a GeoJSON Feature, with every source record and its licence",
        "operationId": "getFacility", "tags": ["facilities"],
        # /api/facilities/clusters is its own operation: "clusters" is never a facility id
        "parameters": [{"name": "facility_id", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": r"^(?!clusters$)[A-Za-z0-9_.-]+$"}}],
        "responses": {"200": _ok("Feature", GEOJSON), "304": ERRORS["304"], "404": NOT_FOUND},
    }}}


def _clusters() -> dict[str, Any]:
    return {"/api/facilities/clusters": {"get": {
        "summary": "Counts on a 64-px Web Mercator grid for a view too full to draw point by point",
        "description": f"Bounded: the box may span at most {MAX_CELLS:,} cells at the zoom (400 otherwise); "
                       f"filters the precomputed grid cannot answer group at most {LIVE_ROW_CEILING:,} rows on the fly "
                       "(then `truncated: true`); over a box of more than 20,000 facilities they take one of the worker's "
                       "expensive slots (503 + Retry-After when none is free).",
        "operationId": "clusterFacilities", "tags": ["facilities"],
        "parameters": [_param("zoom", "the map's zoom level, 0..30", {"type": "string", "pattern": r"^\d{1,2}$"}),
                       *[p for p in FILTER_PARAMS if p["name"] not in ("near", "radius")], VERSION_PARAM],
        "responses": {"200": {"description": "OK", "content": {JSON: {"schema": {"type": "object",
                      "required": ["zoom", "clusters"], "properties": {
                          "zoom": {"type": "integer"}, "source": STR, "total": {"type": "integer"},
                          "clusters": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                                                   "description": "[lon, lat, count]"}},
                          "truncated": {"type": "boolean"}}}}}},
                      **REDIRECT_302, **ERRORS, "503": BUSY},
    }}}


PLACE: dict[str, Any] = {"type": "object", "required": ["name", "kind", "lon", "lat"], "properties": {
    "name": STR, "kind": {"type": "string", "description": "municipality, eldership, city, town, suburb, village, "
                                                            "hamlet, ... or address (a facility's)"},
    "lon": {"type": "number"}, "lat": {"type": "number"},
    "bbox": {"type": "array", "items": {"type": "number"}, "nullable": True, "description": "areas only"},
    "area_code": NSTR, "municipality_code": NSTR, "municipality": NSTR, "eldership_code": NSTR,
    "population": {"type": "integer", "nullable": True}}}


def _places() -> dict[str, Any]:
    return {"/api/places": {"get": {
        "summary": "Place search as the user types: the gazetteer (municipalities, elderships, cities, towns, "
                   "villages, suburbs; case endings and diacritics folded, so Antakalnis = Antakalnio sen.), "
                   "then facility addresses and names",
        "description": "Prefix match on folded, stemmed names, ranked by kind and population (\"Vilnius\" is the "
                       "city). The best match's fields are at the top level; `suggestions` lists up to `limit`.",
        "operationId": "findPlace", "tags": ["facilities"],
        "parameters": [_param("q", "a place name (or its start) or an address", {"type": "string", "minLength": 1,
                                                                               "maxLength": 200}, example="Antakalnis"),
                       _param("limit", "suggestions, 1..20 (default 8)", {"type": "string", "pattern": r"^\d{1,2}$"})],
        "responses": {"200": {"description": "OK", "content": {JSON: {"schema": {"allOf": [
                      {"$ref": "#/components/schemas/Place"},
                      {"type": "object", "required": ["suggestions"], "properties": {
                          "suggestions": {"type": "array", "items": {"$ref": "#/components/schemas/Place"}}}}]}}}},
                      **ERRORS, "404": NOT_FOUND},
    }}}


def _audit() -> dict[str, Any]:
    category = _param("category", "category slug (default kindergarten)", {"type": "string", "enum": list(CATEGORIES)})
    sort_values = list(SORT_KEYS) + [f"-{k}" for k in SORT_KEYS]
    loose = {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}
    return {
        "/api/audit/municipalities": {"get": {
            "summary": "The openness audit: national totals and the 60 municipalities for one category",
            "operationId": "auditMunicipalities", "tags": ["audit"],
            "parameters": [category, _param("sort", "[-]key", {"type": "string", "enum": sort_values})],
            "responses": {"200": loose, **ERRORS},
        }},
        "/api/audit/municipalities/{code}": {"get": {
            "summary": "One municipality: categories against median and county, elderships, gaps, checklist, data quality",
            "operationId": "auditMunicipality", "tags": ["audit"],
            "parameters": [{"name": "code", "in": "path", "required": True, "schema": STR}, category,
                           _param("institutions_limit", "how many institutions to list, or all",
                                  {"type": "string", "pattern": r"^(\d{1,6}|all)$"})],
            "responses": {"200": loose, **ERRORS, "404": NOT_FOUND},
        }},
    }


def _cluster() -> dict[str, Any]:
    loose = {"description": "OK", "content": {JSON: {"schema": {"type": "object"}}}}
    return {
        "/api/cluster": {"get": {
            "summary": "The social-cluster overview: each sector's share per kind (country) and per municipality,"
                       " the share run outside the public sector, the pilot municipalities first",
            "operationId": "clusterOverview", "tags": ["cluster"],
            "responses": {"200": loose, **ERRORS},
        }},
        "/api/cluster/{code}": {"get": {
            "summary": "One municipality or eldership: kind x sector counts with the actors, what each sector alone"
                       " provides, and partner suggestions by geodesic distance (the figures of /cluster/{code})",
            "operationId": "clusterArea", "tags": ["cluster"],
            "parameters": [{"name": "code", "in": "path", "required": True, "schema": STR}],
            "responses": {"200": loose, **ERRORS, "404": NOT_FOUND},
        }},
    }


def _areas() -> dict[str, Any]:
    return {"/api/areas": {"get": {
        "summary": "Municipalities and elderships with population and facility counts",
        "operationId": "listAreas", "tags": ["areas"],
        "parameters": [
            _param("level", "municipality or eldership", {"type": "string", "enum": ["municipality", "eldership"]}),
            _param("parent", "parent area code (an eldership's municipality)"),
        ],
        "responses": {"200": _ok("AreaList"), **ERRORS},
    }}, "/api/areas/outlines": {"get": {
        "summary": "Simplified area outlines as GeoJSON (the map's local base layer when tiles fail)",
        "operationId": "areaOutlines", "tags": ["areas"],
        "parameters": [
            _param("level", "municipality (all) or eldership (needs bbox; at most 150)",
                   {"type": "string", "enum": ["municipality", "eldership"]}),
            _param("bbox", "west,south,east,north: only areas whose bounds meet it"),
        ],
        "responses": {"200": _ok("FeatureCollection", GEOJSON), **ERRORS},
    }}}


def _changes() -> dict[str, Any]:
    bound = {"anyOf": [{"type": "string", "pattern": r"^\d{1,6}$"}, {"type": "string", "format": "date"}]}
    return {"/api/changes": {"get": {
        "summary": "What was added, changed (field by field, old and new) and removed between two snapshots or dates",
        "description": "Keyset-paged by each facility's first change in the range (follow `next`): a page reads "
                       "about a page of the log. At most 5000 entries a page here, 200 on the /changes HTML page.",
        "operationId": "listChanges", "tags": ["changes"],
        "parameters": [
            _param("since", "a snapshot id or an ISO date (UTC); changes after it", bound, example="2026-01-01"),
            _param("until", "a snapshot id or an ISO date (UTC); changes up to it", bound),
            *PAGE_PARAMS,
        ],
        "responses": {"200": _ok("ChangeList"), **ERRORS, "404": NOT_FOUND},
    }}}


def _snapshots() -> dict[str, Any]:
    return {"/api/snapshots": {"get": {
        "summary": "Dated snapshots of the whole store, newest first, with download links",
        "operationId": "listSnapshots", "tags": ["changes"],
        "responses": {"200": _ok("SnapshotList"), "304": ERRORS["304"]},
    }}}


def _openapi() -> dict[str, Any]:
    return {"/api/openapi.json": {"get": {
        "summary": "This document", "operationId": "getOpenAPI", "tags": ["meta"],
        "responses": {"200": {"description": "OpenAPI 3 document", "content": {JSON: {"schema": {"type": "object"}}}}},
    }}}


def _open311() -> dict[str, Any]:
    """Open311 GeoReport v2 (directory/web/open311.py): suggestions in the shape municipal systems speak."""
    codes = ["add_place", *PROBLEMS, "still_here"]
    err = {"description": "An error in the GeoReport shape", "content": {JSON: {"schema": {
        "$ref": "#/components/schemas/Open311Errors"}}}}
    requests_ok = {"description": "Service requests (public fields only; never an email)", "content": {JSON: {
        "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Open311Request"}}}}}
    date = {"type": "string", "format": "date-time"}
    form_fields = {
        "service_code": {"type": "string", "enum": codes},
        "lat": {"type": "number", "description": "WGS84 latitude (add_place, moved)"},
        "long": {"type": "number", "description": "WGS84 longitude (add_place, moved)"},
        "description": {"type": "string", "maxLength": 2000, "description": "plain text, no HTML"},
        "email": {"type": "string", "description": "optional contact; never published, deleted after the retention"},
        "address_id": {"type": "string", "description": "the facility id (alternative to attribute[facility_id])"},
        "attribute[licence]": {"type": "string", "enum": ["yes"],
                               "description": f"required: published under {CONTRIBUTION_LICENCE} once approved"},
        "attribute[facility_id]": STR, "attribute[category]": {"type": "string", "enum": list(CATEGORIES)},
        "attribute[name]": {"type": "string", "maxLength": 200}, "attribute[opening_hours]": STR,
    }
    return {
        "/open311/v2/services.json": {"get": {
            "summary": "The kinds of suggestion (GeoReport v2 services)", "operationId": "open311Services",
            "tags": ["open311"], "responses": {"200": {"description": "Services", "content": {JSON: {"schema": {
                "type": "array", "items": {"$ref": "#/components/schemas/Open311Service"}}}}}},
        }},
        "/open311/v2/services/{service_code}.json": {"get": {
            "summary": "A service's definition: the attributes it needs", "operationId": "open311Service",
            "tags": ["open311"],
            "parameters": [{"name": "service_code", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": codes}}],
            "responses": {"200": {"description": "Definition", "content": {JSON: {"schema": {"type": "object"}}}},
                          "400": err},
        }},
        "/open311/v2/requests.json": {
            "get": {
                "summary": "Service requests (suggestions), newest first", "operationId": "open311Requests",
                "tags": ["open311"],
                "parameters": [
                    _param("service_request_id", "comma-separated request ids",
                           {"type": "string", "pattern": r"^\d{1,12}(,\d{1,12}){0,99}$"}),
                    _param("service_code", "one service code", {"type": "string", "enum": codes}),
                    _param("status", "open (waiting for an editor) or closed (approved or rejected)",
                           {"type": "string", "enum": ["open", "closed", "open,closed"]}),
                    _param("start_date", "requested at or after (ISO 8601)", date),
                    _param("end_date", "requested at or before (ISO 8601)", date),
                    _param("limit", "at most this many (default 100)", {"type": "integer", "minimum": 1,
                                                                       "maximum": 1000}),
                ],
                "responses": {"200": requests_ok, "400": err},
            },
            "post": {
                "summary": "Send a suggestion: stored pending until an editor approves it (rate-limited per address)",
                "operationId": "open311CreateRequest", "tags": ["open311"],
                "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "required": ["service_code", "attribute[licence]"],
                    "properties": form_fields}}}},
                "responses": {
                    "201": {"description": "Created (pending)", "content": {JSON: {"schema": {"type": "array", "items": {
                        "type": "object", "properties": {"service_request_id": STR, "service_notice": NSTR,
                                                         "account_id": NSTR}}}}}},
                    "400": err, "404": err,
                    "429": {"description": "Too many submissions from this address; see Retry-After"},
                },
            },
        },
        "/open311/v2/requests/{service_request_id}.json": {"get": {
            "summary": "One service request", "operationId": "open311Request", "tags": ["open311"],
            "parameters": [{"name": "service_request_id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": r"^\d{1,12}$"}}],
            "responses": {"200": requests_ok, "400": err, "404": err},
        }},
    }


def _downloads() -> dict[str, Any]:
    media = {"csv": "text/csv", "geojson": GEOJSON, "gpkg": "application/geopackage+sqlite3",
             "sqlite": "application/vnd.sqlite3"}
    paths = {}
    for fmt, mt in media.items():
        paths[f"/downloads/facilities.{fmt}"] = {"get": {
            "summary": f"Every matching facility as {fmt} (the same filters as /api/facilities; never paged)",
            "description": "Streamed. One download (or live cluster request) at a time per server worker: "
                           "503 + Retry-After when busy. " + (
                               "A filtered file is built once per (data version, filter) into a size-capped cache "
                               "(ATVIRA_EXPORT_CACHE_BYTES), and the build stops when the client disconnects."
                               if fmt in ("gpkg", "sqlite") else "Written batch by batch as it is sent.") + (
                               " The whole-store file holds the published tables only (facilities, areas, "
                               "source_records with licences, without the raw record)." if fmt == "sqlite" else ""),
            "operationId": f"download{fmt.capitalize()}", "tags": ["downloads"],
            "parameters": FILTER_PARAMS,
            "responses": {"200": {"description": "The file", "content": {mt: {"schema": {"type": "string", "format": "binary"}}}},
                          **ERRORS, "503": BUSY},
        }}
    return paths


# The documented paths, in the order the document lists them. Add a function to document more.
PATHS: tuple[Callable[[], dict[str, Any]], ...] = (
    _facilities, _clusters, _version, _facility, _places, _areas, _audit, _cluster, _changes, _snapshots, _openapi,
    _downloads, _open311,
)


def _schemas() -> dict[str, Any]:
    point = {"type": "object", "required": ["type", "coordinates"], "properties": {
        "type": {"type": "string", "enum": ["Point"]},
        "coordinates": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"},
                        "description": "[longitude, latitude], WGS84"}}}
    props = {
        "id": STR, "name": STR,
        "categories": {"type": "array", "items": {"type": "string", "enum": list(CATEGORIES)}},
        "features": {"type": "object", "additionalProperties": {"type": "string", "enum": ["yes", "limited", "no"]}},
        "address": NSTR, "opening_hours": NSTR, "operator": NSTR,
        "sector": {"type": "string", "enum": list(SECTORS)},
        "sector_detail": {"type": "string", "nullable": True, "enum": [*SECTOR_DETAILS, None]},
        "sector_source": {"type": "string", "nullable": True, "enum": [*SECTOR_SOURCES, None]},
        "status": {"type": "string", "enum": list(STATUSES)},
        "municipality_code": NSTR, "eldership_code": NSTR, "last_verified": NSTR,
        "source": STR, "licence": STR, "fetched_at": NSTR,
        "open_state": {"type": "string", "enum": list(OPEN_STATES)},
        "distance_m": {"type": "number"},
    }
    feature = {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
        "type": {"type": "string", "enum": ["Feature"]}, "id": STR,
        "geometry": {**point, "nullable": True},
        "properties": {"type": "object", "required": ["id", "name", "categories", "status"], "properties": props},
    }}
    return {
        "Error": {"type": "object", "required": ["error", "message", "status"], "properties": {
            "error": STR, "message": STR, "status": {"type": "integer"}, "where": STR}},
        "Feature": feature,
        "FeatureCollection": {"type": "object", "required": ["type", "features"], "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "numberReturned": {"type": "integer"}, "next": NSTR, "truncated": {"type": "boolean"},
            "links": {"type": "array", "items": {"type": "object"}},
            "interpreted": {"$ref": "#/components/schemas/Interpreted"},
            "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}},
        }, "not": {"required": ["crs"]}},
        "Interpreted": {"type": "object", "description": "how q was understood (present only when q was given)",
                        "required": ["categories", "features", "place", "words"], "properties": {
            "categories": {"type": "array", "items": {"type": "string", "enum": list(CATEGORIES)}},
            "features": {"type": "array", "items": {"type": "string", "enum": list(FEATURES)}},
            "place": {**PLACE, "nullable": True},
            "words": {"type": "string", "description": "what is left for the name search ('' for none)"}}},
        "Place": PLACE,
        "AreaList": {"type": "object", "required": ["areas"], "properties": {"areas": {"type": "array", "items": {
            "type": "object", "required": ["code", "level", "name"], "properties": {
                "code": STR, "level": {"type": "string", "enum": ["municipality", "eldership"]}, "name": STR,
                "parent_code": NSTR, "county": NSTR, "population": {"type": "integer", "nullable": True},
                "bbox": {"type": "array", "items": {"type": "number", "nullable": True}},
                "facilities": {"type": "integer"}}}}}},
        "ChangeList": {"type": "object", "required": ["changes", "from_seq", "to_seq"], "properties": {
            "since": {"type": "object", "nullable": True}, "until": {"type": "object", "nullable": True},
            "from_seq": {"type": "integer"}, "to_seq": {"type": "integer"}, "numberReturned": {"type": "integer"},
            "next": NSTR,
            "changes": {"type": "array", "items": {"type": "object",
                        "required": ["facility_id", "kind", "fields"], "properties": {
                            "facility_id": STR, "name": NSTR,
                            "kind": {"type": "string", "enum": ["added", "updated", "removed"]},
                            "source": STR, "source_id": STR, "at": STR, "seq": {"type": "integer"},
                            "actor": {**NSTR, "description": "who made the change, as a role (e.g. "
                                      "'public suggestion, approved by editor, Vilniaus m. sav.'); "
                                      "null for a source's own ingest. Never a name or an email."},
                            "fields": {"type": "object", "additionalProperties": {"type": "object",
                                       "properties": {"old": {}, "new": {}}}}}}},
        }},
        "Open311Service": {"type": "object", "required": ["service_code", "service_name"], "properties": {
            "service_code": STR, "service_name": STR, "description": STR, "metadata": {"type": "boolean"},
            "type": STR, "keywords": STR, "group": STR}},
        "Open311Request": {"type": "object", "required": [
            "service_request_id", "status", "service_code", "service_name", "requested_datetime"], "properties": {
            "service_request_id": STR, "status": {"type": "string", "enum": ["open", "closed"]},
            "status_notes": NSTR, "service_name": STR, "service_code": STR, "description": NSTR,
            "agency_responsible": NSTR, "service_notice": NSTR, "requested_datetime": STR,
            "updated_datetime": NSTR, "expected_datetime": NSTR, "address": NSTR, "address_id": NSTR,
            "zipcode": NSTR, "lat": {"type": "number", "nullable": True}, "long": {"type": "number", "nullable": True},
            "media_url": NSTR}},
        "Open311Errors": {"type": "array", "items": {"type": "object", "required": ["code", "description"],
                                                      "properties": {"code": {"type": "integer"},
                                                                     "description": STR}}},
        "SnapshotList": {"type": "object", "required": ["snapshots"], "properties": {"snapshots": {"type": "array",
            "items": {"type": "object", "required": ["id", "created_at", "last_seq"], "properties": {
                "id": {"type": "integer"}, "created_at": STR, "run_id": {"type": "integer", "nullable": True},
                "last_seq": {"type": "integer"}, "file": NSTR, "size": {"type": "integer", "nullable": True},
                "counts": {"type": "object"}, "pruned_at": NSTR, "download": NSTR}}}}},
    }


def build_spec(*, server_url: str = "/", version: str = "0.1.0") -> dict[str, Any]:
    """The whole OpenAPI 3.0 document."""
    paths: dict[str, Any] = {}
    for make in PATHS:
        paths.update(make())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Atvira API",
            "version": version,
            "description": "Public-friendly facilities (Lithuania first) as GeoJSON, with downloads, dated "
                           "snapshots and a change log. Errors are JSON with the HTTP status; every GET answers "
                           "CORS requests and carries ETag / Last-Modified (send If-None-Match for a 304).",
            "license": {"name": "Data: per source (OpenStreetMap: ODbL 1.0); see /datasets"},
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": _schemas()},
    }
