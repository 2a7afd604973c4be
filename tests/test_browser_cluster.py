"""The social-cluster pages in real Chromium, on the real-data store (areas, the Vilnius
register, the country OSM sample): phone and desktop, Lithuanian and English, axe-core 0
serious or critical, the choropleth's 60 shapes, the actors drawn from the API by sector."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.cluster_data import UTENA

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def _serious(results) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def _watch(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360", "1280"])
@pytest.mark.parametrize("lang", ["lt", "en"])
@pytest.mark.parametrize("path", ["/cluster", f"/cluster/{UTENA}"], ids=["national", "utena"])
def test_cluster_pages_render_and_pass_axe(cluster_db, live_server, make_page, path, lang, viewport):
    from axe_playwright_python.sync_playwright import Axe

    base = live_server(db=cluster_db)
    page = make_page(viewport=viewport)
    errors = _watch(page)
    page.goto(f"{base}{path}?lang={lang}")
    if path == "/cluster":
        expect(page.locator("path.audit-area")).to_have_count(60)
        expect(page.locator("ul.pilots li")).to_have_count(4)
        assert page.locator("#municipalities tbody tr").first.get_attribute("data-code") == "36"  # Biržai
    else:
        expect(page.locator("#kind-sector tbody tr")).to_have_count(13)
        # Every live positioned facility of Utena is drawn, fetched from /api/facilities.
        expect(page.locator("path.actor")).to_have_count(24)
    heading = page.locator("h1")
    expect(heading).to_contain_text("Who provides what" if lang == "en" and path == "/cluster" else
                                    ("who provides what" if lang == "en" else ("Kas ką teikia" if path == "/cluster"
                                                                               else "kas ką teikia")))
    # Phone first: nothing wider than the screen (tables scroll inside their own box).
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], width
    results = Axe().run(page)
    assert _serious(results) == []
    assert errors == []
