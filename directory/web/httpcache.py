"""CORS and conditional GETs (ETag / Last-Modified / 304) for /api and /downloads.

The validator is the store's version: schema version, last change seq, last ingest run, last
snapshot and the number of areas: four index look-ups, no table scan. It is checked *before*
the view runs, so a client that already has the data costs neither the query nor the export.
A view whose answer depends on something else (the user) opts out with `@no_validators`.

Answers that carry or filter by `open_state` (every facility feature, the clusters and downloads
filtered by `open`/`open_now`) depend on the clock too: their ETag also holds the next instant
any stored opening hours open or close (`hours.next_boundary`), so a validator from before that
boundary never gets a 304 after it, and they carry no Last-Modified (a date cannot say that).
"""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from .. import clock, clusters, hours, storememo
from ..store import SCHEMA_VERSION
from .context import reader

PREFIXES = ("/api/", "/downloads/", "/datasets/")
TIME_DEPENDENT_PARAMS = frozenset({"open_now", "open"})
TIME_DEPENDENT_PATHS = ("/api/facilities",)  # features carry open_state (clusters: only when filtered)
BOUNDARY_RECHECK = timedelta(hours=1)  # with no boundary in reach, look again this often
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "If-None-Match, If-Modified-Since, Accept, Accept-Language",
    "Access-Control-Expose-Headers": "ETag, Last-Modified, Content-Disposition, Link",
    "Access-Control-Max-Age": "86400",
}

F = TypeVar("F", bound=Callable[..., Any])


def no_validators(view: F) -> F:
    """Mark a view whose answer is not a function of the store alone (no ETag, never 304)."""
    view.atvira_no_validators = True  # type: ignore[attr-defined]
    return view


def store_version(conn: sqlite3.Connection) -> tuple[str, datetime | None]:
    """(ETag, Last-Modified) of the store's current content (kept by a reader until the store
    changes: storememo)."""
    return storememo.kept(conn, "store_version", lambda: _store_version(conn))


def _store_version(conn: sqlite3.Connection) -> tuple[str, datetime | None]:
    row = conn.execute(
        "SELECT (SELECT coalesce(max(seq), 0) FROM changes),"
        " (SELECT coalesce(max(id), 0) FROM ingest_runs),"
        " (SELECT coalesce(max(id), 0) FROM snapshots),"
        " (SELECT count(*) FROM areas),"
        " (SELECT at FROM changes ORDER BY seq DESC LIMIT 1),"
        " (SELECT max(finished_at) FROM ingest_runs WHERE id = (SELECT max(id) FROM ingest_runs))"
    ).fetchone()
    seq, run, snap, areas, at, finished = row
    etag = f'W/"atvira-{SCHEMA_VERSION}-{seq}-{run}-{snap}-{areas}"'
    stamps = [_parse(v) for v in (at, finished) if v]
    return etag, max(stamps) if stamps else None


# A function of its arguments alone, asked with the same few (version, origin, boundary) on
# every request: kept (a crc32 and two formats per call otherwise, twice per request).
@lru_cache(maxsize=256)
def _vary(etag: str, *parts: str) -> str:
    """The ETag with a short digest of what else the body depends on (its absolute URLs' origin,
    which differs per trusted Host when ATVIRA_SERVER_NAME is unset)."""
    digest = format(zlib.crc32("|".join(parts).encode()), "08x")
    return f'{etag[:-1]}-{digest}"'


def _time_dependent() -> bool:
    if request.path == "/api/facilities/clusters":
        return bool(TIME_DEPENDENT_PARAMS & set(request.args))
    return request.path.startswith(TIME_DEPENDENT_PATHS) or bool(TIME_DEPENDENT_PARAMS & set(request.args))


# Per process: the store version the hours strings were read at, the strings, and the boundary
# last computed with the instant it stays valid until (recomputed once that instant has passed).
_bucket_cache: dict[str, Any] = {}
_bucket_lock = threading.Lock()


def _open_state_bucket(version: str, conn: sqlite3.Connection) -> str:
    """The next open/close boundary after now, as text (the same in every worker: any instant
    between two boundaries yields the later one)."""
    now = clock.now()
    with _bucket_lock:
        cached = _bucket_cache.get("entry")
        if cached and cached[0] == version and now < cached[3]:
            return cached[2]
        hours_list = cached[1] if cached and cached[0] == version else None
    if hours_list is None:
        hours_list = clusters.distinct_hours(conn)
    boundary = hours.next_boundary(hours_list, now=now)
    text = boundary.astimezone(UTC).isoformat() if boundary else "none"
    valid_until = min(boundary, now + BOUNDARY_RECHECK) if boundary else now + BOUNDARY_RECHECK
    with _bucket_lock:
        _bucket_cache["entry"] = (version, hours_list, text, valid_until)
    return text


def content_token(conn: sqlite3.Connection) -> str:
    """The store's content version as a short URL-safe token (the map pins its requests to it,
    `?v=`, so a shared cache keyed on the URL never serves one version for another)."""
    return storememo.kept(conn, "content_token", lambda: ".".join(str(v) for v in (SCHEMA_VERSION, *conn.execute(
        "SELECT (SELECT coalesce(max(seq), 0) FROM changes), (SELECT coalesce(max(id), 0) FROM ingest_runs),"
        " (SELECT coalesce(max(id), 0) FROM snapshots), (SELECT count(*) FROM areas)").fetchone())))


# The longest a shared cache keeps a version-pinned answer (its URL names the content version,
# so only the clock can make it stale: open_state).
MAX_SHARED_AGE = 3600


def shared_cache(resp: Response, *, version: str, fresh_until: float | None) -> None:
    """Make a version-pinned answer cacheable by a shared cache (nginx proxy_cache, a CDN).

    `fresh_until` is when a time-dependent part of it (open_state) next changes (Unix time;
    None: nothing in it depends on the clock): max-age ends there, and the validator carries it
    as a time bucket, so neither a cache nor a revalidating client keeps an answer across an
    opening or closing time."""
    for name, value in shared_cache_headers(version=version, fresh_until=fresh_until):
        resp.headers[name] = value


def shared_cache_headers(*, version: str, fresh_until: float | None) -> list[tuple[str, str]]:
    """shared_cache's ETag and Cache-Control, as a header list (web.fastpath sends them as is)."""
    age = MAX_SHARED_AGE if fresh_until is None else max(0, min(MAX_SHARED_AGE, int(fresh_until - clock.now().timestamp())))
    bucket = "" if fresh_until is None else f"-{int(fresh_until)}"
    return [("ETag", f'W/"atvira-{version}{bucket}"'), ("Cache-Control", f"public, max-age={age}")]


def validators(conn: sqlite3.Connection, *, host_url: str, time_dependent: bool) -> tuple[str, datetime | None]:
    """(ETag, Last-Modified) of an answer: the store's version, varied by the origin its URLs
    carry, and for an answer holding open_state by the next opening or closing time."""
    etag, last_modified = store_version(conn)
    etag = _vary(etag, host_url)
    if time_dependent:
        etag, last_modified = _vary(etag, _open_state_bucket(etag, conn)), None
    return etag, last_modified


def _parse(value: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _applies() -> bool:
    if request.method not in ("GET", "HEAD") or not request.path.startswith(PREFIXES):
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return view is not None and not getattr(view, "atvira_no_validators", False)


def init_http_cache(app: Flask) -> None:
    """Register the app-wide CORS and conditional-GET hooks (create_app calls this)."""

    @app.before_request
    def conditional_get() -> Response | None:
        if not _applies():
            return None
        etag, last_modified = validators(reader(), host_url=request.host_url,
                                         time_dependent=_time_dependent())
        g.atvira_validators = (etag, last_modified)
        match = False
        if request.if_none_match:
            match = request.if_none_match.contains_weak(etag.removeprefix("W/").strip('"'))
        elif request.if_modified_since and last_modified:
            match = last_modified.replace(microsecond=0) <= request.if_modified_since
        if match:
            resp = Response(status=304)
            _set_validators(resp, etag, last_modified)
            return resp
        return None

    @app.after_request
    def headers(resp: Response) -> Response:
        if request.path.startswith(PREFIXES) or request.path == "/api":
            if request.method in ("GET", "HEAD", "OPTIONS"):
                for k, v in CORS_HEADERS.items():
                    resp.headers.setdefault(k, v)
            validators = g.get("atvira_validators")
            if validators and resp.status_code == 200:
                _set_validators(resp, *validators)
        return resp


def _set_validators(resp: Response, etag: str, last_modified: datetime | None) -> None:
    resp.headers.setdefault("ETag", etag)  # a view's own validator (shared_cache) wins
    if last_modified:
        resp.last_modified = last_modified
    resp.headers.setdefault("Cache-Control", "public, no-cache")
