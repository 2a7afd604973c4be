"""The composition root: the Flask app factory and the `atvira` console entry; nothing else.

It is the one place that hands `ingest` functions to the web layer (the municipal upload).

`create_app` wires the web layer (`directory.web`) to the store; `main` builds the command tree
(`directory.commands.build_cli`) and hands it this factory for `atvira serve`, so neither layer
imports the other or this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from directory.commands import build_cli
from directory.config import Settings

if TYPE_CHECKING:
    from flask import Flask

ROOT = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; all configuration comes in through `settings` (default: the environment)."""
    # Imported here, not at the top: `atvira` imports this module for every command, and the web
    # layer (Flask, folium, pandas ...) is ~100 MB a command like `atvira export` never needs.
    from flask import Flask  # the web layer: see above

    from directory.web import init_web  # the web layer: see above
    from ingest.runs import run_municipal_upload  # the web layer's upload runner: see above

    settings = settings or Settings.from_env()
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    init_web(app, settings, upload_runner=run_municipal_upload)
    return app


def main() -> None:
    """Entry point of the `atvira` console script."""
    build_cli(app_factory=create_app)(prog_name="atvira")


if __name__ == "__main__":
    main()
