"""The composition root: the Flask app factory and the `atvira` console entry; nothing else.

It is the one place that hands `ingest` functions to the web layer (the municipal upload).

`create_app` wires the web layer (`directory.web`) to the store; `main` builds the command tree
(`directory.commands.build_cli`) and hands it this factory for `atvira serve`, so neither layer
imports the other or this module.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from directory.commands import build_cli
from directory.config import Settings
from directory.web import init_web
from ingest.runs import run_municipal_upload

ROOT = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; all configuration comes in through `settings` (default: the environment)."""
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
