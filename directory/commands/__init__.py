"""The `atvira` command: click groups, each a thin shell over a core function.

`build_cli` makes a fresh group every call, so a test (or a second embedding) never mutates a
module-level command tree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import Settings
from . import audit, ingest, map, opendata, serve, setup, users  # modules, not their commands: no name shadows a module
from .base import AtviraGroup

if TYPE_CHECKING:  # the app's type only: commands never import the web layer
    from flask import Flask


def build_cli(*, app_factory: Callable[[Settings], Flask]) -> click.Group:
    """The whole `atvira` command tree; `app_factory` builds the web app for `atvira serve`."""

    @click.group(cls=AtviraGroup)
    @click.option("--db", type=click.Path(path_type=Path), envvar="ATVIRA_DB", default=None,
                  help="Store file (default: $ATVIRA_DB or data/atvira.db).")
    @click.pass_context
    def cli(ctx: click.Context, db: Path | None) -> None:
        """Atvira: an open-data directory and map of public-friendly facilities."""
        ctx.obj = Settings.from_env(db=db)

    for command in (serve.init, serve.make_serve(app_factory), serve.status, ingest.ingest, ingest.areas,
                    ingest.sources, audit.audit, setup.setup, map.map_group, opendata.export, opendata.snapshots_cli,
                    users.users):
        cli.add_command(command)
    return cli
