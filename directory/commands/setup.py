"""`atvira setup lithuania [--from DIR]`: the Lithuanian start in one command (a thin shell over
`ingest.runs.setup_lithuania`, which tests and other callers use too)."""

from __future__ import annotations

from pathlib import Path

import click

from ingest import runs

from ..areas_store import list_areas
from ..config import Settings
from ..store import connect
from .base import pass_settings
from .ingest import echo_derived, echo_report

STEPS = {
    "areas": "loading the 60 municipalities, 554 elderships and the country outline",
    "places": "loading the gazetteer (cities, towns, villages, suburbs)",
    "osm": "ingesting the OpenStreetMap facilities",
    "registry": "ingesting the Vilnius kindergarten register",
    "derived": "refreshing the map grid, audit and snapshot",
}


@click.group()
def setup() -> None:
    """Set up a country's store in one step."""


@setup.command("lithuania")
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Read everything from DIR (a copy of ../shared/data: boundaries, the country OSM sample, "
                   "its places and the Vilnius register) instead of fetching it.")
@pass_settings
def setup_lithuania(cfg: Settings, from_dir: Path | None) -> None:
    """Lithuania: areas and outline, the gazetteer, OSM facilities and the Vilnius kindergarten register."""
    conn = connect(cfg.db)
    result = runs.setup_lithuania(conn, settings=cfg, from_dir=from_dir,
                                  step=lambda s: click.echo(f"{STEPS[s]} ...", err=True))
    if result.areas is not None:
        click.echo(f"loaded {result.areas.loaded} areas: {result.areas.municipalities} municipalities,"
                   f" {result.areas.loaded - result.areas.municipalities} elderships,"
                   f" population {result.areas.population:,}")
    click.echo(f"gazetteer: {result.places:,} named places")
    for _name, run in result.runs:
        for note in run.notes:
            click.echo(f"note: {note}", err=True)
        for report in run.reports:
            echo_report(report)
    echo_derived(result.derived, cfg)
    held = sum(1 for a in list_areas(conn, level="municipality") if a["facilities"])
    click.echo(f"{held} of {result.areas.municipalities if result.areas else 0} municipalities hold facilities;"
               f" store {cfg.db} (serve it with `atvira serve`)")
