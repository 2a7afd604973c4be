"""A real nginx proxy_cache in front of a real gunicorn (the README's setup): a second identical
map request is served from the cache, and a new content version (a run) changes what is served."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from directory.config import Settings
from directory.serving import ROOT
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import derive, facility
from tests.servers import NGINX_API_LOCATION, NGINX_CACHE_PATH, gunicorn_server, nginx_server


def test_the_readme_documents_the_cache_directives_the_test_and_the_benchmark_use():
    readme = (ROOT / "README.md").read_text()
    for line in (NGINX_CACHE_PATH.format(cache="/var/cache/nginx/atvira"), *NGINX_API_LOCATION):
        assert line in readme, f"README's nginx proxy_cache section lacks {line!r} (tests/servers.py uses it)"


def test_nginx_serves_a_repeated_map_request_from_its_cache_until_a_new_version(db_path, tmp_path):
    conn = connect(db_path)
    apply_records(conn, [facility(str(i), lon=25.27 + i / 1000, lat=54.68) for i in range(5)],
                  source="test", scope="t")
    derive(conn)
    try:
        with gunicorn_server(Settings(db=db_path), tmp_path / "gunicorn", workers=1, access_log=False) as upstream, \
                nginx_server(tmp_path / "nginx", upstream=urlsplit(upstream).port) as nginx:
            _check_cache(nginx.base, conn)
    finally:
        conn.close()


def _check_cache(base: str, conn) -> None:
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
