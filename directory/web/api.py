"""The JSON / GeoJSON API. Thin shells: parse parameters, call the core query, format."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from urllib.parse import quote_plus, urlencode

from flask import Blueprint, Response, jsonify, redirect, request

from .. import areas_store, clock, clusters, places, search
from ..errors import BadRequest, NotFound
from ..features import collection_frame, detail_feature, feature_collection
from ..interpret import interpret
from ..query import FacilityQuery, parse_bbox, parse_int, parse_query, parse_whole
from ..store import get_facility
from .context import base_url, reader, settings
from .costs import busy, hold_slot
from .httpcache import content_token, no_validators, shared_cache

bp = Blueprint("api", __name__, url_prefix="/api")

GEOJSON = "application/geo+json"




CLUSTER_OPEN_FRESH = 60.0


def version_pinned(conn) -> str | Response | None:
    """A map request names the content version it wants (`v`, see httpcache.content_token):
    the current one makes the answer cacheable by a shared cache (its URL changes with every
    run, so a cached copy is never stale); an old one is redirected to the current (never
    cached). None when the request pins no version."""
    wanted = request.args.get("v")
    if wanted is None:
        return None
    current = content_token(conn)
    if wanted == current:
        return current
    args = request.args.to_dict()
    args["v"] = current
    # relative, so it goes back through whatever proxy the request came through
    resp = redirect(f"{request.script_root}{request.path}?{urlencode(args)}", code=302)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/version")
@no_validators
def version() -> Response:
    """The content version to pin map requests to (`v=`): asked once per view change, never
    cached, so a map sees a new run at once while its boxes come from a shared cache."""
    resp = jsonify({"version": content_token(reader())})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/facilities")
def facilities() -> Response:
    cfg = settings()
    args = {k: v for k, v in request.args.items() if k != "v"}
    query, understood = interpret(reader(), parse_query(args, default_limit=cfg.page_limit,
                                                        max_limit=cfg.max_page_limit))
    if query.near is not None:  # nearest first: one page, no cursor
        features, more = search.query_near(reader(), query)
        return Response(feature_collection(features, next_url=None, truncated=more, interpreted=understood),
                        mimetype=GEOJSON)
    pinned = version_pinned(reader())
    if isinstance(pinned, Response):
        return pinned
    body, page = page_body(reader(), query, understood, args=request.args,
                           page_url=base_url() + request.script_root + request.path)
    resp = Response(body, mimetype=GEOJSON)
    if pinned:
        shared_cache(resp, version=pinned, fresh_until=page.fresh_until)
    return resp


def page_body(conn: sqlite3.Connection, query: FacilityQuery, understood: dict | None, *,
              args: Mapping[str, str], page_url: str) -> tuple[bytes, search.Page]:
    """A bbox/list page's answer (UTF-8) and the page it holds: the request's `args` give the
    next link (with `after` replaced), `page_url` is where it points. The view and web.fastpath
    both answer with this."""
    page = search.query_page(conn, query)
    next_url = None
    if page.next_after is not None:
        rest = {k: v for k, v in args.items() if k != "after"}
        rest["after"] = str(page.next_after)
        next_url = f"{page_url}?{query_text(rest)}"
    head, tail = collection_frame(page.count, next_url=next_url, interpreted=understood)
    return b"".join((head.encode(), page.text, tail.encode())), page  # one copy of the page's bytes, not two


# What urllib's quote_plus leaves as it is, and the comma (which it writes as %2C): a map
# request's values (numbers, a bbox, slugs) are made of these alone.
_PLAIN = re.compile(r"[A-Za-z0-9_.~,-]*")


def _quote(text: str) -> str:
    return text.replace(",", "%2C") if _PLAIN.fullmatch(text) else quote_plus(text)


def query_text(args: Mapping[str, str]) -> str:
    """urllib's urlencode(args), character for character, without its per-character quoting
    for plain values (a page's next link: a tenth of the fast path's own work went there)."""
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in args.items())


@bp.get("/facilities/clusters")
def facility_clusters() -> Response:
    """Counts on a grid for a view too full to draw point by point: ?bbox=&zoom= and the list filters."""
    args = {k: v for k, v in request.args.items() if k != "zoom"}  # `v` is taken out below
    zoom = parse_whole(request.args.get("zoom"), where="zoom", low=0, high=clusters.MAX_ZOOM)
    if not args.get("bbox"):
        raise BadRequest("a bbox=west,south,east,north is required", where="bbox")
    args.pop("v", None)
    query, understood = interpret(reader(), parse_query(args))  # a bad parameter is a 400 before any redirect
    clusters.check_view(query.bbox, zoom)  # a request's bound: no screen shows more cells than this
    pinned = version_pinned(reader())
    if isinstance(pinned, Response):
        return pinned
    if not clusters.is_expensive(reader(), query, zoom=zoom):  # the grid, or a small box: never limited
        body = clusters.clusters(reader(), query, zoom=zoom)
    else:
        release = hold_slot()  # grouping many rows on the fly: one of the worker's expensive slots
        if release is None:
            return busy()
        try:
            body = clusters.clusters(reader(), query, zoom=zoom)
        finally:
            release()
    if understood is not None:
        body["interpreted"] = understood
    resp = jsonify(body)
    if pinned:
        # "open now" counts are summed per hours string at this instant: short-lived
        shared_cache(resp, version=pinned,
                     fresh_until=clock.now().timestamp() + CLUSTER_OPEN_FRESH if query.open_states else None)
    return resp


@bp.get("/places")
def place() -> Response:
    """A typed place or address, best first (the gazetteer, then facility addresses and names):
    the best match's fields at the top level (for "near me" without geolocation) and up to
    `limit` suggestions (as the user types)."""
    text = (request.args.get("q") or "").strip()
    if not text or len(text) > 200:
        raise BadRequest("give a place name or address of 1..200 characters", where="q")
    unknown = sorted(set(request.args) - {"q", "limit"})
    if unknown:
        raise BadRequest("unknown parameter; known are limit, q", where=unknown[0])
    limit = parse_int(request.args, "limit", 8, low=1, high=places.MAX_SUGGESTIONS)
    conn = reader()
    suggestions = places.suggest(conn, text, limit=limit)
    best = suggestions[0] if suggestions else places.find_place(conn, text)
    if best is None:
        raise NotFound(f"no place or address matches {text[:80]!r}", where="q")
    return jsonify({**best, "suggestions": suggestions or [best]})


@bp.get("/facilities/<facility_id>")
def facility(facility_id: str) -> Response:
    fac = get_facility(reader(), facility_id)
    if fac is None:
        raise NotFound(f"no facility with id {facility_id[:80]!r}", where="id")
    return Response(json.dumps(detail_feature(fac), ensure_ascii=False), mimetype=GEOJSON)


@bp.get("/areas")
def areas() -> Response:
    level = request.args.get("level") or None
    if level not in (None, "municipality", "eldership"):
        raise BadRequest("must be municipality or eldership", where="level")
    parent = request.args.get("parent") or None
    return jsonify({"areas": areas_store.list_areas(reader(), level=level, parent=parent)})


# --- the map's local base layer ---------------------------------------------------------------

OUTLINE_LEVELS = ("municipality", "eldership")


@bp.get("/areas/outlines")
def outlines() -> Response:
    """Simplified area outlines (the audit's stored shapes) as GeoJSON: the map's local base layer
    when the tiles cannot be loaded. ?level=municipality (all 60, ~190 kB) or eldership (only with
    a bbox=west,south,east,north, at most 150 areas). Cacheable for a day: areas rarely change."""
    level = request.args.get("level") or "municipality"
    if level not in OUTLINE_LEVELS:
        raise BadRequest("must be municipality or eldership", where="level")
    bbox = None
    if request.args.get("bbox"):
        bbox = parse_bbox(request.args["bbox"])
    elif level == "eldership":
        raise BadRequest("elderships need a bbox=west,south,east,north (there are 554)", where="bbox")
    body = areas_store.outline_collection(reader(), level=level, bbox=bbox, limit=150 if level == "eldership" else None)
    resp = Response(body, mimetype="application/geo+json")
    resp.headers["Cache-Control"] = "public, max-age=86400"
    return resp
