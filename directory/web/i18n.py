"""Languages: Lithuanian (default) and English, through Flask-Babel.

The locale comes from ?lang=, then the `lang` cookie the switch sets, then Accept-Language.
UI strings are written in English in the code and templates (wrapped in `_()`) and translated to
Lithuanian in translations/lt/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel import Locale
from flask import Flask, request
from flask_babel import Babel, format_decimal, format_percent, get_locale, gettext, ngettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

LANGUAGES = {"lt": "Lietuvių", "en": "English"}
DEFAULT_LANGUAGE = "lt"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"


def select_locale() -> str:
    wanted = request.args.get("lang") or request.cookies.get("lang")
    if wanted in LANGUAGES:
        return wanted
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE


def init_i18n(app: Flask) -> Babel:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Vilnius")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    babel = Babel(app, locale_selector=select_locale)

    @app.after_request
    def remember_language(resp):
        lang = request.args.get("lang")
        if lang in LANGUAGES and request.cookies.get("lang") != lang:
            resp.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="Lax")
        return resp

    @app.context_processor
    def languages():
        return {"languages": LANGUAGES, "lang": str(get_locale() or DEFAULT_LANGUAGE), "num": number,
                "tr": translated_or_marked}

    return babel


def number(value: Any, kind: str = "count") -> str:
    """A figure as a page shows it, in the page's language (Babel: "1,5" and "12 %" in Lithuanian).

    kind: count (whole number), rate / ratio (two decimals), share / score (a percentage with one
    decimal). None is "n/a" (unknown), never 0. The CLI keeps its own plain `audit_report.fmt`.
    """
    if value is None:
        return gettext("n/a")
    if kind == "count":
        return format_decimal(int(value), format="#,##0")
    if kind in ("share", "score"):  # the locale's own pattern ("12,5 %" in Lithuanian), one decimal
        pattern = Locale.parse(str(get_locale() or DEFAULT_LANGUAGE)).percent_formats[None].pattern
        return format_percent(value, format=pattern.replace("0", "0.0", 1))
    return format_decimal(value, format="#,##0.00")


# Numbers that between them hit every plural category of the CLDR rules of our languages.
_PLURAL_SAMPLES = (0, 1, 2, 3, 5, 10, 11, 12, 21, 22, 25, 100, 101, 111, 1000)


def plural_forms(singular: str, plural: str, **values: Any) -> dict[str, str]:
    """A message's forms keyed by CLDR plural category ("one", "few", "other" ...), for the map
    script: it picks one with Intl.PluralRules, which follows the same CLDR rules as Babel.
    `values` are filled in as for gettext (pass n="{n}" to leave the count for the script)."""
    locale = Locale.parse(str(get_locale() or DEFAULT_LANGUAGE))
    forms: dict[str, str] = {}
    for n in _PLURAL_SAMPLES:
        forms.setdefault(locale.plural_form(n), ngettext(singular, plural, n, **values))
    return forms


def translated_or_marked(text: str | None) -> Markup:
    """English text from the core or a source description, for a page: its translation when the
    catalogue has one; otherwise the original, marked lang="en" on a page in another language, so
    readers and screen readers know (a new endpoint's summary before anyone translated it)."""
    if not text:
        return Markup("")
    translated = gettext(text)
    if translated != text or str(get_locale() or DEFAULT_LANGUAGE) == "en":
        return Markup(escape(translated))
    return Markup('<span lang="en">') + escape(text) + Markup("</span>")


# Licence names and credits the core writes in English (catalog.KNOWN_LICENCES, the mappings'
# `licence`, the test store's "not stated"), shown through `translated_or_marked`.
LICENCE_TEXTS = (
    _l("Open Data Commons Open Database License 1.0"), _l("Creative Commons Attribution 4.0"),
    _l("Creative Commons Zero 1.0"), _l("the publisher named by the source"),
    _l("© OpenStreetMap contributors, https://www.openstreetmap.org/copyright"), _l("not stated"),
    _l("Vilnius city open data (licence not stated)"),
)
