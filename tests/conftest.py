"""Shared fixtures. Real data is read in place from ../shared/data (never copied in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from directory.config import Settings
from directory.model import Facility
from directory.store import connect

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"real test data missing: {SHARED_DATA} (CI lays ../shared beside the clone)"
    return SHARED_DATA


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "atvira.db"


@pytest.fixture
def store(db_path: Path):
    conn = connect(db_path)
    yield conn
    conn.close()


@pytest.fixture
def settings(db_path: Path, tmp_path: Path) -> Settings:
    return Settings(db=db_path, cache_dir=tmp_path / "cache", offline=True, tile_url="")


@pytest.fixture
def make_app(settings: Settings):
    from app import create_app

    def _make(**changes):
        connect(settings.db).close()
        app = create_app(settings.with_(**changes) if changes else settings)
        app.testing = True
        return app

    return _make


@pytest.fixture
def client(make_app):
    return make_app().test_client()


def facility(source_id: str, **fields) -> Facility:
    """A small hand-made record for store and API tests."""
    defaults = dict(
        source="test", source_id=source_id, name=f"Place {source_id}", categories=["playground"],
        lon=25.28, lat=54.68, licence="CC-BY-4.0",
    )
    defaults.update(fields)
    return Facility(**defaults)


# --- real browser (Debian chromium driven by Playwright) -----------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session. Missing Chromium is a failure, not a skip:
    .ci/run installs it, and a browser test that silently skips proves nothing."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page. Wait with locators (`.wait_for()`), not wait_for_function: the app's CSP
    forbids eval, which Playwright's string predicates need."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    # The closed network: anything not on loopback (tiles, CDNs) is refused at once.
    context.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def live_server(make_app):
    """Serve an app on a loopback port in a thread; returns a function app_changes -> base URL."""
    import logging
    import threading

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    servers = []

    def _start(**changes) -> str:
        server = make_server("127.0.0.1", 0, make_app(**changes), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield _start
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=5)


# --- the audit (issue 6) ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def audit_db(tmp_path_factory, shared_data) -> Path:
    """A store with the real areas, the real Vilnius kindergartens and a few hand-made
    institutions, audited once per session. Read-only for tests: copy it before writing."""
    from tests.audit_data import build_audit_store

    return build_audit_store(tmp_path_factory.mktemp("audit") / "audit.db", shared_data)


@pytest.fixture
def make_page(browser):
    """Pages with context options (viewport, geolocation, locale ...), on the same closed
    network as `page`: new_page(geolocation={"longitude": .., "latitude": ..}) also grants
    the geolocation permission; viewport={"width": 360, "height": 740} is a phone."""
    contexts = []

    def _make(**options):
        options.setdefault("viewport", {"width": 1200, "height": 800})
        if "geolocation" in options:
            options.setdefault("permissions", ["geolocation"])
        context = browser.new_context(**options)
        context.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
        contexts.append(context)
        return context.new_page()

    yield _make
    for context in contexts:
        context.close()


def derive(conn) -> None:
    """Refresh the derived data (extent, map grid, audit) after a direct `apply_records`, as every
    run does through `refresh_derived`; no snapshot (tests that want one call it themselves)."""
    from directory.derived import refresh_derived

    path = conn.execute("PRAGMA database_list").fetchone()[2]
    refresh_derived(conn, Settings(db=Path(path)), snapshot=False)


# --- real servers: redis-server and gunicorn (issue 11: limits across workers) ---------------


@pytest.fixture
def redis_url(tmp_path: Path):
    """A throwaway redis-server on a free loopback port (nothing saved); its redis:// URL."""
    from tests.servers import redis_server

    with redis_server(tmp_path / "redis") as url:
        yield url


@pytest.fixture
def gunicorn(tmp_path: Path):
    """Start gunicorn (production mode, test secret key) over some Settings; returns its base URL.
    `gunicorn(settings, workers=4, env={...})`; the access log (pid first) is in tmp_path/gunicorn."""
    from contextlib import ExitStack

    from tests.servers import gunicorn_server

    with ExitStack() as stack:
        def _start(settings: Settings, **options) -> str:
            return stack.enter_context(gunicorn_server(settings, tmp_path / "gunicorn", **options))

        yield _start


# --- the social-cluster view (issue 15) -------------------------------------------------------


@pytest.fixture(scope="session")
def cluster_db(tmp_path_factory, shared_data) -> Path:
    """Areas, the Vilnius register and the country OSM sample through the real runs (the offline
    Lithuanian default's data), derived once per session. Read-only for tests: copy to write."""
    from tests.cluster_data import build_cluster_store

    tmp = tmp_path_factory.mktemp("cluster")
    return build_cluster_store(tmp / "cluster.db", shared_data, tmp)
