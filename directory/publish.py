"""The SQLite download made ready for Datasette users, with sqlite-utils.

`datasette facilities.sqlite -m datasette-metadata.json` should open with full-text search and
facets, and say where the data came from and under which licences. Datasette finds a table's FTS
index only when the virtual table names its content table in double quotes or brackets
(`content="facilities"`); the live store's migration wrote `content='facilities'`, which SQLite
reads the same but Datasette does not detect. The copy's index is rebuilt by sqlite-utils (same
columns, same diacritic-folding tokenizer, so `darzelis` still finds `darželis`), leaving the live
store's schema alone.
"""

from __future__ import annotations

from pathlib import Path

FTS_COLUMNS = ("name", "address", "operator")
FTS_TOKENIZE = "unicode61 remove_diacritics 2"


def prepare_copy(path: Path) -> None:
    """Rebuild the copy's full-text index in the form Datasette detects (the file is a private
    temporary copy until it is renamed into place, so this never touches the live store)."""
    # Imported here: sqlite_utils imports pandas (0.4 s), and every command and ingest process
    # imports this module (through exports) while only the download copy needs it.
    import sqlite_utils

    db = sqlite_utils.Database(str(path))
    try:
        if "facilities" not in db.table_names():
            return
        # The store's triggers keep writing to a table of this name and these columns, so the
        # copy stays searchable if someone edits it.
        db.execute("DROP TABLE IF EXISTS facilities_fts")
        db["facilities"].enable_fts(list(FTS_COLUMNS), tokenize=FTS_TOKENIZE)
        db["facilities"].rebuild_fts()
    finally:
        db.close()
