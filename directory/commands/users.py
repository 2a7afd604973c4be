"""`atvira users add|list|disable|reset`: editor and admin accounts (there is no open sign-up).

Passwords come from a prompt (asked twice) or, for scripts, one line on standard input with
`--password-stdin`; never as an argument, where `ps` and the shell history would keep them.
"""

from __future__ import annotations

import json
import sys

import click

from .. import accounts, clock
from ..areas_store import find_area
from ..config import Settings
from ..errors import BadRequest
from ..private_store import connect_private
from ..store import connect
from .base import pass_settings


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise BadRequest("no password on standard input", where="--password-stdin")
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _municipality_codes(cfg: Settings, given: tuple[str, ...]) -> list[str]:
    """Codes for what was given (a code or a name such as 'Vilniaus m. sav.'), checked against the
    store's areas when it has them."""
    if not given:
        return []
    if not cfg.db.exists():
        raise BadRequest(f"no store at {cfg.db} to look the municipalities up in; load the areas first"
                         " (atvira areas load)", where="--municipality")
    conn = connect(cfg.db, readonly=True)
    try:
        codes = []
        for item in given:
            area = find_area(conn, item)
            if area is None or area["level"] != "municipality":
                raise BadRequest(f"no municipality {item!r} in the store's areas", where="--municipality")
            codes.append(area["code"])
        return codes
    finally:
        conn.close()


@click.group("users")
def users() -> None:
    """Editor and admin accounts (kept in the private store, never published)."""


@users.command("add")
@click.argument("login")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True, help="editor (their municipalities) or admin (all).")
@click.option("--municipality", "municipalities", multiple=True, metavar="CODE_OR_NAME",
              help="A municipality an editor may edit (repeatable), e.g. 13 or 'Vilniaus m. sav.'.")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of standard input.")
@pass_settings
def add(cfg: Settings, login: str, role: str, municipalities: tuple[str, ...], password_stdin: bool) -> None:
    """Create an account."""
    codes = _municipality_codes(cfg, municipalities)
    password = _read_password(password_stdin)
    user = accounts.add_user(connect_private(cfg), login=login, password=password, role=role, municipalities=codes)
    click.echo(f"added {user.login} ({user.role}{': ' + ', '.join(user.municipalities) if user.municipalities else ''})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per account.")
@pass_settings
def list_cmd(cfg: Settings, as_json: bool) -> None:
    """Every account: role, municipalities, disabled, lockout (never a password or its hash)."""
    for u in accounts.list_users(connect_private(cfg)):
        if as_json:
            click.echo(json.dumps(u, ensure_ascii=False))
            continue
        locked = u["locked_until"] and u["locked_until"] > clock.stamp()  # same ISO form: compares as text
        state = "disabled" if u["disabled"] else (f"locked until {u['locked_until']}" if locked else "active")
        click.echo(f"{u['login']}\t{u['role']}\t{','.join(u['municipalities']) or '-'}\t{state}")


@users.command("disable")
@click.argument("login")
@pass_settings
def disable(cfg: Settings, login: str) -> None:
    """Disable an account and end its sessions."""
    accounts.disable_user(connect_private(cfg), login)
    click.echo(f"disabled {login}; its sessions are ended")


@users.command("reset")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the new password from one line of standard input.")
@pass_settings
def reset(cfg: Settings, login: str, password_stdin: bool) -> None:
    """Set a new password; clears a lockout and ends the account's sessions."""
    conn = connect_private(cfg)
    accounts.get_user(conn, login)  # a clear error before asking for a password
    accounts.reset_password(conn, login, password=_read_password(password_stdin))
    click.echo(f"new password set for {login}; lockout cleared, sessions ended")
