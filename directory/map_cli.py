"""`atvira map rebuild`: recompute what the map derives from the facilities (the cluster grid and
the sources it credits). Ingests do this themselves; the command is for a store that was filled
before the grid existed (the migration creates the table empty) or by other means."""

from __future__ import annotations

import time

import click

from .clusters import refresh_map_data
from .store import connect, transaction


@click.group("map")
def map_group() -> None:
    """The map's derived data."""


@map_group.command("rebuild")
@click.pass_context
def map_rebuild(ctx: click.Context) -> None:
    """Rebuild the low-zoom cluster grid and the list of sources to credit, in one transaction."""
    from .cli import settings_of

    cfg = settings_of(ctx)
    conn = connect(cfg.db)
    started = time.perf_counter()
    with transaction(conn):
        rows = refresh_map_data(conn)
    click.echo(f"map grid: {rows:,} cells in {time.perf_counter() - started:.1f}s")
