"""What every view needs from the app: the request's read-only store handle and the settings.

One copy of these two lookups (they were repeated in four blueprints), so a view never reaches
into `current_app` itself.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import urlencode

from flask import current_app, g, request, url_for

from ..config import Settings
from ..private_store import PrivatePool

JSON_PREFIXES = ("/api", "/open311", "/downloads")


def reader() -> sqlite3.Connection:
    """This thread's read-only connection to the store (opened once per thread by ReaderPool).

    Asked of the pool once per request: the pool then checks whether the store changed (one
    pragma, storememo.refresh), and every later call in the request reuses that answer."""
    conn = g.get("atvira_reader")
    if conn is None:
        conn = g.atvira_reader = current_app.extensions["atvira_readers"].get()
    return conn


def settings() -> Settings:
    return current_app.config["ATVIRA"]


def base_url() -> str:
    """The origin every absolute URL starts with: ATVIRA_SERVER_NAME, else this request's scheme
    and Host (a Host outside ATVIRA_TRUSTED_HOSTS never gets this far: Flask answers 400; the
    scheme comes from X-Forwarded-Proto only behind the proxies gunicorn trusts)."""
    return settings().public_origin() or request.host_url.rstrip("/")


def external_url(endpoint: str, **values: object) -> str:
    """url_for(endpoint) as an absolute URL on `base_url()` (never on an untrusted Host)."""
    return base_url() + url_for(endpoint, **values)


def private_db() -> sqlite3.Connection:
    """This thread's read-write connection to the private store (users, sessions, contributions)."""
    pool: PrivatePool = current_app.extensions["atvira_private"]
    return pool.get()


def wants_json() -> bool:
    """Whether an error for this request is answered as JSON (API clients) rather than a page."""
    return (request.path.startswith(JSON_PREFIXES) or request.is_json
            or request.accept_mimetypes.best == "application/json")


def next_link(*, after: object, endpoint_url: str | None = None) -> str:
    """The URL of the next keyset page: this request's parameters with `after` replaced."""
    args = {k: v for k, v in request.args.items() if k != "after"}
    args["after"] = str(after)
    return f"{endpoint_url or base_url() + request.script_root + request.path}?{urlencode(args)}"
