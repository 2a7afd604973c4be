"""Real servers for tests: a throwaway `redis-server` and gunicorn with several workers.

    def test_x(redis_url, gunicorn_server, settings):       # fixtures from tests/conftest.py
        base = gunicorn_server(settings, workers=4, env={"ATVIRA_RATELIMIT_STORAGE": redis_url})

Both listen on a free loopback port, live in the test's tmp dir, and are stopped after the test.
redis-server is Debian's (`apt-get install redis-server`; .ci/run does): missing, it is a failure,
not a skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from directory.config import Settings
from directory.serving import ROOT, gunicorn_command, gunicorn_environment

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# A fixed test key (never a real one): the workers of one server must share it.
TEST_SECRET_KEY = "test-only-secret-key-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check, *, proc: subprocess.Popen, log: Path, what: str, tries: int = 300) -> None:
    """Poll `check` until it is true (bounded: about 30 s), failing with the server's log."""
    for _ in range(tries):
        assert proc.poll() is None, f"{what} exited early:\n{log.read_text(errors='replace')}"
        try:
            if check():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not come up:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    """A redis-server on a free loopback port, persisting nothing; yields its redis:// URL."""
    assert Path(REDIS_SERVER).exists(), f"{REDIS_SERVER} missing: apt-get install redis-server (.ci/run does)"
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = tmp / "redis.log"
    cmd = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--dir", str(tmp), "--daemonize", "no", "--protected-mode", "yes", "--logfile", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    log.touch()

    def ping() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    try:
        _wait_for(ping, proc=proc, log=log, what="redis-server")
        yield f"redis://127.0.0.1:{port}"
    finally:
        _stop(proc)


@contextmanager
def gunicorn_server(settings: Settings, tmp: Path, *, workers: int = 4, threads: int = 2,
                    env: dict[str, str] | None = None, access_log: bool = True) -> Iterator[str]:
    """`atvira serve --production`'s gunicorn over `settings`, in production mode with a test
    secret key; yields the base URL. With `access_log`, each line of tmp/access.log starts with
    the worker's pid: `worker_pids(tmp)` says which workers served what."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    full_env = gunicorn_environment(settings, port=port, workers=workers, threads=threads)
    full_env.setdefault("ATVIRA_SECRET_KEY", TEST_SECRET_KEY)
    if access_log:
        full_env["ATVIRA_ACCESS_LOG"] = str(tmp / "access.log")
        full_env["GUNICORN_CMD_ARGS"] = "--access-logformat '%(p)s %(m)s %(U)s %(s)s'"
    full_env.update(env or {})
    log = tmp / "gunicorn.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(gunicorn_command(), env=full_env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: requests.get(f"{base}/api/areas", timeout=5).status_code < 500, proc=proc, log=log,
                  what="gunicorn")
        yield base
    finally:
        _stop(proc)


def access_lines(tmp: Path) -> list[tuple[str, ...]]:
    """(pid, method, path, status) of every request in the access log gunicorn_server wrote."""
    path = tmp / "access.log"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4:
            rows.append((parts[0].strip("<>"), parts[1], parts[2], parts[3]))
    return rows
