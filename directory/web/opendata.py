"""Open data for journalists: downloads, the API's documentation, dataset metadata, snapshots and
the change log. Thin shells over `exports`, `openapi`, `catalog`, `snapshots` and `changes`.

app.py registers this one blueprint; it also installs the CORS / ETag hooks for /api and /downloads.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_file, url_for
from flask_babel import format_datetime, get_locale, gettext
from flask_babel import lazy_gettext as _l

from .. import catalog, changes, clock, exports, openapi, snapshots
from ..errors import BadRequest
from ..interpret import interpret
from ..query import FacilityQuery, parse_int, parse_query, parse_whole
from ..store import counts
from .context import base_url, external_url, next_link, reader, settings
from .costs import client_gone_check, expensive
from .i18n import number, translated_or_marked
from .pages import CATEGORY_LABELS, FEATURE_LABELS, FEATURE_VALUE_LABELS, SECTOR_LABELS, STATUS_LABELS

bp = Blueprint("opendata", __name__)

JSONLD = "application/ld+json"




# --- downloads --------------------------------------------------------------------------------

def download_query(args) -> FacilityQuery:
    """The API's filters; paging parameters are refused (a download holds every matching row)."""
    for name in ("limit", "after"):
        if name in args:
            raise BadRequest("downloads are not paged: they hold every matching facility", where=name)
    return interpret(reader(), parse_query(args))[0]


@bp.get("/downloads/facilities.<fmt>")
@expensive
def download(fmt: str) -> Response:
    fmt = exports.parse_format(fmt)
    query = download_query(request.args)
    cfg = settings()
    if fmt == "sqlite" and exports.is_whole(query):
        current = snapshots.current_snapshot_path(reader(), cfg)
        if current is not None:  # the latest snapshot already is this copy: no VACUUM INTO per request
            return send_file(current.resolve(), mimetype=exports.FORMATS["sqlite"], as_attachment=True,
                             download_name=f"atvira-facilities-{clock.now():%Y%m%d}.sqlite",
                             conditional=False)
    stream = exports.download_chunks(cfg.db, query, fmt, tmp_dir=cfg.cache_dir / "exports",
                                     cancelled=client_gone_check(), cache_bytes=cfg.export_cache_bytes)
    stamp = clock.now().strftime("%Y%m%d")
    resp = Response(stream, mimetype=exports.FORMATS[fmt].split(";")[0])
    if fmt == "csv":
        resp.headers["Content-Type"] = exports.FORMATS["csv"]
    suffix = "" if exports.is_whole(query) else "-filtered"
    resp.headers["Content-Disposition"] = f'attachment; filename="atvira-facilities{suffix}-{stamp}.{fmt}"'
    if fmt == "csv":
        resp.headers["Link"] = f'<{external_url("opendata.datapackage")}>; rel="describedby"'
    return resp


@bp.get("/downloads/snapshots/<snapshot_id>.sqlite")
def snapshot_file(snapshot_id: str) -> Response:
    number = parse_whole(snapshot_id, where="snapshot", low=1, high=2**62)  # not werkzeug's int: unbounded
    path = snapshots.snapshot_path(reader(), settings(), number)
    return send_file(path.resolve(), mimetype=exports.FORMATS["sqlite"], as_attachment=True, download_name=path.name,
                     conditional=False)


# --- API documentation, snapshots and changes -----------------------------------------------

@bp.get("/api/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi.build_spec(server_url=base_url() or "/"))


# The endpoint summaries of directory/openapi.py as the /api page shows them (the OpenAPI
# document itself stays English); a summary without an entry shows in English, marked lang="en".
API_SUMMARIES = (
    _l("Facilities as a GeoJSON FeatureCollection (RFC 7946), keyset-paged"),
    _l("A typed place or address (area names, then facility addresses and names) for near-me"),
    _l("Counts on a 64-px Web Mercator grid for a view too full to draw point by point"),
    _l("Dated snapshots of the whole store, newest first, with download links"),
    _l("Every matching facility as csv (the same filters as /api/facilities; never paged)"),
    _l("Every matching facility as geojson (the same filters as /api/facilities; never paged)"),
    _l("Every matching facility as gpkg (the same filters as /api/facilities; never paged)"),
    _l("Every matching facility as sqlite (the same filters as /api/facilities; never paged)"),
    _l("Municipalities and elderships with population and facility counts"),
    _l("One facility as a GeoJSON Feature, with every source record and its licence"),
    _l("One municipality: categories against median and county, elderships, gaps, checklist, data quality"),
    _l("Simplified area outlines as GeoJSON (the map's local base layer when tiles fail)"),
    _l("The openness audit: national totals and the 60 municipalities for one category"),
    _l("This document"),
    _l("What was added, changed (field by field, old and new) and removed between two snapshots or dates"),
)


@bp.get("/api")
def api_page() -> str:
    base = base_url()
    return render_template("api.html", base=base, spec=openapi.build_spec(server_url=base),
                           pandas_recipe=catalog.pandas_recipe(base_url=base, query="?category=playground"))


def _snapshot_links(snaps: list[dict]) -> list[dict]:
    for s in snaps:
        s["download"] = (external_url("opendata.snapshot_file", snapshot_id=s["id"])
                         if s["file"] else None)
    return snaps


@bp.get("/api/snapshots")
def api_snapshots() -> Response:
    return jsonify({"snapshots": _snapshot_links(snapshots.list_snapshots(reader()))})


CHANGES_HTML_MAX = 200  # /changes (HTML) rows per page: 5,000 was 7 MB of HTML; the JSON API pages to max_page_limit


def _changes_from(args, *, most: int | None = None) -> dict:
    unknown = sorted(set(args) - {"since", "until", "limit", "after", "lang"})  # lang: the UI language
    if unknown:
        raise BadRequest("unknown parameter; known are after, limit, since, until", where=unknown[0])
    cfg = settings()
    most = most or cfg.max_page_limit
    limit = parse_int(args, "limit", min(cfg.page_limit, most), low=1, high=most)
    after = parse_int(args, "after", None, low=0, high=2**62)
    return changes.list_changes(reader(), since=args.get("since"), until=args.get("until"), limit=limit, after=after)


@bp.get("/api/changes")
def api_changes() -> Response:
    result = _changes_from(request.args)
    nxt = result.pop("next_after")
    result["next"] = next_link(after=nxt) if nxt is not None else None
    return jsonify(result)


# The change log's field names as the /changes page labels them (the JSON keeps the names).
FIELD_LABELS = {
    "name": _l("Name"), "categories": _l("Categories"), "lon": _l("Longitude"), "lat": _l("Latitude"),
    "licence": _l("Licence"), "address": _l("Address"), "operator": _l("Operator"), "sector": _l("Sector"),
    "features": _l("Features"), "opening_hours": _l("Opening hours"), "status": _l("Status"),
    "last_verified": _l("Last verified"), "extra": _l("Other details"), "source": _l("Source"),
    "source_id": _l("Id at the source"), "municipality_code": _l("Municipality code"),
    "eldership_code": _l("Eldership code"),
}
# Register extras (ingest/mappings/*.toml [extra.*]) in words; an unknown key shows with spaces.
EXTRA_LABELS = {
    "capacity": _l("places"), "children": _l("children enrolled"), "free_places": _l("free places"),
    "waiting_list": _l("waiting list"), "languages": _l("languages"), "age_from": _l("age from"),
    "age_to": _l("age to"), "groups": _l("groups"), "elderate": _l("eldership"), "website": _l("website"),
    "phone": _l("phone"),
}


def human_value(field: str, value) -> str:
    """A stored value in words: categories and features by their labels, extras as
    "label: value", numbers in the page's language, nothing as an empty cell (never [] or {})."""
    if value is None or value == [] or value == {} or value == "":
        return ""
    if field == "categories" and isinstance(value, list):
        return ", ".join(str(CATEGORY_LABELS.get(c, c)) for c in value)
    if field == "features" and isinstance(value, dict):
        return ", ".join(f"{FEATURE_LABELS.get(k, k.replace('_', ' '))}: {FEATURE_VALUE_LABELS.get(v, v)}"
                         for k, v in value.items())
    if field == "extra" and isinstance(value, dict):
        return ", ".join(f"{EXTRA_LABELS.get(k, k.replace('_', ' '))}: {human_value('', v)}" for k, v in value.items()
                         if v not in (None, "", [], {}))
    if field == "licence":
        return str(translated_or_marked(value))
    if field == "sector":
        return str(SECTOR_LABELS.get(value, value))
    if field == "status":
        return str(STATUS_LABELS.get(value, value))
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, int):
        return number(value, "count")
    if isinstance(value, float):
        return number(value, "rate") if field not in ("lon", "lat") else f"{value:.6f}"
    if isinstance(value, list):
        return ", ".join(human_value("", v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')}: {human_value('', v)}" for k, v in value.items())
    return str(value)


def when(stamp: str | None) -> str:
    """A stored UTC time stamp (ISO) as a date and time in the page's language and time zone."""
    if not stamp:
        return ""
    try:
        return format_datetime(datetime.fromisoformat(stamp.replace("Z", "+00:00")), "medium")
    except ValueError:
        return stamp


def human_bound(info: dict | None, *, start: bool) -> str:
    """One end of the range in words: a snapshot and its date, a date, or the open end."""
    if info is None:
        return gettext("the beginning") if start else gettext("now")
    if "snapshot" in info:
        return gettext("snapshot %(id)s (%(when)s)", id=info["snapshot"], when=when(info["created_at"]))
    return when(info["date"])


def human_changes(result: dict) -> list[dict]:
    """The change entries with labelled fields and values in words, for the page."""
    out = []
    for c in result["changes"]:
        rows = [{"field": str(FIELD_LABELS.get(name, name.replace("_", " "))), "key": name,
                 "old": human_value(name, v.get("old")), "new": human_value(name, v.get("new"))}
                for name, v in c["fields"].items()]
        if c["kind"] == "added":  # a new facility: what it is, not a list of empty "before" cells
            rows = [r for r in rows if r["new"]]
        out.append({**c, "rows": rows, "when": when(c["at"])})
    return out


@bp.get("/changes")
def changes_page() -> str:
    conn = reader()
    snaps = _snapshot_links(snapshots.list_snapshots(conn))
    for s in snaps:
        s["when"] = when(s["created_at"])
    args = dict(request.args)
    if "since" not in args and len(snaps) >= 2:  # default: the latest snapshot against the one before
        args["since"], args["until"] = str(snaps[1]["id"]), str(snaps[0]["id"])
    result = _changes_from(args, most=CHANGES_HTML_MAX)
    nxt = result.pop("next_after")
    next_url = url_for("opendata.changes_page", **{**args, "after": nxt}) if nxt is not None else None
    api_url = url_for("opendata.api_changes", **{k: v for k, v in args.items() if k not in ("after", "lang")})
    return render_template("changes.html", result=result, changes=human_changes(result), snapshots=snaps, args=args,
                           next_url=next_url, api_url=api_url,
                           since=human_bound(result["since"], start=True), until=human_bound(result["until"], start=False))


# --- dataset metadata -------------------------------------------------------------------------

# The /datasets page's texts for the formats and columns (catalog.DESCRIPTIONS and
# exports.COLUMNS keep the English the metadata files carry). A column without an entry here is
# shown in English and marked so (lang="en").
FORMAT_TEXTS = {
    "csv": _l("CSV (UTF-8 with BOM, RFC 4180), one row per facility with latitude/longitude columns"),
    "geojson": _l("GeoJSON FeatureCollection (RFC 7946, WGS84 lon/lat)"),
    "gpkg": _l("OGC GeoPackage, layer `facilities`, EPSG:4326, with an R*Tree spatial index"),
    "sqlite": _l("The whole SQLite store (a consistent copy); with filters, one flat `facilities` table"),
}
COLUMN_TEXTS = {
    "id": _l("Stable public id (from the first source record that described the place)"),
    "name": _l("Name as the source gives it"),
    "categories": _l("Category slugs, separated by ';'"),
    "latitude": _l("WGS84 latitude (EPSG:4326)"),
    "longitude": _l("WGS84 longitude (EPSG:4326)"),
    "address": _l("Street address"),
    "municipality_code": _l("Municipality code (the areas' code)"),
    "municipality": _l("Municipality name"),
    "eldership_code": _l("Eldership (seniūnija) code"),
    "eldership": _l("Eldership name"),
    "operator": _l("Who runs the place"),
    "sector": _l("Operator sector: public, private, civic or unknown"),
    "status": _l("active, closed, unknown or removed"),
    "opening_hours": _l("Opening hours in OpenStreetMap opening_hours syntax"),
    "sources": _l("Every source record describing the place, as source:id, separated by '; '"),
    "licences": _l("The licences of those source records, separated by '; '"),
    "last_verified": _l("When the facts were last checked (as the source gives it)"),
    "fetched_at": _l("When the source record was fetched (UTC)"),
    "updated_at": _l("When the store last changed this row (UTC)"),
}


def column_text(column) -> tuple[str, bool]:
    """(description in the page's language, whether it is still the English original)."""
    if column.name in COLUMN_TEXTS:
        return str(COLUMN_TEXTS[column.name]), False
    feature = column.name.removeprefix("feature_")
    if feature != column.name and feature in FEATURE_LABELS:
        return gettext("%(feature)s: yes, limited or no; empty means unknown", feature=FEATURE_LABELS[feature]), False
    return column.description, str(get_locale() or "lt") != "en"


@bp.get("/datasets")
def datasets_page() -> str:
    conn = reader()
    columns = [{"name": c.name, "type": c.type, "text": column_text(c)[0], "english": column_text(c)[1]}
               for c in exports.COLUMNS]
    formats = {k: str(FORMAT_TEXTS.get(k, v)) for k, v in catalog.DESCRIPTIONS.items()}
    licences = [dict(item, fetched=when(item["fetched_at"])) for item in catalog.licences(conn)]
    return render_template(
        "datasets.html", licences=licences, formats=formats, counts=counts(conn),
        modified=when(catalog.modified(conn)), snapshots=_snapshot_links(snapshots.list_snapshots(conn))[:20],
        columns=columns, pandas_recipe=catalog.pandas_recipe(base_url=base_url()),
        geopandas_recipe=catalog.geopandas_recipe(base_url=base_url()),
    )


@bp.get("/datasets/catalog.jsonld")
def catalog_jsonld() -> Response:
    body = catalog.dcat_catalog(reader(), base_url=base_url() + "/")
    return Response(current_app.json.dumps(body), mimetype=JSONLD)


@bp.get("/datasets/datapackage.json")
def datapackage() -> Response:
    return jsonify(catalog.datapackage(reader(), base_url=base_url() + "/"))


@bp.get("/downloads/datasette-metadata.json")
def datasette_metadata() -> Response:
    """Metadata for `datasette facilities.sqlite -m datasette-metadata.json`: licences, sources,
    the full-text index and facets of the SQLite download."""
    return jsonify(catalog.datasette_metadata(reader()))
