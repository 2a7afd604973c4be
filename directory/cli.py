"""The `atvira` command's serving side. Each command is a thin shell over a core function;
app.main adds the ingest commands (which live in `ingest/`, as directory never imports it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .config import Settings
from .errors import AtviraError
from .health import source_states
from .store import connect, counts


class AtviraGroup(click.Group):
    """Turns our errors into one clear line and exit code 2, instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AtviraError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=AtviraGroup)
@click.option("--db", type=click.Path(path_type=Path), envvar="ATVIRA_DB", default=None,
              help="Store file (default: $ATVIRA_DB or data/atvira.db).")
@click.pass_context
def cli(ctx: click.Context, db: Path | None) -> None:
    """Atvira: an open-data directory and map of public-friendly facilities."""
    ctx.obj = Settings.from_env(db=db)


def settings_of(ctx: click.Context) -> Settings:
    return ctx.find_root().obj


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the store (or bring its schema up to date)."""
    cfg = settings_of(ctx)
    conn = connect(cfg.db)
    click.echo(f"store ready at {cfg.db}: {json.dumps(counts(conn))}")


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: $ATVIRA_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: $ATVIRA_PORT or 5000).")
@click.option("--debug", is_flag=True, help="Flask's reloader and debugger (development only).")
@click.option("--production", is_flag=True, help="gunicorn with gunicorn.conf.py (workers, threads, timeouts).")
@click.option("--workers", type=int, default=None, help="--production: processes (default: $ATVIRA_WORKERS or 2 x CPUs).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, debug: bool, production: bool,
          workers: int | None) -> None:
    """Serve the map, the API and the downloads (development server, or --production: gunicorn)."""
    from app import create_app

    cfg = settings_of(ctx)
    connect(cfg.db).close()  # create/migrate once, so the read-only handles find a current schema
    if production:
        from .serving import exec_gunicorn

        exec_gunicorn(cfg, host=host, port=port, workers=workers)
        return
    app = create_app(cfg)
    app.run(host=host or cfg.host, port=port or cfg.port, debug=debug, threaded=True)


@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Counts of facilities, source records, changes and areas, and the last ingest runs."""
    cfg = settings_of(ctx)
    conn = connect(cfg.db, readonly=True)
    click.echo(json.dumps(counts(conn)))
    for state in source_states(conn):
        click.echo(state.describe())
    for r in conn.execute("SELECT * FROM ingest_runs ORDER BY id DESC LIMIT 10"):
        click.echo(f"run {r['id']}: {r['source']} [{r['scope']}] {r['status']} {r['started_at']} {r['counts']}"
                   + (f" {r['message']}" if r["message"] else ""))
