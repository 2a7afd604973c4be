"""Issue 11 in real Chromium on a 360 px phone: a parent adds a baby room in Vilnius by tapping the
map; it is absent from the map, the API and the CSV; an editor of Vilniaus m. sav. signs in and
approves it; it is then on the map, in /api/facilities, in the CSV with source `contributions`,
on /changes as "public suggestion, approved by editor, Vilniaus m. sav.", and the audit's Vilnius
count of baby rooms goes 0 -> 1. Also: the forms by keyboard alone."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from tests.authtool import PASSWORD, add_account
from tests.contrib_data import VILNIUS, VILNIUS_POINT, build_public

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
NAME = "Motinos ir vaiko kambarys „Ąžuolas“"
ACTOR = "public suggestion, approved by editor, Vilniaus m. sav."
VIEW = f"ll={VILNIUS_POINT[1]:.5f},{VILNIUS_POINT[0]:.5f}&z=17"


@pytest.fixture(scope="module")
def browser_template(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("contrib-browser")
    return build_public(d / "public.db", shared_data, d)


@pytest.fixture
def site(browser_template, settings, live_server):
    shutil.copy(browser_template, settings.db)
    add_account(settings, login="vilnius", municipalities=[VILNIUS])
    # the limiter counts per process: a generous limit, so other tests in this worker cannot use it up
    return live_server(snapshots_dir=settings.db.parent / "snaps", submission_limit="1000 per minute")


def vilnius_baby_rooms(page, base) -> int:
    data = page.request.get(f"{base}/api/audit/municipalities?category=baby_room").json()
    return next(m["count"] or 0 for m in data["municipalities"] if m["code"] == VILNIUS)


def fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width}px wide on a {PHONE['width']}px screen"


def test_a_parent_adds_a_baby_room_and_a_vilnius_editor_approves_it(site, make_page):
    base = site
    errors: list[str] = []
    parent = make_page(viewport=PHONE, locale="en-GB")
    parent.on("pageerror", lambda e: errors.append(str(e)))
    assert vilnius_baby_rooms(parent, base) == 0

    parent.goto(f"{base}/?{VIEW}&lang=en")
    parent.get_by_role("link", name="Add a place").click()
    parent.goto(f"{base}/contribute?{VIEW}&lang=en")
    fits(parent)
    parent.locator("#pick-map").click()  # tap the map where the room is
    expect(parent.locator("#pick-status")).to_contain_text("Position chosen")
    lat, lon = float(parent.locator("#f-lat").input_value()), float(parent.locator("#f-lon").input_value())
    assert abs(lat - VILNIUS_POINT[1]) < 0.002 and abs(lon - VILNIUS_POINT[0]) < 0.002
    parent.select_option("#f-category", "baby_room")
    parent.fill("#f-name", NAME)
    parent.check("input[name=features][value=changing_table]")
    parent.check("input[name=features][value=feeding_room]")
    parent.fill("#f-opening_hours", "Mo-Fr 08:00-18:00")
    parent.fill("#f-email", "mama@example.lt")
    parent.check("input[name=licence]")
    parent.get_by_role("button", name="Send for review").click()
    expect(parent.locator("h1")).to_have_text("Thank you")

    # pending: not on the map, not in the API, not in the download
    parent.goto(f"{base}/?{VIEW}&lang=en")
    expect(parent.locator("#status")).to_contain_text("in view")
    expect(parent.locator("#results li", has_text=NAME)).to_have_count(0)
    assert NAME not in parent.request.get(f"{base}/api/facilities?category=baby_room").text()
    assert NAME not in parent.request.get(f"{base}/downloads/facilities.csv").text()

    editor = make_page(viewport=PHONE, locale="en-GB")
    editor.on("pageerror", lambda e: errors.append(str(e)))
    editor.goto(f"{base}/moderate?lang=en")  # not signed in: the login page, then back here
    editor.fill("#login", "vilnius")
    editor.fill("#password", PASSWORD)
    editor.get_by_role("button", name="Sign in").click()
    item = editor.locator(".queue-item", has_text=NAME)
    expect(item).to_have_count(1)
    expect(item.locator(".compare")).to_contain_text("Changing table")
    expect(item).not_to_contain_text("mama@example.lt")
    fits(editor)
    item.get_by_role("button", name="Approve").click()
    expect(editor.locator(".done")).to_contain_text("Approved")

    parent.goto(f"{base}/?{VIEW}&lang=en")
    expect(parent.locator("#results li", has_text=NAME)).to_have_count(1)
    api = parent.request.get(f"{base}/api/facilities?category=baby_room").json()
    assert [f["properties"]["name"] for f in api["features"]] == [NAME]
    line = next(x for x in parent.request.get(f"{base}/downloads/facilities.csv").text().splitlines() if NAME in x)
    assert "contributions:c" in line
    parent.goto(f"{base}/changes")
    expect(parent.locator("tr", has_text=NAME)).to_contain_text(ACTOR)
    assert vilnius_baby_rooms(parent, base) == 1
    assert errors == []


def test_report_a_problem_by_keyboard_alone(site, make_page):
    page = make_page(viewport=PHONE, locale="en-GB")
    page.goto(f"{site}/facility/osm-node-501/report?lang=en")
    fits(page)
    page.locator("input[name=problem][value=wrong_hours]").focus()
    page.keyboard.press("Space")
    page.locator("#f-opening_hours").focus()
    page.keyboard.type("Mo-Sa 09:00-20:00")
    page.locator("input[name=licence]").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Send for review").focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Thank you")
