"""The map's page requests answered without Flask's per-request machinery.

`GET /api/facilities?bbox=…` is the request a map sends for every view, and its answer is one
SQLite statement's bytes (search.query_page). Around that statement, Flask's request context,
URL dispatch and the app-wide hooks (the rate limiter's bookkeeping, the session, i18n, the CSP
nonce, CORS and the conditional-GET validators) cost as much again, and for this request all of
them either do nothing or add fixed headers. `FastPages` wraps the app's WSGI callable and
answers exactly that request itself, with the same body and the same headers in the same order
(tests/test_fast_path.py compares the two paths header by header):

- the Host check first (werkzeug's get_host with TRUSTED_HOSTS, as Flask does): an untrusted
  Host goes to Flask, which answers 400;
- the validators (httpcache.validators) and, for a version-pinned request, the shared-cache
  headers (httpcache.shared_cache_headers); the CORS headers; the security headers with a fresh
  CSP nonce (security.security_headers);
- the body from api.page_body, the view's own function.

Everything else goes to Flask unchanged: another path or method, HEAD, a conditional request
(If-None-Match / If-Modified-Since: the 304 logic stays in one place), a request carrying the
session cookie (Flask refreshes a signed-in user's cookie on every request), a parameter outside the
plain filters (q, near, radius, lang set a cookie or need the view's other branches), a pinned
version that is not the current one (the redirect), any bad parameter (the 400 comes from the
view) and any error. The request has no rate limit (the limiter only limits the POST views); if
the app is ever given a default or application-wide limit, the fast path turns itself off.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.exceptions import SecurityError
from werkzeug.sansio.utils import get_current_url
from werkzeug.wsgi import get_host

from ..errors import AtviraError
from ..query import parse_query
from .api import GEOJSON, page_body
from .httpcache import CORS_HEADERS, content_token, shared_cache_headers, validators
from .security import security_headers, tile_origin

PATH = "/api/facilities"
# The parameters a page request may carry to be answered here (the plain filters and paging).
PARAMS = frozenset({"bbox", "limit", "after", "v", "category", "feature", "features", "status", "municipality",
                    "eldership", "open", "open_now", "sector"})
# At most this many (scheme, host) origins are remembered (a development server with no
# TRUSTED_HOSTS accepts any Host: past this, the origin is computed per request, not kept).
MAX_ORIGINS = 64


class FastPages:
    """WSGI middleware: the map's bbox pages answered directly, anything else by `app`."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wsgi_app = app.wsgi_app
        self.settings = app.config["ATVIRA"]
        self.tiles = tile_origin(self.settings)
        self.origin = self.settings.public_origin()
        self.cors = list(CORS_HEADERS.items())
        # A signed-in browser's requests go to Flask: its session interface refreshes a
        # permanent session's cookie on every request, this path would not.
        self.session_cookie = f"{app.config['SESSION_COOKIE_NAME']}="
        # A limit on every request would apply here too: then Flask answers everything.
        self.enabled = not (app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION"))
        # request.host_url per origin (see host_url): werkzeug checks and rebuilds it on every request.
        self.host_urls: dict[tuple, str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if (self.enabled and environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "GET"
                and "HTTP_IF_NONE_MATCH" not in environ and "HTTP_IF_MODIFIED_SINCE" not in environ
                and self.session_cookie not in environ.get("HTTP_COOKIE", "")):
            answer = self.answer(environ)
            if answer is not None:
                body, headers = answer
                start_response("200 OK", headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    def answer(self, environ: dict[str, Any]) -> tuple[bytes, list[tuple[str, str]]] | None:
        """The answer's body and headers, or None to let Flask answer."""
        # What Flask's Request would read, read from the environ as it reads it (werkzeug's
        # Request, its args MultiDict and cached properties cost a tenth of this path).
        try:
            host_url = self.host_url(environ)
            pairs = parse_qsl(environ.get("QUERY_STRING", "").encode("latin1").decode(), keep_blank_values=True,
                              errors="werkzeug.url_quote")
        except (SecurityError, UnicodeError):
            return None  # Flask answers it (400 for an untrusted Host)
        args: dict[str, str] = {}
        for name, value in pairs:  # a repeated parameter: the first counts, as in request.args
            args.setdefault(name, value)
        if not args.get("bbox") or not PARAMS.issuperset(args):
            return None
        conn = self.app.extensions["atvira_readers"].get()
        try:
            etag, _last_modified = validators(conn, host_url=host_url, time_dependent=True)
            query = parse_query({k: v for k, v in args.items() if k != "v"}, default_limit=self.settings.page_limit,
                                max_limit=self.settings.max_page_limit)
            pinned = None
            if "v" in args:
                pinned = content_token(conn)
                if args["v"] != pinned:
                    return None  # the view redirects to the current version
            body, page = page_body(conn, query, None, args=args,
                                   page_url=(self.origin or host_url.rstrip("/")) + script_root(environ) + PATH)
        except (AtviraError, sqlite3.Error):
            return None  # the view answers (or reports) it
        headers = [("Content-Type", GEOJSON), ("Content-Length", str(len(body)))]
        if pinned:  # the view sets these before the hooks add theirs
            headers += shared_cache_headers(version=pinned, fresh_until=page.fresh_until) + self.cors
        else:
            headers += [*self.cors, ("ETag", etag), ("Cache-Control", "public, no-cache")]
        headers += security_headers(self.settings, secrets.token_urlsafe(16), tiles=self.tiles)
        return body, headers

    def host_url(self, environ: dict[str, Any]) -> str:
        """request.host_url: werkzeug's get_host with TRUSTED_HOSTS, as Flask checks it
        (SecurityError for an untrusted Host), then get_current_url. Both are functions of (scheme,
        Host, server name, server port, trusted hosts) alone, so the answer is kept per those: the
        check encodes every trusted name to IDNA, and the URL is quoted and IRI-decoded, on every
        request (together about a quarter of this path's own work)."""
        trusted = self.app.config["TRUSTED_HOSTS"]
        trusted = self.app.request_class.trusted_hosts if trusted is None else trusted
        scheme = environ.get("wsgi.url_scheme", "http")
        key = (scheme, environ.get("HTTP_HOST"), environ.get("SERVER_NAME"), environ.get("SERVER_PORT"),
               tuple(trusted or ()))
        url = self.host_urls.get(key)
        if url is None:
            url = get_current_url(scheme, get_host(environ, trusted))  # an untrusted Host raises: never kept
            if len(self.host_urls) < MAX_ORIGINS:
                self.host_urls[key] = url
        return url


def script_root(environ: dict[str, Any]) -> str:
    """request.script_root: SCRIPT_NAME as werkzeug decodes it, without a trailing slash."""
    return (environ.get("SCRIPT_NAME") or "").encode("latin1").decode(errors="replace").rstrip("/")
