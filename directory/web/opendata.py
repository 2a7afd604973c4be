"""Open data for journalists: downloads, the API's documentation, dataset metadata, snapshots and
the change log. Thin shells over `exports`, `openapi`, `catalog`, `snapshots` and `changes`.

app.py registers this one blueprint; it also installs the CORS / ETag hooks for /api and /downloads.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_file, url_for

from .. import catalog, changes, clock, exports, openapi, snapshots
from ..errors import BadRequest
from ..interpret import interpret
from ..query import FacilityQuery, parse_int, parse_query
from ..store import counts
from .context import next_link, reader, settings

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
    stream = exports.download_chunks(cfg.db, query, fmt, tmp_dir=cfg.cache_dir / "exports")
    stamp = clock.now().strftime("%Y%m%d")
    resp = Response(stream, mimetype=exports.FORMATS[fmt].split(";")[0])
    if fmt == "csv":
        resp.headers["Content-Type"] = exports.FORMATS["csv"]
    suffix = "" if exports.is_whole(query) else "-filtered"
    resp.headers["Content-Disposition"] = f'attachment; filename="atvira-facilities{suffix}-{stamp}.{fmt}"'
    if fmt == "csv":
        resp.headers["Link"] = f'<{url_for("opendata.datapackage", _external=True)}>; rel="describedby"'
    return resp


@bp.get("/downloads/snapshots/<int:snapshot_id>.sqlite")
def snapshot_file(snapshot_id: int) -> Response:
    path = snapshots.snapshot_path(reader(), settings(), snapshot_id)
    return send_file(path.resolve(), mimetype=exports.FORMATS["sqlite"], as_attachment=True, download_name=path.name,
                     conditional=False)


# --- API documentation, snapshots and changes -----------------------------------------------

@bp.get("/api/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi.build_spec(server_url=request.host_url.rstrip("/") or "/"))


@bp.get("/api")
def api_page() -> str:
    base = request.host_url.rstrip("/")
    return render_template("api.html", base=base, spec=openapi.build_spec(server_url=base))


def _snapshot_links(snaps: list[dict]) -> list[dict]:
    for s in snaps:
        s["download"] = (url_for("opendata.snapshot_file", snapshot_id=s["id"], _external=True)
                         if s["file"] else None)
    return snaps


@bp.get("/api/snapshots")
def api_snapshots() -> Response:
    return jsonify({"snapshots": _snapshot_links(snapshots.list_snapshots(reader()))})


def _changes_from(args) -> dict:
    unknown = sorted(set(args) - {"since", "until", "limit", "after"})
    if unknown:
        raise BadRequest("unknown parameter; known are after, limit, since, until", where=unknown[0])
    cfg = settings()
    limit = parse_int(args, "limit", cfg.page_limit, low=1, high=cfg.max_page_limit)
    after = parse_int(args, "after", None, low=0, high=2**62)
    return changes.list_changes(reader(), since=args.get("since"), until=args.get("until"), limit=limit, after=after)


@bp.get("/api/changes")
def api_changes() -> Response:
    result = _changes_from(request.args)
    nxt = result.pop("next_after")
    result["next"] = next_link(after=nxt) if nxt is not None else None
    return jsonify(result)


@bp.get("/changes")
def changes_page() -> str:
    conn = reader()
    snaps = _snapshot_links(snapshots.list_snapshots(conn))
    args = dict(request.args)
    if "since" not in args and len(snaps) >= 2:  # default: the latest snapshot against the one before
        args["since"], args["until"] = str(snaps[1]["id"]), str(snaps[0]["id"])
    result = _changes_from(args)
    nxt = result.pop("next_after")
    next_url = url_for("opendata.changes_page", **{**args, "after": nxt}) if nxt is not None else None
    api_url = url_for("opendata.api_changes", **{k: v for k, v in args.items() if k != "after"})
    return render_template("changes.html", result=result, snapshots=snaps, args=args, next_url=next_url,
                           api_url=api_url)


# --- dataset metadata -------------------------------------------------------------------------

@bp.get("/datasets")
def datasets_page() -> str:
    conn = reader()
    return render_template(
        "datasets.html", licences=catalog.licences(conn), formats=catalog.DESCRIPTIONS, counts=counts(conn),
        modified=catalog.modified(conn), snapshots=_snapshot_links(snapshots.list_snapshots(conn))[:20],
        columns=exports.COLUMNS,
    )


@bp.get("/datasets/catalog.jsonld")
def catalog_jsonld() -> Response:
    body = catalog.dcat_catalog(reader(), base_url=request.host_url)
    return Response(current_app.json.dumps(body), mimetype=JSONLD)


@bp.get("/datasets/datapackage.json")
def datapackage() -> Response:
    return jsonify(catalog.datapackage(reader(), base_url=request.host_url))


@bp.get("/downloads/datasette-metadata.json")
def datasette_metadata() -> Response:
    """Metadata for `datasette facilities.sqlite -m datasette-metadata.json`: licences, sources,
    the full-text index and facets of the SQLite download."""
    return jsonify(catalog.datasette_metadata(reader()))
