"""`atvira init`, `serve` and `status`: the store itself and the server in front of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..config import Settings, check_production
from ..health import source_states
from ..private_store import connect_private
from ..serving import exec_gunicorn
from ..store import connect, counts
from .base import pass_settings

if TYPE_CHECKING:  # the app's type only: commands never import the web layer
    from flask import Flask


@click.command()
@pass_settings
def init(cfg: Settings) -> None:
    """Create the store (or bring its schema up to date)."""
    conn = connect(cfg.db)
    click.echo(f"store ready at {cfg.db}: {json.dumps(counts(conn))}")


def make_serve(app_factory: Callable[[Settings], Flask]) -> click.Command:
    """The `serve` command for an app factory (passed in, so commands never import the app)."""

    @click.command()
    @click.option("--host", default=None, help="Address to listen on (default: $ATVIRA_HOST or 127.0.0.1).")
    @click.option("--port", type=int, default=None, help="Port (default: $ATVIRA_PORT or 5000).")
    @click.option("--debug", is_flag=True, help="Flask's reloader and debugger (development only).")
    @click.option("--production", is_flag=True, help="gunicorn with gunicorn.conf.py (workers, threads, timeouts).")
    @click.option("--workers", type=int, default=None,
                  help="--production: processes (default: $ATVIRA_WORKERS or 2 x CPUs).")
    @pass_settings
    def serve(cfg: Settings, host: str | None, port: int | None, debug: bool, production: bool,
              workers: int | None) -> None:
        """Serve the map, the API and the downloads (development server, or --production: gunicorn)."""
        if production:
            check_production(cfg.with_(production=True))  # refuse before touching anything
        connect(cfg.db).close()  # create/migrate once, so the read-only handles find a current schema
        connect_private(cfg).close()  # likewise the private store (users, sessions): no worker races to create it
        if production:
            exec_gunicorn(cfg, host=host, port=port, workers=workers)
            return
        app = app_factory(cfg)
        app.run(host=host or cfg.host, port=port or cfg.port, debug=debug, threaded=True)

    return serve


@click.command()
@pass_settings
def status(cfg: Settings) -> None:
    """Counts of facilities, source records, changes and areas, and the last ingest runs."""
    conn = connect(cfg.db, readonly=True)
    click.echo(json.dumps(counts(conn)))
    for state in source_states(conn):
        click.echo(state.describe())
    for r in conn.execute("SELECT * FROM ingest_runs ORDER BY id DESC LIMIT 10"):
        click.echo(f"run {r['id']}: {r['source']} [{r['scope']}] {r['status']} {r['started_at']} {r['counts']}"
                   + (f" {r['message']}" if r["message"] else ""))
