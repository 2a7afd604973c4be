"""Real servers for tests: a throwaway `redis-server`, gunicorn with several workers, and nginx
with the README's `proxy_cache` in front of it (bench.load measures the same setup).

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
from dataclasses import dataclass
from pathlib import Path

import requests

from directory.config import Settings
from directory.serving import ROOT, gunicorn_command, gunicorn_environment

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
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


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a server we started; kill it if it has not gone in 30 s."""
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
        stop_process(proc)


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
        stop_process(proc)


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


# The README's "A shared cache in front" directives, word for word (tests/test_nginx_cache.py
# checks the README still holds each line): what the map's pinned requests go through.
NGINX_CACHE_PATH = ("proxy_cache_path {cache} levels=1:2 keys_zone=atvira:10m max_size=1g inactive=1h"
                    " use_temp_path=off;")
NGINX_API_LOCATION = (
    "proxy_pass http://atvira;",
    "proxy_http_version 1.1;",
    'proxy_set_header Connection "";',
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_cache atvira;",
    "proxy_cache_key $scheme$host$request_uri;",
    "proxy_cache_lock on;",
    "proxy_cache_revalidate on;",
    "add_header X-Cache-Status $upstream_cache_status always;",
)
# The rest runs nginx from a temporary directory on a loopback port. `Host` is $http_host, not
# the README's $host: on a loopback port the port must reach the app (its `next` links).
NGINX_CONFIG = """
user root;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    {cache_path}
    upstream atvira {{ server 127.0.0.1:{upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location /api/ {{
            proxy_set_header Host $http_host;
            {api}
        }}
        location / {{
            proxy_pass http://atvira;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Nginx:
    base: str  # http://127.0.0.1:PORT
    pid: int   # the master, in a session of its own with its worker


@contextmanager
def nginx_server(tmp: Path, *, upstream: int, prefix: tuple[str, ...] = ()) -> Iterator[Nginx]:
    """nginx with the README's proxy_cache in front of 127.0.0.1:`upstream` (a running gunicorn),
    on a free loopback port, its files and cache in `tmp`; `prefix` runs it under e.g. taskset."""
    assert Path(NGINX).exists(), f"{NGINX} missing: apt-get install nginx-light (.ci/run does)"
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONFIG.format(tmp=tmp, port=port, upstream=upstream,
                                        cache_path=NGINX_CACHE_PATH.format(cache=tmp / "cache"),
                                        api="\n            ".join(NGINX_API_LOCATION)))
    log = tmp / "nginx.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([*prefix, NGINX, "-p", str(tmp), "-c", str(conf)], stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        # any answer will do (the upstream may still be booting): nginx itself is listening
        _wait_for(lambda: requests.get(f"{base}/api/version", timeout=5) is not None, proc=proc, log=log,
                  what="nginx")
        yield Nginx(base=base, pid=proc.pid)
    finally:
        stop_process(proc)
