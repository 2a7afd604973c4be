"""`atvira contributions list|purge`: the pending suggestions and the contact-email purge.

Thin shells over `directory.contributions`; approving and rejecting happen on /moderate, where
an editor's role is known (the change log names it).
"""

from __future__ import annotations

import json

import click

from .. import contributions as core
from ..accounts import User
from ..config import Settings
from ..private_store import connect_private
from ..store import connect
from .base import pass_settings

# The CLI is run by whoever runs the server: it sees every municipality, as an admin does.
_OPERATOR = User(id=0, login="cli", role="admin", municipalities=())


@click.group("contributions")
def contributions() -> None:
    """Public suggestions waiting for an editor (see /moderate), and the contact-email purge."""


@contributions.command("list")
@click.option("--municipality", help="only this municipality code")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@pass_settings
def list_cmd(cfg: Settings, municipality: str | None, limit: int, as_json: bool) -> None:
    """The pending suggestions, newest first, current beside proposed (never an email)."""
    user = _OPERATOR if not municipality else User(id=0, login="cli", role="editor", municipalities=(municipality,))
    private = connect_private(cfg)
    public = connect(cfg.db, readonly=True)
    try:
        page = core.list_pending(private, public=public, user=user, limit=limit)
    finally:
        public.close()
        private.close()
    for item in page["items"]:
        if as_json:
            click.echo(json.dumps(item, ensure_ascii=False))
            continue
        what = item["kind"] + (f":{item['problem']}" if item["problem"] else "")
        click.echo(f"{item['id']:>6}  {item['created_at']}  {item['municipality_code'] or '-':>4}  {what:<26}"
                   f" {item['facility_name'] or item['facility_id'] or ''}")
        for key, value in item["proposed"].items():
            now = item["current"].get(key) if item["current"] else None
            click.echo(f"          {key}: {now!r} -> {value!r}")
    if not page["items"]:
        click.echo("nothing is waiting")


@contributions.command("purge")
@pass_settings
def purge_cmd(cfg: Settings) -> None:
    """Delete contact emails older than ATVIRA_CONTACT_RETENTION_DAYS (also done on every decision)."""
    private = connect_private(cfg)
    try:
        n = core.purge_contacts(private, days=cfg.contact_retention_days)
    finally:
        private.close()
    click.echo(f"{n} contact email(s) older than {cfg.contact_retention_days} days deleted")
