"""The composition root: the Flask app factory and the `atvira` console entry; nothing else.

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

ROOT = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; all configuration comes in through `settings` (default: the environment)."""
    settings = settings or Settings.from_env()
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    init_web(app, settings)
    return app


def main() -> None:
    """Entry point of the `atvira` console script."""
    build_cli(app_factory=create_app)(prog_name="atvira")


if __name__ == "__main__":
    main()
