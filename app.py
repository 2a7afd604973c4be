"""The composition root: the Flask app factory and the `atvira` command.

`directory` must never import `ingest`, so the one place that wires both together (the CLI's
ingest commands beside the serving ones) lives here, next to the web app factory.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, jsonify, render_template, request

from directory.config import Settings
from directory.db import ReaderPool
from directory.errors import AtviraError
from directory.i18n import init_i18n
from directory.security import init_security

ROOT = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; all configuration comes in through `settings` (default: the environment)."""
    settings = settings or Settings.from_env()
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config["ATVIRA"] = settings
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["atvira_readers"] = ReaderPool(settings.db)
    init_i18n(app)
    init_security(app, settings)

    from directory import api, audit_web, opendata, pages

    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(audit_web.bp)
    app.register_blueprint(opendata.bp)

    @app.errorhandler(AtviraError)
    def handle_atvira_error(exc: AtviraError):  # one handler for the whole hierarchy
        if request.path.startswith(("/api", "/downloads")) or request.accept_mimetypes.best == "application/json":
            return jsonify(exc.to_json()), exc.status
        return render_template("error.html", error=exc), exc.status

    @app.errorhandler(404)
    def handle_404(exc):
        if request.path.startswith("/api"):
            return jsonify({"error": "NotFound", "message": f"no such endpoint: {request.path}", "status": 404}), 404
        return exc

    return app


def main() -> None:
    """Entry point of the `atvira` console script."""
    from directory.audit_cli import audit
    from directory.cli import cli
    from directory.map_cli import map_group
    from directory.opendata_cli import export, snapshots_cli
    from ingest.cli import areas, ingest, sources

    cli.add_command(ingest)
    cli.add_command(areas)
    cli.add_command(sources)
    cli.add_command(audit)
    cli.add_command(map_group)
    cli.add_command(export)
    cli.add_command(snapshots_cli)
    cli(prog_name="atvira")


if __name__ == "__main__":
    main()
