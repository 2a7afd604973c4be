"""`atvira map rebuild`: recompute what the map derives from the facilities (the cluster grid and
the sources it credits). Every run does this itself through `refresh_derived`; the command
forces a full rebuild (e.g. for a store filled by other means)."""

from __future__ import annotations

import click

from ..config import Settings
from ..derived import refresh_derived
from ..store import connect
from .base import pass_settings


@click.group("map")
def map_group() -> None:
    """The map's derived data."""


@map_group.command("rebuild")
@pass_settings
def map_rebuild(cfg: Settings) -> None:
    """Rebuild the low-zoom cluster grid and the list of sources to credit, in one transaction."""
    conn = connect(cfg.db)
    report = refresh_derived(conn, cfg, force=("map",), snapshot=False)
    rows = conn.execute("SELECT count(*) FROM map_grid").fetchone()[0]
    click.echo(f"map grid: {rows:,} cells in {report.done.get('map grid', 0.0):.1f}s")
