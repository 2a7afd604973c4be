"""Issue 12's defects, each checked in real Chromium: the popup at the top edge, /changes in
English and in words, legends inside their maps, pinch zoom, no sideways scroll on a phone, the
credits on a phone, one OpenStreetMap credit, the local base layer when tiles fail, Babel's
numbers and plurals, and swapped coordinates in the map's own URL."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from directory.config import DEFAULT_TILE_URL
from directory.snapshots import create_snapshot
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import derive, facility

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def watch(page) -> list:
    errors: list = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
    return errors


@pytest.fixture
def few(settings):
    """Three places in Vilnius; one north of the others, for the popup near the top edge."""
    conn = connect(settings.db)
    apply_records(conn, [
        facility("north", name="Šiaurės aikštelė", lon=25.2800, lat=54.6820),
        facility("a", name="Aikštelė A", lon=25.2790, lat=54.6780),
        facility("b", name="Aikštelė B", lon=25.2810, lat=54.6775),
    ], source="test", scope="s")
    derive(conn)
    conn.close()
    return settings


def box(page, selector: str) -> dict:
    b = page.locator(selector).first.bounding_box()
    assert b is not None, f"{selector} is not rendered"
    return b


def inside(inner: dict, outer: dict) -> bool:
    return (inner["x"] >= outer["x"] - 1 and inner["y"] >= outer["y"] - 1
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1)


def overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


# --- the popup at the top edge ------------------------------------------------------------------

def test_a_popup_near_the_top_edge_stays_open_through_autopan_and_reloads(few, live_server, page):
    errors = watch(page)
    base = live_server()
    # The northern marker sits ~25 px below the map's top edge: its popup opens above it, so
    # Leaflet pans the map down to show it (autopan), which ends in a "moveend".
    page.goto(base + "/?ll=54.67860,25.28000&z=16&lang=en")
    expect(page.locator("#results li")).to_have_count(3)
    marker = page.locator(".atvira-marker[title='Šiaurės aikštelė']")
    before = page.locator(".map-panel .leaflet-map-pane").get_attribute("style")
    marker.click()
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_contain_text("Šiaurės aikštelė")
    expect(page.locator(".map-panel .leaflet-map-pane")).not_to_have_attribute("style", before)  # it panned
    page.wait_for_timeout(600)  # the pan animation (0.25 s) and its moveend are over
    expect(popup).to_be_visible()
    expect(popup).to_contain_text("Šiaurės aikštelė")
    # A real reload while the popup is open (the user drags the map a little) keeps it too.
    map_box = box(page, ".map-panel .folium-map")
    x, y = map_box["x"] + map_box["width"] / 2, map_box["y"] + map_box["height"] - 120
    with page.expect_response(re.compile(r"/api/facilities\?")):
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - 40, y - 10, steps=5)
        page.mouse.up()
    expect(page.locator("#results li")).to_have_count(3)
    expect(popup).to_be_visible()
    expect(popup).to_contain_text("Šiaurės aikštelė")
    assert errors == []


# --- /changes in English and in words ---------------------------------------------------------

def test_changes_page_in_english_shows_words_not_python_values(settings, live_server, page, tmp_path):
    cfg = settings.with_(snapshots_dir=tmp_path / "snaps")
    conn = connect(settings.db)
    apply_records(conn, [facility("k", name="Darželis Saulutė", categories=["kindergarten"],
                                  extra={"age_from": 1, "capacity": 120})], source="test", scope="s")
    create_snapshot(conn, cfg)
    apply_records(conn, [facility("k", name="Darželis Saulutė", categories=["kindergarten"],
                                  features={"wheelchair": "yes"}, extra={"age_from": 2, "capacity": 1200})],
                  source="test", scope="s")
    create_snapshot(conn, cfg)
    conn.close()
    errors = watch(page)
    base = live_server(snapshots_dir=tmp_path / "snaps")
    resp = page.goto(base + "/changes?lang=en")  # by default: the latest snapshot against the one before
    assert resp.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("What changed")
    text = page.locator("main").inner_text()
    assert "changed" in text and "age from: 1, places: 120" in text and "age from: 2, places: 1,200" in text
    assert "Wheelchair access: yes" in text and "Other details" in text and "Features" in text
    for repr_ in ("['", "{'", "{}", "[]", " → ", "extra", "age_from"):
        assert repr_ not in text, f"{repr_!r} on the page"
    assert re.search(r"Changes from snapshot 1 \(.+\) to snapshot 2 \(.+\)\.", text), text[:300]
    # the whole history: the facility as added, its category in words
    page.goto(base + "/changes?since=&lang=en")
    text = page.locator("main").inner_text()
    assert "Changes from the beginning to now." in text and "Kindergarten" in text and "added" in text
    assert page.request.get(base + "/api/changes?lang=en").status == 200
    assert errors == []


# --- legends, pinch zoom, the phone --------------------------------------------------------------

@pytest.mark.parametrize("path", ["/audit", "/audit/13"])
def test_audit_legends_are_inside_their_maps(audit_db, live_server, page, path):
    base = live_server(db=audit_db)
    page.goto(base + path + "?lang=en")
    page.locator("path.audit-area").first.wait_for()
    boxes = page.locator("section.choropleth .map-box")
    assert boxes.count() == (1 if path == "/audit" else 2)
    for i in range(boxes.count()):
        legend = boxes.nth(i).locator("ul.legend")
        expect(legend).to_be_visible()
        assert inside(legend.bounding_box(), boxes.nth(i).bounding_box())
    # and no table is drawn over: the legend's box meets no table
    for t in range(page.locator("table").count()):
        tb = page.locator("table").nth(t).bounding_box()
        if tb:
            for i in range(boxes.count()):
                assert not overlap(boxes.nth(i).locator("ul.legend").bounding_box(), tb)




def test_no_page_blocks_pinch_zoom(few, audit_db, live_server, page):
    for base, paths in ((live_server(), ["/", "/facility/test-north", "/changes", "/datasets", "/api", "/nope"]),
                        (live_server(db=audit_db), ["/audit", "/audit/13", "/audit/institutions"])):
        for path in paths:
            page.goto(base + path)
            metas = page.locator("meta[name=viewport]")
            assert metas.count() == 1, path
            content = metas.first.get_attribute("content").replace(" ", "").lower()
            assert "user-scalable=no" not in content and "maximum-scale=1" not in content, (path, content)


@pytest.mark.parametrize("path", ["/audit", "/audit/13", "/changes", "/datasets", "/api"])
def test_no_sideways_scroll_on_a_360px_phone(audit_db, live_server, make_page, path):
    base = live_server(db=audit_db)
    page = make_page(viewport=PHONE)
    page.goto(base + path + "?lang=lt")
    if path.startswith("/audit"):
        page.locator("path.audit-area").first.wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{path} is {width}px wide on a 360px screen"


def test_on_a_phone_the_credits_fold_and_cover_neither_the_scale_nor_the_legend(few, live_server, make_page):
    base = live_server(tile_url=DEFAULT_TILE_URL)  # the default tiles and their credit; refused by the route
    page = make_page(viewport=PHONE, locale="en-GB")
    errors = watch(page)
    page.goto(base + "/?ll=54.67900,25.28000&z=15")
    expect(page.locator("#results li")).to_have_count(3)
    scale = box(page, ".leaflet-control-scale")
    legend = box(page, ".legend summary")
    toggle = page.get_by_role("button", name="Map credits")
    expect(toggle).to_be_visible()
    expect(page.locator(".leaflet-control-attribution")).to_be_hidden()
    for a, b in ((scale, legend), (scale, toggle.bounding_box()), (legend, toggle.bounding_box())):
        assert not overlap(a, b)
    toggle.click()
    expect(page.locator(".leaflet-control-attribution")).to_be_visible()
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("OpenStreetMap contributors")
    assert toggle.get_attribute("aria-expanded") == "true"
    assert not overlap(box(page, ".leaflet-control-attribution"), legend)
    assert errors == []


def test_the_facility_pages_small_map_folds_its_credits_at_desktop_width(few, live_server, make_page):
    """The facility page's map is half a column wide: unfolded, its two-line credits covered the
    scale bar at 1280 px (seen by hand); they fold behind the credits button as on a phone."""
    base = live_server(tile_url=DEFAULT_TILE_URL)  # the default tiles and their credit; refused by the route
    page = make_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    errors = watch(page)
    fid = page.request.get(base + "/api/facilities?limit=1").json()["features"][0]["id"]
    page.goto(f"{base}/facility/{fid}?lang=en")
    toggle = page.get_by_role("button", name="Map credits")
    expect(toggle).to_be_visible()
    expect(page.locator(".leaflet-control-attribution")).to_be_hidden()
    assert not overlap(box(page, ".leaflet-control-scale"), toggle.bounding_box())
    toggle.click()
    expect(page.locator(".leaflet-control-attribution")).to_be_visible()
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("OpenStreetMap contributors")
    assert errors == []


def test_openstreetmap_is_credited_once(settings, live_server, page):
    conn = connect(settings.db)
    apply_records(conn, [facility("1", source="osm", licence="ODbL-1.0")], source="osm", scope="s")
    derive(conn)
    conn.close()
    base = live_server(tile_url=DEFAULT_TILE_URL)
    page.goto(base + "/?ll=54.68000,25.28000&z=15&lang=en")
    expect(page.locator("#results li")).to_have_count(1)
    credit = page.locator(".leaflet-control-attribution").inner_text()
    assert credit.count("OpenStreetMap") == 1, credit
    assert page.request.get(base + "/favicon.ico").status == 200


# --- the local base layer ---------------------------------------------------------------------

@pytest.mark.parametrize("tiles", [DEFAULT_TILE_URL, ""], ids=["tiles-fail", "no-tiles"])
def test_without_tiles_the_outlines_are_drawn_and_the_reader_is_told(audit_db, live_server, make_page, tiles):
    base = live_server(db=audit_db, tile_url=tiles)  # the default tile server is unreachable here
    page = make_page(locale="lt-LT")
    errors = watch(page)
    page.goto(base + "/?ll=54.68000,25.28000&z=10")
    notice = page.locator(".base-notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_text(
        "Pagrindinis žemėlapis nepasiekiamas: vietoj jo rodomos savivaldybių ir seniūnijų ribos.")
    outlines = page.locator(".leaflet-localbase-pane path")
    outlines.nth(59).wait_for(state="attached")  # the 60 municipalities (those out of view are empty paths)
    elderships = page.locator(".leaflet-localbase-pane path[stroke-dasharray]")
    elderships.first.wait_for()  # and, zoomed in to 10, the elderships in view
    assert 60 < outlines.count() <= 60 + 150
    drawn = [d for d in outlines.evaluate_all("els => els.map(e => e.getAttribute('d'))") if d != "M0 0"]
    assert len(drawn) >= 5  # Vilnius and its neighbours are on screen
    assert errors == []


# --- numbers and plurals in the page's language -------------------------------------------------

def test_plurals_and_decimal_marks_follow_the_language(few, audit_db, live_server, page):
    base = live_server()
    page.goto(base + "/?ll=54.68200,25.28000&z=18&lang=en")
    expect(page.locator("#status")).to_have_text("1 place in view")
    page.goto(base + "/?ll=54.67860,25.28000&z=16&lang=en")
    expect(page.locator("#status")).to_have_text("3 places in view")
    page.goto(base + "/?ll=54.67860,25.28000&z=16&lang=lt")
    expect(page.locator("#status")).to_have_text("Matomoje srityje 3 vietos")
    page.goto(base + "/?ll=54.68200,25.28000&z=18&lang=lt")
    expect(page.locator("#status")).to_have_text("Matomoje srityje 1 vieta")
    audit = live_server(db=audit_db)
    page.goto(audit + "/audit?lang=lt")
    rates = page.locator("#municipalities tbody td:nth-child(5)").all_inner_texts()
    known = [r for r in rates if r != "n/d"]
    assert known and all(re.fullmatch(r"\d+,\d\d", r) for r in known), known[:5]
    page.goto(audit + "/audit?lang=en")
    known = [r for r in page.locator("#municipalities tbody td:nth-child(5)").all_inner_texts() if r != "n/a"]
    assert known and all(re.fullmatch(r"\d+\.\d\d", r) for r in known), known[:5]


def test_swapped_near_in_the_map_url_is_named_not_searched_silently(few, live_server, page):
    base = live_server()
    page.goto(base + "/?near=54.678,25.279&ll=54.67860,25.28000&z=16&lang=en")
    expect(page.locator("#status")).to_contain_text("looks like lat,lon for a place in Lithuania")
    expect(page.locator("#status")).to_contain_text("did you mean near=25.279,54.678?")


def test_audit_maps_on_a_phone_fold_their_credits_too(audit_db, live_server, make_page):
    base = live_server(db=audit_db, tile_url=DEFAULT_TILE_URL)
    page = make_page(viewport=PHONE, locale="lt-LT")
    page.goto(base + "/audit/13")
    page.locator("#gaps-map path.audit-area").first.wait_for()
    gaps = page.locator("#gaps-map")
    gaps.scroll_into_view_if_needed()
    expect(gaps.locator(".leaflet-control-attribution")).to_be_hidden()
    toggle = gaps.get_by_role("button", name="Žemėlapio šaltiniai")
    assert not overlap(toggle.bounding_box(), gaps.locator(".leaflet-control-scale").bounding_box())
    assert not overlap(toggle.bounding_box(), gaps.locator("ul.legend").bounding_box())
    expect(gaps.locator(".leaflet-control-zoom-in")).to_have_attribute("title", "Priartinti")
