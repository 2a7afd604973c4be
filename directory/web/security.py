"""Content-Security-Policy with a per-request nonce for the inline scripts folium writes."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, g

from ..config import Settings

PERMISSIONS_POLICY = (
    "geolocation=(self), camera=(), microphone=(), payment=(), usb=(), interest-cohort=(), "
    "accelerometer=(), gyroscope=(), magnetometer=()"
)
_BARE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*\bnonce=)([^>]*)>", re.IGNORECASE)


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def add_nonces(html: str) -> str:
    """Give every inline <script> (no src) in a folium fragment this request's nonce."""
    nonce = csp_nonce()
    return _BARE_SCRIPT.sub(lambda m: f'<script nonce="{nonce}"{m.group(1)}>', html)


def tile_origin(settings: Settings) -> str:
    if not settings.tile_url:
        return ""
    parts = urlsplit(settings.tile_url.replace("{s}", "a"))
    host = parts.netloc
    if "{s}" in settings.tile_url:
        host = "*." + host.split(".", 1)[1] if "." in host else host
    return f"{parts.scheme}://{host}"


def init_security(app: Flask, settings: Settings) -> None:
    tiles = tile_origin(settings)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def headers(resp):
        policy = (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{csp_nonce()}'; "
            "style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: {tiles}".rstrip() + "; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
        )
        resp.headers.setdefault("Content-Security-Policy", policy)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        # The map's "near me" asks for the location itself; nothing else is ever needed.
        resp.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if settings.production:  # never on a development server, which may be plain http on a LAN
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return resp
