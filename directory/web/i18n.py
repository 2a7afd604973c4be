"""Languages: Lithuanian (default) and English, through Flask-Babel.

The locale comes from ?lang=, then the `lang` cookie the switch sets, then Accept-Language.
UI strings are written in English in the code and templates (wrapped in `_()`) and translated to
Lithuanian in translations/lt/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, get_locale

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
        return {"languages": LANGUAGES, "lang": str(get_locale() or DEFAULT_LANGUAGE)}

    return babel
