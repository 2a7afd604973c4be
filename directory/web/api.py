"""The JSON / GeoJSON API. Thin shells: parse parameters, call the core query, format."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from .. import areas_store, clusters, places, search
from ..errors import BadRequest, NotFound
from ..features import detail_feature, feature_collection
from ..interpret import interpret
from ..query import parse_int, parse_query
from ..store import get_facility
from .context import next_link, reader, settings

bp = Blueprint("api", __name__, url_prefix="/api")

GEOJSON = "application/geo+json"




@bp.get("/facilities")
def facilities() -> Response:
    cfg = settings()
    query, understood = interpret(reader(), parse_query(request.args, default_limit=cfg.page_limit,
                                                        max_limit=cfg.max_page_limit))
    if query.near is not None:  # nearest first: one page, no cursor
        features, more = search.query_near(reader(), query)
        return Response(feature_collection(features, next_url=None, truncated=more, interpreted=understood),
                        mimetype=GEOJSON)
    features, next_after = search.query_features(reader(), query)
    next_url = next_link(after=next_after) if next_after is not None else None
    body = feature_collection(features, next_url=next_url, interpreted=understood)
    return Response(body, mimetype=GEOJSON)


@bp.get("/facilities/clusters")
def facility_clusters() -> Response:
    """Counts on a grid for a view too full to draw point by point: ?bbox=&zoom= and the list filters."""
    args = {k: v for k, v in request.args.items() if k != "zoom"}
    raw = request.args.get("zoom", "")
    if not raw.isdigit() or not 0 <= int(raw) <= 30:
        raise BadRequest(f"expected a whole number 0..30, got {raw[:20]!r}", where="zoom")
    if not args.get("bbox"):
        raise BadRequest("a bbox=west,south,east,north is required", where="bbox")
    query, understood = interpret(reader(), parse_query(args))
    body = clusters.clusters(reader(), query, zoom=int(raw))
    if understood is not None:
        body["interpreted"] = understood
    return jsonify(body)


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
        raise NotFound(f"no facility with id {facility_id!r}", where="id")
    return Response(json.dumps(detail_feature(fac), ensure_ascii=False), mimetype=GEOJSON)


@bp.get("/areas")
def areas() -> Response:
    level = request.args.get("level") or None
    if level not in (None, "municipality", "eldership"):
        raise BadRequest("must be municipality or eldership", where="level")
    parent = request.args.get("parent") or None
    return jsonify({"areas": areas_store.list_areas(reader(), level=level, parent=parent)})
