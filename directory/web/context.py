"""What every view needs from the app: the request's read-only store handle and the settings.

One copy of these two lookups (they were repeated in four blueprints), so a view never reaches
into `current_app` itself.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import urlencode

from flask import current_app, request

from ..config import Settings


def reader() -> sqlite3.Connection:
    """This thread's read-only connection to the store (opened once per thread by ReaderPool)."""
    return current_app.extensions["atvira_readers"].get()


def settings() -> Settings:
    return current_app.config["ATVIRA"]


def next_link(*, after: object, endpoint_url: str | None = None) -> str:
    """The URL of the next keyset page: this request's parameters with `after` replaced."""
    args = {k: v for k, v in request.args.items() if k != "after"}
    args["after"] = str(after)
    return f"{endpoint_url or request.base_url}?{urlencode(args)}"
