"""What the re-run tests (test_rerun_skip, test_rerun_versions) share: an OSM file run into a
store, what that run stored as content, and a count of what was mapped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from directory.config import Settings
from directory.store import connect
from directory.sync import IngestReport
from ingest import osm
from ingest.runs import run_osm


def count_mapped(monkeypatch) -> list[str]:
    """The keys element_to_facility maps from now on (run_osm calls it through the module)."""
    calls: list[str] = []
    real = osm.element_to_facility

    def counting(el, **kw):
        calls.append(el.key)
        return real(el, **kw)

    monkeypatch.setattr(osm, "element_to_facility", counting)
    return calls


def run_file(db: Path, path: Path, tmp_path: Path) -> IngestReport:
    """`path` run into the store at `db` as scope "test", without the derived data."""
    conn = connect(db)
    try:
        return run_osm(conn, settings=Settings(db=db, cache_dir=tmp_path / "cache"), files=[path],
                       scope="test", derive=False).reports[0]
    finally:
        conn.close()


def stored(db: Path) -> dict[str, list]:
    """What a run leaves that is content: facilities, source records (but the raw hash and the
    times), the change log (but its run ids and times)."""
    conn = sqlite3.connect(db)
    try:
        return {
            "facilities": conn.execute(
                "SELECT id, name, categories, lon, lat, address, operator, sector, features, opening_hours,"
                " status, last_verified, licence, extra, municipality_code FROM facilities ORDER BY id").fetchall(),
            "source_records": conn.execute(
                "SELECT source, source_id, facility_id, scope, licence, content_hash, data, removed_at IS NULL"
                " FROM source_records ORDER BY source_id").fetchall(),
            "changes": conn.execute("SELECT facility_id, source_id, kind, old, new FROM changes"
                                    " ORDER BY seq").fetchall(),
        }
    finally:
        conn.close()


def forget_raw_hashes(db: Path) -> None:
    """Empty the stored raw hashes: the next run skips nothing, as a store that never skipped."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("UPDATE source_records SET raw_hash = NULL")
        conn.commit()
    finally:
        conn.close()
