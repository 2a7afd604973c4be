"""Production serving: the gunicorn command line `atvira serve --production` runs.

The configuration lives in gunicorn.conf.py at the project root (documented there and in the
README); this module only turns the CLI's settings into that command and its environment, so
`atvira serve --production` and the documented hand-typed gunicorn command are the same thing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from .config import Settings
from .errors import StoreError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "gunicorn.conf.py"
APP = "app:create_app()"


def gunicorn_command(*, config: Path = CONFIG) -> list[str]:
    """`python -m gunicorn -c gunicorn.conf.py app:create_app()` for this interpreter."""
    if not config.is_file():
        raise StoreError("gunicorn.conf.py is missing: run from a source checkout (pip install -e .)", where=str(config))
    return [sys.executable, "-m", "gunicorn", "-c", str(config), APP]


def gunicorn_environment(settings: Settings, *, host: str | None = None, port: int | None = None,
                         workers: int | None = None, threads: int | None = None,
                         base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the workers read their settings from (create_app() reads ATVIRA_*)."""
    env = dict(os.environ if base is None else base)
    env["ATVIRA_DB"] = str(Path(settings.db).resolve())
    env["ATVIRA_PRIVATE_DB"] = str(settings.private_db_path().resolve())
    env["ATVIRA_HOST"] = host or settings.host
    env["ATVIRA_PORT"] = str(port or settings.port)
    if workers:
        env["ATVIRA_WORKERS"] = str(workers)
    if threads:
        env["ATVIRA_THREADS"] = str(threads)
    # gunicorn imports "app" from the working directory; make sure it is this checkout's.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def exec_gunicorn(settings: Settings, **options: object) -> None:
    """Replace this process with gunicorn, so signals (TERM, HUP to reload) reach it directly."""
    cmd = gunicorn_command()
    os.chdir(ROOT)
    os.execve(cmd[0], cmd, gunicorn_environment(settings, **options))  # type: ignore[arg-type]
