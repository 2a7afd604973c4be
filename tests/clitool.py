"""The `atvira` command tree for tests: built fresh, as `app.main` builds it."""

from __future__ import annotations

import click

from app import create_app
from directory.commands import build_cli


def make_cli() -> click.Group:
    return build_cli(app_factory=create_app)
