"""The web layer: blueprints, HTTP hooks and page glue (the only package that imports Flask).

`init_web` registers everything on an app built by `app.create_app`.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request

from ..config import Settings
from ..db import ReaderPool
from ..errors import AtviraError
from . import api, audit, cluster, opendata, pages
from .auth import init_auth
from .context import wants_json
from .httpcache import init_http_cache
from .i18n import init_i18n
from .limits import init_limits
from .security import init_security


def init_web(app: Flask, settings: Settings) -> None:
    """Settings, the per-thread read-only store handles, i18n, security and cache headers, the
    blueprints, and one error handler for the whole AtviraError hierarchy."""
    app.config["ATVIRA"] = settings
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["atvira_readers"] = ReaderPool(settings.db)
    init_i18n(app)
    init_security(app, settings)
    init_http_cache(app)
    # A view's limit is checked when the view runs, after the CSRF check: a forged post is
    # refused (cheaply, no password hashed) without using up the sender's budget.
    init_limits(app, settings)
    init_auth(app, settings)

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(opendata.bp)
    app.register_blueprint(cluster.bp)

    @app.errorhandler(AtviraError)
    def handle_atvira_error(exc: AtviraError):
        if wants_json():
            return jsonify(exc.to_json()), exc.status
        return render_template("error.html", error=exc), exc.status

    @app.errorhandler(404)
    def handle_404(exc):
        if request.path.startswith("/api"):
            return jsonify({"error": "NotFound", "message": f"no such endpoint: {request.path}", "status": 404}), 404
        return exc
