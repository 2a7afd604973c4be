"""The parents' map in real Chromium: filters on map and list alike, text search without
diacritics, near me with a mocked position, the detail page, languages, escaping, a phone
screen, the keyboard, clusters at low zoom, failing tiles, and axe-core's accessibility rules."""

from __future__ import annotations

import json
import math
import re

import pytest
from playwright.sync_api import expect

from directory.store import connect
from directory.sync import apply_records
from tests.conftest import derive, facility

pytestmark = pytest.mark.browser

EVIL = "<img src=x onerror=alert(1)>"
VIEW = "/?ll=54.68000,25.28000&z=16"
PLACES = {
    "kg": dict(name="Lopšelis-darželis „Žiogelis“", categories=["kindergarten"], lon=25.2810, lat=54.6800,
               opening_hours="Mo-Fr 07:00-19:00", address="Vilniaus g. 1"),
    "baby": dict(name="Motinos ir vaiko kambarys", categories=["baby_room"], lon=25.2800, lat=54.6820,
                 opening_hours="24/7", features={"changing_table": "yes", "feeding_room": "yes"}),
    "pg1": dict(name="Žaidimų aikštelė Saulutė", categories=["playground"], lon=25.2770, lat=54.6790),
    "pg2": dict(name="Žaidimų aikštelė Eglutė", categories=["playground"], lon=25.2850, lat=54.6780, opening_hours="off"),
    "wc": dict(name="Viešasis tualetas", categories=["toilet"], lon=25.2740, lat=54.6815, opening_hours="off"),
    "evil": dict(name=EVIL, categories=["playground"], lon=25.2830, lat=54.6810, opening_hours="Mo-Fr 08:00-18:00"),
}


@pytest.fixture
def seeded(settings):
    conn = connect(settings.db)
    apply_records(conn, [facility(k, fetched_at="2026-01-15T10:00:00Z", last_verified="2026-01-15", **v)
                         for k, v in PLACES.items()], source="test", scope="s")
    derive(conn)
    conn.close()
    return settings


def watch(page) -> tuple[list, list]:
    dialogs, errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    return dialogs, errors


def test_category_filter_changes_markers_and_list_and_the_url(seeded, live_server, page):
    base = live_server()
    dialogs, errors = watch(page)
    page.goto(base + VIEW + "&lang=en")
    expect(page.locator("#results li")).to_have_count(6)
    expect(page.locator(".atvira-marker")).to_have_count(6)
    page.select_option("#category", "playground")
    expect(page.locator("#results li")).to_have_count(3)
    expect(page.locator(".atvira-marker")).to_have_count(3)
    assert sorted(page.locator("#results li").evaluate_all("els => els.map(e => e.dataset.id)")) == [
        "test-evil", "test-pg1", "test-pg2"]
    assert "category=playground" in page.url
    # the URL is shareable: opening it again gives the same filter, map and list
    shared = page.url
    page.goto("about:blank")
    page.goto(shared)
    expect(page.locator("#results li")).to_have_count(3)
    assert page.locator("#category").input_value() == "playground"
    assert dialogs == [] and errors == []


def test_text_search_ignores_diacritics(seeded, live_server, page):
    base = live_server()
    page.goto(base + VIEW + "&lang=en")
    expect(page.locator("#results li")).to_have_count(6)
    page.fill("#q", "darzelis")
    expect(page.locator("#results li")).to_have_count(1)
    expect(page.locator("#results li")).to_contain_text("Lopšelis-darželis „Žiogelis“")
    expect(page.locator(".atvira-marker")).to_have_count(1)


def test_features_and_open_now_filter_with_unknown_hours_as_their_own_state(seeded, live_server, page):
    base = live_server()
    page.goto(base + VIEW + "&lang=en")
    expect(page.locator("#results li")).to_have_count(6)
    # hours unknown is shown as such, never as open or closed
    expect(page.locator("#results li[data-id=test-pg1] .state")).to_have_text("Hours unknown")
    expect(page.locator("#results li[data-id=test-wc] .state")).to_have_text("Closed now")
    expect(page.locator("#results li[data-id=test-baby] .state")).to_have_text("Open now")
    page.select_option("#open", "open,unknown")
    ids = ["test-baby", "test-pg1"]  # 24/7 and unknown; "off" is out; weekday hours depend on the clock
    for i in ids:
        expect(page.locator(f"#results li[data-id={i}]")).to_have_count(1)
    expect(page.locator("#results li[data-id=test-wc]")).to_have_count(0)
    expect(page.locator("#results li[data-id=test-pg2]")).to_have_count(0)
    page.select_option("#open", "open")
    expect(page.locator("#results li[data-id=test-pg1]")).to_have_count(0)
    expect(page.locator("#results li[data-id=test-baby]")).to_have_count(1)
    page.select_option("#open", "")
    page.check("input[name=features][value=changing_table]")
    expect(page.locator("#results li")).to_have_count(1)
    expect(page.locator(".atvira-marker")).to_have_count(1)
    assert "features=changing_table" in page.url


def _metres(lon1, lat1, lon2, lat2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


def test_near_me_with_mocked_geolocation_lists_nearest_first_with_distances(seeded, live_server, make_page):
    here = (25.2842, 54.6786)
    base = live_server()
    page = make_page(geolocation={"longitude": here[0], "latitude": here[1]}, locale="en-GB")
    page.goto(base + "/?ll=54.70000,25.10000&z=12&lang=en")  # somewhere else first
    page.get_by_role("button", name="Near me").click()
    expect(page.locator("#results li .distance")).to_have_count(6)
    ids = page.locator("#results li").evaluate_all("els => els.map(e => e.dataset.id)")
    expected = sorted(PLACES, key=lambda k: _metres(*here, PLACES[k]["lon"], PLACES[k]["lat"]))
    assert ids == [f"test-{k}" for k in expected]
    first = page.locator("#results li .distance").first.text_content()
    assert re.fullmatch(r"\d+ m", first), first
    expect(page.locator("#status")).to_contain_text("Nearest first")
    assert "near=25.284200%2C54.678600" in page.url or "near=25.284200,54.678600" in page.url


def test_near_a_typed_address_when_there_is_no_geolocation(seeded, live_server, page):
    base = live_server()
    page.goto(base + VIEW + "&lang=en")
    # Let the first load finish: its "N places in view" would otherwise overwrite the message below.
    expect(page.locator("#status")).to_contain_text("places in view")
    page.get_by_role("button", name="Near me").click()  # no permission: it says so
    expect(page.locator("#status")).to_contain_text("Type a place or address")
    page.fill("#place", "Vilniaus g")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("#results li .distance")).to_have_count(6)
    assert page.locator("#results li").first.get_attribute("data-id") == "test-kg"


def test_detail_page_renders_hours_sources_map_and_json_ld(seeded, live_server, page):
    base = live_server()
    dialogs, errors = watch(page)
    page.goto(base + "/facility/test-baby?lang=en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Motinos ir vaiko kambarys")
    expect(page.locator(".open-state")).to_have_text("Open now")
    expect(page.locator(".week tr")).to_have_count(7)
    expect(page.locator(".sources")).to_contain_text("CC-BY-4.0")
    expect(page.locator(".sources")).to_contain_text("2026")
    expect(page.locator("#h-sources")).to_be_visible()
    expect(page.locator(".small-map .leaflet-interactive")).to_have_count(1)
    expect(page.get_by_role("link", name="Directions (OpenStreetMap)")).to_have_attribute(
        "href", "https://www.openstreetmap.org/directions?to=54.682000%2C25.280000")
    expect(page.get_by_role("link", name="Report a problem")).to_have_attribute("href", "/facility/test-baby/report")
    ld = json.loads(page.locator("script[type='application/ld+json']").text_content())
    assert ld["@type"] == "Place" and ld["name"] == "Motinos ir vaiko kambarys" and ld["openingHours"] == "24/7"
    page.goto(base + "/facility/test-pg1?lang=en")
    expect(page.locator(".open-state")).to_have_text("Hours unknown")
    assert dialogs == [] and errors == []


def test_language_switch_changes_the_ui(seeded, live_server, make_page):
    base = live_server()
    page = make_page(locale="lt-LT")
    page.goto(base + VIEW)
    expect(page.get_by_role("button", name="Šalia manęs")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "lt"
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("button", name="Near me")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "z=16" in page.url  # the switch keeps the view and filters
    expect(page.locator("#results li")).to_have_count(6)
    page.goto(base + "/facility/test-kg")  # the choice is remembered
    expect(page.get_by_role("heading", name="Opening hours")).to_be_visible()


def test_a_hostile_name_is_text_everywhere_and_no_dialog_opens(seeded, live_server, page):
    base = live_server()
    dialogs, errors = watch(page)
    page.goto(base + VIEW + "&lang=en")
    expect(page.locator("#results li")).to_have_count(6)
    expect(page.locator("#results").get_by_text(EVIL)).to_have_count(1)
    page.get_by_title(EVIL).click()  # the marker's popup
    expect(page.locator(".leaflet-popup-content").get_by_text(EVIL)).to_have_count(1)
    page.locator(".leaflet-popup-content a").click()  # and the detail page
    expect(page.get_by_role("heading", level=1)).to_have_text(EVIL)
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == [] and errors == []


def test_phone_width_keyboard_and_failing_tiles(seeded, live_server, make_page):
    base = live_server(tile_url="https://tile.openstreetmap.org/{z}/{x}/{y}.png")  # refused by the route
    page = make_page(viewport={"width": 360, "height": 740}, locale="en-GB")
    dialogs, errors = watch(page)
    page.goto(base + "/?ll=54.68000,25.28000&z=15")
    expect(page.locator("#results li")).to_have_count(6)  # markers and list without tiles
    expect(page.locator(".atvira-marker")).to_have_count(6)
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("OpenStreetMap contributors")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"page is {width}px wide on a 360px screen"
    map_box = page.locator(".map-panel").bounding_box()
    list_box = page.locator(".list-panel").bounding_box()
    assert list_box["y"] >= map_box["y"] + map_box["height"] - 1  # the list is below the map
    # keyboard: Tab reaches the filters, and a marker opens its popup with Enter
    page.locator("#q").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "category"
    page.locator(".atvira-marker").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".leaflet-popup-content")).to_have_count(1)
    assert dialogs == [] and errors == []


def test_low_zoom_shows_server_clusters_and_lists_how_to_get_closer(settings, live_server, page):
    conn = connect(settings.db)
    apply_records(conn, [facility(str(i), lon=25.26 + (i % 30) * 0.0015, lat=54.67 + (i // 30) * 0.0015)
                         for i in range(450)], source="test", scope="s")
    derive(conn)
    conn.close()
    base = live_server()
    page.goto(base + "/?ll=54.68000,25.28000&z=12&lang=en")
    expect(page.locator("#status")).to_contain_text("450 places in view")
    assert page.locator(".atvira-marker").count() == 0
    counts = [int(t.replace(",", "")) for t in page.locator(".atvira-cluster").all_text_contents()]
    assert counts and sum(counts) == 450
    buttons = page.locator("#results button")
    expect(buttons.first).to_contain_text("Zoom to")
    buttons.first.click()
    expect(page.locator(".atvira-marker").first).to_be_attached()


def _serious(results) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


@pytest.mark.parametrize("path", [VIEW, VIEW + "&lang=en", "/facility/test-baby", "/facility/test-evil?lang=en"])
def test_axe_finds_no_serious_or_critical_violations(seeded, live_server, page, path):
    from axe_playwright_python.sync_playwright import Axe

    base = live_server()
    page.goto(base + path)
    if path.startswith("/?"):
        expect(page.locator("#results li")).to_have_count(6)
    else:
        expect(page.locator(".small-map .leaflet-interactive")).to_have_count(1)
    results = Axe().run(page)
    assert results.response["passes"] or results.response["violations"] is not None
    assert _serious(results) == []


def test_stop_sorting_by_distance_shows_only_while_sorting(seeded, live_server, make_page):
    base = live_server()
    page = make_page(geolocation={"longitude": 25.2842, "latitude": 54.6786}, locale="en-GB")
    page.goto(base + VIEW)
    expect(page.locator("#results li")).to_have_count(6)
    expect(page.get_by_role("button", name="Stop sorting by distance")).to_be_hidden()
    page.get_by_role("button", name="Near me").click()
    expect(page.locator("#results li .distance")).to_have_count(6)
    page.get_by_role("button", name="Stop sorting by distance").click()
    expect(page.locator("#results li .distance")).to_have_count(0)
    expect(page.get_by_role("button", name="Stop sorting by distance")).to_be_hidden()
    assert "near=" not in page.url
