"""Rebuild the Lithuanian catalogue in one step: extract the English strings, update the .po,
fill it from every `translations/lt_*.py` table, compile the .mo.

    python translations/build.py

Each table is a dict `LT = {english: lithuanian}` (plurals: `english: (singular, plural, many)`
keyed by the singular). Several tables, one per area of the app, so work on different pages
never edits the same lines. The .po file stays the translators' source of truth: a string a
translator already filled is never overwritten. Exits 1 and lists what is untranslated.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PO = HERE / "lt" / "LC_MESSAGES" / "messages.po"


def tables() -> dict:
    merged: dict = {}
    for path in sorted(HERE.glob("lt_*.py")):
        merged.update(runpy.run_path(str(path))["LT"])
    return merged


def babel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    babel("extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "-k", "plural_forms:1,2", "--no-location",
          "--sort-output",
          "-o", "translations/messages.pot", ".")
    babel("update", "-i", "translations/messages.pot", "-d", "translations", "-l", "lt", "--no-fuzzy-matching")
    lt = tables()
    with PO.open("rb") as f:
        catalog = read_po(f, locale="lt")
    missing = []
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        text = lt.get(key)
        if isinstance(message.id, tuple):
            have = message.string if isinstance(message.string, tuple) else ()
            if text is None and not any(have):
                missing.append(key)
            elif text is not None and not all(have):
                message.string = tuple(text) if isinstance(text, (tuple, list)) else (text, text, text)
        elif text is None and not message.string:
            missing.append(key)
        elif text is not None and not message.string:
            message.string = text
        message.flags.discard("fuzzy")
    catalog.obsolete.clear()
    with PO.open("wb") as f:
        write_po(f, catalog, width=100, sort_output=True)
    babel("compile", "-d", "translations", "-l", "lt")
    for m in missing:
        print("untranslated:", m)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
