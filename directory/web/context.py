"""What every view needs from the app: the request's read-only store handle and the settings.

One copy of these two lookups (they were repeated in four blueprints), so a view never reaches
into `current_app` itself.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import urlencode

from flask import current_app, request

from ..config import Settings
from ..private_store import PrivatePool

JSON_PREFIXES = ("/api", "/open311", "/downloads")


def reader() -> sqlite3.Connection:
    """This thread's read-only connection to the store (opened once per thread by ReaderPool)."""
    return current_app.extensions["atvira_readers"].get()


def settings() -> Settings:
    return current_app.config["ATVIRA"]


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
    return f"{endpoint_url or request.base_url}?{urlencode(args)}"
