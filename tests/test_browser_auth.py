"""Sign-in in real Chromium on a phone: by keyboard only, errors announced, the account page,
sign-out; and axe-core's rules on the sign-in page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.authtool import PASSWORD, add_account

pytestmark = pytest.mark.browser


def _serious(results) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in results.response["violations"]
            if v.get("impact") in ("serious", "critical")]


def test_sign_in_by_keyboard_on_a_phone(settings, live_server, make_page):
    add_account(settings, login="vilnius", municipalities=["13"])
    base = live_server()
    page = make_page(viewport={"width": 360, "height": 740}, locale="en-GB")
    page.goto(base + "/login?lang=en")
    expect(page.locator("#login")).to_be_focused()  # autofocus: type at once
    page.keyboard.type("vilnius")
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Wrong login or password.")
    # The login is kept, the password is not; focus is on the password to try again.
    expect(page.locator("#login")).to_have_value("vilnius")
    expect(page.locator("#password")).to_be_focused()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")
    page.goto(base + "/account")
    expect(page.locator("main")).to_contain_text("editor, 13")  # no public store areas here: the code
    page.get_by_role("button", name="Sign out").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/login")
    page.goto(base + "/account")
    expect(page.locator("h1")).to_have_text("Sign in")


def test_axe_on_the_sign_in_page(settings, live_server, page):
    from axe_playwright_python.sync_playwright import Axe

    base = live_server()
    for path in ("/login", "/login?lang=en"):
        page.goto(base + path)
        expect(page.locator("#login")).to_be_visible()
        assert _serious(Axe().run(page)) == []
