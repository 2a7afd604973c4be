"""A typed place for "near me" when the browser will not say where it is.

No geocoder on the request path (web requests never touch the network), so a typed place is
looked up in what the store already knows: municipality and eldership names (their box's
centre), then facility addresses and names through the diacritic-free FTS index.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from typing import Any

from .query import fts_expression


def fold(text: str) -> str:
    """Lower case without diacritics ("Šiauliai" -> "siauliai")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def find_place(conn: sqlite3.Connection, text: str) -> dict[str, Any] | None:
    """{name, lon, lat, kind} for the best match of `text`, or None."""
    wanted = fold(text)
    if not wanted:
        return None
    best = None
    for r in conn.execute("SELECT code, level, name, min_lon, min_lat, max_lon, max_lat FROM areas"
                          " WHERE min_lon IS NOT NULL AND max_lon IS NOT NULL"):  # an empty geometry has no box
        name = fold(r["name"])
        if wanted in name:
            # an exact name beats a prefix beats a substring; a municipality beats an eldership
            rank = (0 if name == wanted else 1 if name.startswith(wanted) else 2, r["level"] != "municipality", len(name))
            if best is None or rank < best[0]:
                best = (rank, r)
    if best is not None:
        r = best[1]
        return {"name": r["name"], "kind": r["level"], "lon": (r["min_lon"] + r["max_lon"]) / 2,
                "lat": (r["min_lat"] + r["max_lat"]) / 2}
    expr = fts_expression(text)
    if expr is None:
        return None
    row = conn.execute(
        "SELECT f.name, f.address, f.lon, f.lat FROM facilities_fts JOIN facilities f ON f.rid = facilities_fts.rowid"
        " WHERE facilities_fts MATCH ? AND f.lon IS NOT NULL AND f.status != 'removed' ORDER BY rank LIMIT 1",
        (expr,),
    ).fetchone()
    if row is None:
        return None
    return {"name": row["address"] or row["name"], "kind": "address", "lon": row["lon"], "lat": row["lat"]}
