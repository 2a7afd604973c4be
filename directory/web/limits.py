"""Per-client rate limits (Flask-Limiter) on logins and contributions.

The storage is a setting (ATVIRA_RATELIMIT_STORAGE): `memory://` counts per process, which is
right for one development server; with several gunicorn workers or machines it must be a shared
Redis (`redis://127.0.0.1:6379`), or each worker would allow the whole limit on its own.

Use: `@limiter.limit(submission_limit)` on a POST view (`login_limit` for the login). The limits
are callables read from the app's Settings at request time, so each app keeps its own.

The client is the TCP peer, unless that peer is a trusted proxy (ATVIRA_FORWARDED_ALLOW_IPS, the
same list gunicorn.conf.py trusts for X-Forwarded-Proto): then it is the last address of
X-Forwarded-For, the one our proxy appended. Addresses earlier in that header were written by the
client and could be forged to dodge the limit, so they are never used.
"""

from __future__ import annotations

import ipaddress
import math

from flask import Flask, current_app, has_app_context, jsonify, render_template, request
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits.storage import Storage
from limits.strategies import RateLimiter

from ..config import Settings
from .context import settings, wants_json


def _trusted(peer: str, allowed: str) -> bool:
    entries = [e.strip() for e in allowed.split(",") if e.strip()]
    if "*" in entries:
        return True
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for entry in entries:
        try:
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address() -> str:
    """The address a rate limit counts against (see the module docstring for proxies)."""
    peer = request.remote_addr or "unknown"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and _trusted(peer, settings().forwarded_allow_ips):
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return peer  # a malformed header from the proxy: count against the proxy itself
    return peer


def login_limit() -> str:
    return settings().login_limit


def submission_limit() -> str:
    return settings().submission_limit


class PerAppLimiter(Limiter):
    """Flask-Limiter keeps its storage on the Limiter object, so one process-wide `limiter` bound to
    several apps (the tests build many; an embedding may build two) would count every app in the
    storage of the last one bound. This one keeps the storage per app and picks the serving app's:
    views still decorate the one `limiter` at import time."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        app.extensions["atvira_ratelimit"] = (Limiter.storage.fget(self), Limiter.limiter.fget(self))

    @property
    def storage(self) -> Storage:
        if has_app_context() and "atvira_ratelimit" in current_app.extensions:
            return current_app.extensions["atvira_ratelimit"][0]
        return Limiter.storage.fget(self)

    @property
    def limiter(self) -> RateLimiter:
        if has_app_context() and "atvira_ratelimit" in current_app.extensions:
            return current_app.extensions["atvira_ratelimit"][1]
        return Limiter.limiter.fget(self)


# One Limiter for the process, as Flask extensions are; `init_limits` binds it to each app with
# that app's storage (ATVIRA_RATELIMIT_STORAGE).
limiter = PerAppLimiter(key_func=client_address, headers_enabled=True, key_prefix="atvira")


def init_limits(app: Flask, settings_: Settings) -> None:
    app.config["RATELIMIT_ENABLED"] = True
    app.config["RATELIMIT_STORAGE_URI"] = settings_.ratelimit_storage
    app.config["RATELIMIT_STRATEGY"] = "fixed-window"
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def too_many(exc: RateLimitExceeded):
        message = _("Too many requests from your address: please wait a little and try again.")
        # Flask-Limiter sets the exact Retry-After after this (headers_enabled); this is the
        # fallback when no window is known.
        retry = str(max(1, math.ceil(_window_seconds(exc))))
        if wants_json():
            body = {"error": "TooManyRequests", "message": message, "status": 429, "limit": str(exc.limit.limit)}
            resp = jsonify(body)
        else:
            resp = app.make_response((render_template("error.html", error={"status": 429, "message": message}), 429))
        resp.status_code = 429
        resp.headers["Retry-After"] = retry
        resp.headers["Cache-Control"] = "no-store"
        return resp


def _window_seconds(exc: RateLimitExceeded) -> float:
    try:
        return exc.limit.limit.get_expiry()
    except Exception:  # noqa: BLE001 - a header hint is never worth a 500
        return 60.0


__all__ = ["client_address", "init_limits", "limiter", "login_limit", "submission_limit"]
