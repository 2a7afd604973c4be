"""No English on a Lithuanian page: every page is rendered in Chromium in Lithuanian and in
English, and any visible (or spoken: title, aria-label, placeholder, alt) text that reads the same
in both and holds an English word fails the test.

The English words are those of the catalogue's English strings (and a few common ones) minus the
words the Lithuanian side also uses (names such as OpenStreetMap, GeoJSON). Text the source wrote
(names, addresses) is the same in both languages but has no English words; code, and text marked
as English with lang="en" (the technical detail of an error, a column still described in English,
labelled so on the page), are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PO = Path(__file__).resolve().parents[1] / "translations" / "lt" / "LC_MESSAGES" / "messages.po"
COMMON_ENGLISH = {
    "the", "and", "with", "for", "not", "from", "only", "any", "this", "that", "are", "all", "none",
    "more", "per", "data", "unknown", "yes", "page", "found", "error", "facility", "facilities", "place",
    "places", "map", "view", "open", "closed", "hours", "show", "share", "score", "rank", "count", "residents",
}
ALLOWED = {"atvira", "json", "csv", "api", "geojson", "gpkg", "sqlite", "openstreetmap", "odbl", "dcat", "frictionless",
           "openapi", "curl", "pandas", "geopandas", "english", "lietuvių", "wgs84", "utc", "leaflet",
           "vilnius"}  # names: the same in both languages

COLLECT = """() => {
  const skip = (el) => !el || el.closest('script, style, code, pre, noscript, [lang]:not(html):not([lang="lt"])');
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const t = n.textContent.replace(/\\s+/g, ' ').trim();
    if (t && !skip(n.parentElement)) out.push(t);
  }
  for (const el of document.querySelectorAll('[title], [aria-label], [placeholder], [alt]')) {
    if (skip(el)) continue;
    for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
      const v = el.getAttribute(a);
      if (v && v.trim()) out.push(v.trim());
    }
  }
  out.push(document.title);
  return out;
}"""


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]{3,}", text)}


@pytest.fixture(scope="module")
def english_words() -> set[str]:
    with PO.open("rb") as f:
        catalog = read_po(f)
    english, lithuanian = set(), set()
    for m in catalog:
        if not m.id:
            continue
        for text in (m.id if isinstance(m.id, tuple) else (m.id,)):
            english |= _words(re.sub(r"%\(\w+\)s|<[^>]+>", " ", text))
        for text in (m.string if isinstance(m.string, tuple) else (m.string,)):
            lithuanian |= _words(re.sub(r"%\(\w+\)s|<[^>]+>", " ", text or ""))
    return (english | COMMON_ENGLISH) - lithuanian - ALLOWED


def _texts(page, url: str, ready: str | None) -> list[str]:
    page.goto(url)
    if ready:
        page.locator(ready).first.wait_for(state="attached")
    return page.evaluate(COLLECT)


# (path, what shows the page has finished drawing). The store: real areas, the real Vilnius
# kindergartens and a few hand-made institutions (tests/audit_data.py), with its change log.
PAGES = [
    ("/", "#results li, #results button"),
    ("/facility/vilnius-darzeliai-143", ".small-map path"),
    ("/facility/vilnius-darzeliai-143/report", None),
    ("/audit", "path.audit-area"),
    ("/audit/13", "#gaps-map path.audit-area"),
    ("/audit/13?category=baby_room", "#gaps-map path.audit-area"),
    ("/audit/institutions", None),
    ("/datasets", None),
    ("/changes", None),
    ("/api", None),
    ("/no-such-page", None),                       # 404
    ("/facility/no-such-id", None),                # 404 with a message
    ("/audit?category=nope", None),                # 400
    ("/audit/999", None),                          # 404 from the audit
]


@pytest.mark.parametrize("path,ready", PAGES, ids=[p for p, _ in PAGES])
def test_no_english_left_on_a_lithuanian_page(audit_db, live_server, page, english_words, path, ready):
    base = live_server(db=audit_db)
    sep = "&" if "?" in path else "?"
    lt = _texts(page, f"{base}{path}{sep}lang=lt", ready)
    expect(page.locator("html")).to_have_attribute("lang", "lt")
    en = set(_texts(page, f"{base}{path}{sep}lang=en", ready))
    untranslated = sorted({t for t in lt if t in en and _words(t) & english_words})
    assert untranslated == [], f"English on the Lithuanian {path}: {untranslated[:15]}"


def test_the_check_catches_english(audit_db, live_server, page, english_words):
    """The check itself: the English page is full of English by its own measure."""
    base = live_server(db=audit_db)
    en = _texts(page, f"{base}/audit?lang=en", "path.audit-area")
    assert sum(1 for t in en if _words(t) & english_words) > 30
