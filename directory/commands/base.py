"""What every `atvira` command shares: one error handler and the settings decorator."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..config import Settings
from ..errors import AtviraError

F = TypeVar("F", bound=Callable[..., Any])


class AtviraGroup(click.Group):
    """Turns our errors into one clear line and exit code 2, instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AtviraError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


def settings_of(ctx: click.Context) -> Settings:
    """The Settings the root group built from the environment and `--db`."""
    return ctx.find_root().obj


def pass_settings(command: F) -> F:
    """Give a command the Settings as its first argument (built once, by the root group)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(settings_of(click.get_current_context()), *args, **kwargs)

    return wrapper  # type: ignore[return-value]
