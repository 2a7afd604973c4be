"""The web layer: blueprints, HTTP hooks and page glue (the only package that imports Flask).

`init_web` registers everything on an app built by `app.create_app`.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import get_locale, gettext

from ..config import Settings
from ..db import ReaderPool
from ..errors import AtviraError, NotFound
from . import api, audit, cluster, open311, opendata, pages
from .auth import csrf, init_auth
from .context import wants_json
from .contribute import UploadRunner, init_contribute
from .costs import init_costs
from .errorpages import error_texts
from .fastpath import FastPages
from .httpcache import init_http_cache
from .i18n import init_i18n
from .limits import init_limits
from .security import init_security


def init_web(app: Flask, settings: Settings, *, upload_runner: UploadRunner | None = None) -> None:
    """Settings, the per-thread read-only store handles, i18n, security and cache headers, the
    blueprints, and one error handler for the whole AtviraError hierarchy.

    `upload_runner` runs an editor's municipal upload (app.py passes
    `ingest.runs.run_municipal_upload`: directory never imports ingest)."""
    app.config["ATVIRA"] = settings
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["atvira_readers"] = ReaderPool(settings.db)
    # Any other Host header is a 400 before a view runs, so no absolute URL is built from it.
    app.config["TRUSTED_HOSTS"] = settings.host_allowlist()
    init_i18n(app)
    init_security(app, settings)
    init_http_cache(app)
    init_costs(app, settings.expensive_concurrency)
    # A view's limit is checked when the view runs, after the CSRF check: a forged post is
    # refused (cheaply, no password hashed) without using up the sender's budget.
    init_limits(app, settings)
    init_auth(app, settings)

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(opendata.bp)
    init_contribute(app, upload_runner=upload_runner)
    app.register_blueprint(open311.bp)
    # Open311 clients are machines without a browser session: no CSRF token to carry. The POST
    # is rate-limited like the forms and validated by the same core.
    csrf.exempt(open311.bp)
    app.register_blueprint(cluster.bp)

    # Last, once every hook and view is registered: the map's bbox pages are answered before
    # Flask's request machinery (web.fastpath: the same bytes and headers, a third of the CPU).
    app.wsgi_app = FastPages(app)  # type: ignore[method-assign]

    @app.errorhandler(AtviraError)
    def handle_atvira_error(exc: AtviraError):
        if wants_json():
            return jsonify(exc.to_json()), exc.status
        return error_page(exc)

    @app.errorhandler(404)
    def handle_404(exc):
        if request.path.startswith("/api"):
            return jsonify({"error": "NotFound", "message": f"no such endpoint: {request.path}", "status": 404}), 404
        return error_page(NotFound(gettext("There is no page at this address."), where=None), localized=True)


def error_page(exc: AtviraError, *, localized: bool = False):
    """The error as a page in the reader's language: a translated heading and explanation, then the
    message. A message with a catalogue entry is shown translated; one built from values (most
    parameter errors) stays as written, labelled as English on a page in another language."""
    heading, explanation = error_texts(exc.status)
    message = exc.message
    translated = gettext(message)
    english = not localized and translated == message and str(get_locale() or "lt") != "en"
    return render_template("error.html", error=exc, heading=heading, explanation=explanation,
                           message=translated, english=english), exc.status
