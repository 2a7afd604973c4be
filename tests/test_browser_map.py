"""The first map page in real Chromium: it asks the API for what is in view and draws markers."""

from __future__ import annotations

import pytest

from directory.store import connect
from directory.sync import apply_records
from tests.conftest import derive, facility

pytestmark = pytest.mark.browser


def test_map_loads_markers_for_the_view_and_escapes_names(settings, live_server, page):
    conn = connect(settings.db)
    apply_records(
        conn,
        [facility(str(i), lon=25.27 + i / 1000, lat=54.68) for i in range(5)]
        + [facility("evil", name="<img src=x onerror=alert(1)>", lon=25.28, lat=54.681)],
        source="test",
        scope="s",
    )
    derive(conn)
    conn.close()
    base = live_server()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/")
    # Locator waits, not wait_for_function: the page's CSP rightly forbids eval.
    page.locator("#results li").nth(5).wait_for()
    assert page.locator(".leaflet-interactive").count() == 6
    assert page.get_by_text("<img src=x onerror=alert(1)>").count() == 1  # shown as text
    assert dialogs == [] and errors == []
