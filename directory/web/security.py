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


def security_headers(settings: Settings, nonce: str, *, tiles: str | None = None) -> list[tuple[str, str]]:
    """The headers every answer carries, in order (the hook below; web.fastpath sends the same)."""
    tiles = tile_origin(settings) if tiles is None else tiles
    policy = (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: {tiles}".rstrip() + "; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
    )
    out = [
        ("Content-Security-Policy", policy),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        # The map's "near me" asks for the location itself; nothing else is ever needed.
        ("Permissions-Policy", PERMISSIONS_POLICY),
    ]
    if settings.production:  # never on a development server, which may be plain http on a LAN
        out.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return out


def init_security(app: Flask, settings: Settings) -> None:
    tiles = tile_origin(settings)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def headers(resp):
        for name, value in security_headers(settings, csp_nonce(), tiles=tiles):
            resp.headers.setdefault(name, value)
        return resp
