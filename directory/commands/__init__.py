"""The `atvira` command: click groups, each a thin shell over a core function.

`build_cli` makes a fresh group every call, so a test (or a second embedding) never mutates a
module-level command tree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import Settings
from .base import AtviraGroup

if TYPE_CHECKING:  # the app's type only: commands never import the web layer
    from flask import Flask

# Every command: its name -> (module in this package, attribute). A command's module is imported
# only when that command runs (or `atvira --help` lists them all): the modules between them load
# pandas, shapely, folium and the web app, ~150 MB, and `atvira export` must stay under 150 MB
# peak at 1M facilities (issue 13) while it needs none of them. `serve`'s attribute is a factory
# given the app factory.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("serve", "init"),
    "serve": ("serve", "make_serve"),
    "status": ("serve", "status"),
    "ingest": ("ingest", "ingest"),
    "areas": ("ingest", "areas"),
    "sources": ("ingest", "sources"),
    "audit": ("audit", "audit"),
    "setup": ("setup", "setup"),
    "map": ("map", "map_group"),
    "export": ("opendata", "export"),
    "snapshots": ("opendata", "snapshots_cli"),
    "users": ("users", "users"),
    "contributions": ("contributions", "contributions"),
}


class LazyGroup(AtviraGroup):
    """The root group: loads a command's module the first time the command is asked for."""

    def __init__(self, *args, app_factory: Callable[[Settings], Flask], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.app_factory = app_factory

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module_name, attribute = COMMANDS[cmd_name]
            module = importlib.import_module(f"{__name__}.{module_name}")
            command = getattr(module, attribute)
            self.add_command(command(self.app_factory) if cmd_name == "serve" else command, cmd_name)
        return super().get_command(ctx, cmd_name)


def build_cli(*, app_factory: Callable[[Settings], Flask]) -> click.Group:
    """The whole `atvira` command tree; `app_factory` builds the web app for `atvira serve`."""

    @click.group(cls=LazyGroup, app_factory=app_factory)
    @click.option("--db", type=click.Path(path_type=Path), envvar="ATVIRA_DB", default=None,
                  help="Store file (default: $ATVIRA_DB or data/atvira.db).")
    @click.pass_context
    def cli(ctx: click.Context, db: Path | None) -> None:
        """Atvira: an open-data directory and map of public-friendly facilities."""
        ctx.obj = Settings.from_env(db=db)

    return cli
