"""A real nginx proxy_cache in front of a real gunicorn (the README's setup): a second identical
map request is served from the cache, and a new content version (a run) changes what is served."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

from directory.config import Settings
from directory.serving import ROOT, gunicorn_command, gunicorn_environment
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import derive, facility
from tests.servers import TEST_SECRET_KEY

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# The proxy part is the README's (section "A shared cache in front"); the rest makes it run
# unprivileged-style from a temporary directory.
CONFIG = """
user root;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache levels=1:2 keys_zone=atvira:10m max_size=1g inactive=1h use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location /api/ {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
            proxy_cache atvira;
            proxy_cache_key $request_uri;
            proxy_cache_lock on;
            proxy_cache_revalidate on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, log: Path) -> None:
    for _ in range(300):  # bounded: up to ~30 s to boot
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            requests.get(url, timeout=5)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer: {log.read_text(errors='replace')}")


def test_nginx_serves_a_repeated_map_request_from_its_cache_until_a_new_version(db_path, tmp_path):
    assert Path(NGINX).exists(), "nginx missing: apt-get install nginx-light (see .ci/run)"
    conn = connect(db_path)
    apply_records(conn, [facility(str(i), lon=25.27 + i / 1000, lat=54.68) for i in range(5)],
                  source="test", scope="t")
    derive(conn)
    upstream, port = _free_port(), _free_port()
    env = gunicorn_environment(Settings(db=db_path), port=upstream, workers=1)
    env["ATVIRA_SECRET_KEY"] = TEST_SECRET_KEY  # gunicorn.conf.py is production: it refuses to start without one
    glog, nlog = tmp_path / "gunicorn.log", tmp_path / "nginx.log"
    conf = tmp_path / "nginx.conf"
    conf.write_text(CONFIG.format(tmp=tmp_path, port=port, upstream=upstream))
    with open(glog, "wb") as gfh, open(nlog, "wb") as nfh:
        gunicorn = subprocess.Popen(gunicorn_command(), env=env, cwd=ROOT, stdout=gfh, stderr=subprocess.STDOUT)
        nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)], stdout=nfh, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"http://127.0.0.1:{upstream}/api/version", gunicorn, glog)
        _wait(base + "/api/version", nginx, nlog)
        http = requests.Session()
        version = http.get(base + "/api/version", timeout=10).json()["version"]
        box = "/api/facilities?bbox=25.25,54.67,25.30,54.69&limit=500"
        first = http.get(f"{base}{box}&v={version}", timeout=10)
        assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS"
        assert "public" in first.headers["Cache-Control"] and version in first.headers["ETag"]
        second = http.get(f"{base}{box}&v={version}", timeout=10)
        assert second.headers["X-Cache-Status"] == "HIT" and second.content == first.content
        assert second.json()["numberReturned"] == 5
        clusters = f"/api/facilities/clusters?bbox=25.25,54.67,25.30,54.69&zoom=12&v={version}"
        assert http.get(base + clusters, timeout=10).headers["X-Cache-Status"] == "MISS"
        assert http.get(base + clusters, timeout=10).headers["X-Cache-Status"] == "HIT"
        # the version endpoint itself is never cached: a map learns of a run at once
        assert http.get(base + "/api/version", timeout=10).headers.get("X-Cache-Status") in (None, "", "MISS", "BYPASS")

        # a run: a new facility in the box, a new content version
        apply_records(conn, [facility(str(i), lon=25.27 + i / 1000, lat=54.68) for i in range(6)],
                      source="test", scope="t")
        derive(conn)
        newer = http.get(base + "/api/version", timeout=10).json()["version"]
        assert newer != version
        fresh = http.get(f"{base}{box}&v={newer}", timeout=10)
        assert fresh.headers["X-Cache-Status"] == "MISS" and fresh.json()["numberReturned"] == 6
        assert http.get(f"{base}{box}&v={newer}", timeout=10).headers["X-Cache-Status"] == "HIT"
        # a map still holding the old version is sent to the current one (the redirect is not cached)
        stale = http.get(f"{base}{box}&v=0", timeout=10)
        assert stale.history and stale.history[0].status_code == 302
        assert stale.url.endswith(f"v={newer}") and stale.json()["numberReturned"] == 6
        # an unpinned request is still answered by the app with the store's validator (no shared caching)
        plain = http.get(base + box, timeout=10)
        assert plain.headers["X-Cache-Status"] != "HIT" and "no-cache" in plain.headers["Cache-Control"]
    finally:
        conn.close()
        for proc in (nginx, gunicorn):
            proc.terminate()
        for proc in (nginx, gunicorn):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
