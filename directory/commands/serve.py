"""`atvira init`, `serve` and `status`: the store itself and the server in front of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from .. import derived
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
        if production:  # gunicorn.conf.py's on_starting repairs derived data once, in the master
            exec_gunicorn(cfg, host=host, port=port, workers=workers)
            return
        _echo_repair(cfg)
        app = app_factory(cfg)
        app.run(host=host or cfg.host, port=port or cfg.port, debug=debug, threaded=True)

    return serve


def _echo_repair(cfg: Settings) -> None:
    report, fixed = derived.repair(cfg)
    for line in fixed:
        click.echo(line)
    if report is not None:
        click.echo(report.describe())


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (counts, sources, runs) instead of text.")
@click.option("--repair", is_flag=True, help="Bring stale derived data (map grid, audit, snapshot) up to date.")
@pass_settings
def status(cfg: Settings, as_json: bool, repair: bool) -> None:
    """Counts of facilities, source records, changes and areas, the last ingest runs, and whether
    the derived data (map grid, audit, snapshot) is current."""
    if repair:
        _echo_repair(cfg)
    conn = connect(cfg.db, readonly=True)
    totals = counts(conn)
    states = source_states(conn)
    runs = [dict(r) for r in conn.execute("SELECT * FROM ingest_runs ORDER BY id DESC LIMIT 10")]
    if as_json:
        for r in runs:  # stored as JSON text: nest it, so the document is one structure
            r["counts"] = json.loads(r["counts"]) if r.get("counts") else None
        click.echo(json.dumps({"counts": totals, "sources": [{**asdict(s), "stale": s.stale} for s in states], "runs": runs},
                              ensure_ascii=False, indent=1))
        return
    click.echo(f"store {cfg.db}")
    click.echo("  " + ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in totals.items()))
    for state in states:
        click.echo(state.describe())
    stale = derived.stale_parts(conn)
    if stale:  # a kill between a run's commit and its refresh: the data is served, its derivations lag
        click.echo(f"derived data: STALE ({', '.join(stale)}); run `atvira status --repair` (the server's start also repairs it)")
    else:
        click.echo("derived data: current")
    for r in runs:
        done = json.loads(r["counts"]) if r.get("counts") else {}
        summary = ", ".join(f"{n} {k}" for k, n in done.items()) if isinstance(done, dict) else str(done)
        click.echo(f"run {r['id']}: {r['source']} [{r['scope']}] {r['status']} {r['started_at']}"
                   + (f" ({summary})" if summary else "") + (f" {r['message']}" if r["message"] else ""))
