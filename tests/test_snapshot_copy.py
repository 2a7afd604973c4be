"""The published copy (every snapshot file and the whole .sqlite download) written in one pass
(exports.copy_store) holds what the older whole-store VACUUM INTO + strip + VACUUM gave
(exports.copy_whole): the same schema, the same rows with the same rowids, the same R*Tree node
for node, the same full-text answers (the one-pass copy carries the store's own full-text index,
the whole copy rebuilds it: the same index, laid out in other pages)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from directory.exports import copy_store, copy_whole
from directory.store import connect


def _dump(path: Path) -> dict:
    db = sqlite3.connect(path)
    try:
        out: dict = {"schema": sorted(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"
                                                  " WHERE name NOT LIKE 'sqlite_autoindex%'").fetchall(), key=repr),
                     "user_version": db.execute("PRAGMA user_version").fetchone()[0],
                     "integrity": db.execute("PRAGMA integrity_check").fetchall()}
        # the full-text index holds the same entries whatever its pages: checked against the
        # rows (integrity-check with rank 1) and by its answers below
        db.execute("INSERT INTO facilities_fts(facilities_fts, rank) VALUES ('integrity-check', 1)")
        words = sorted({w.strip("\"'„“()-.,").lower() for (name,) in db.execute("SELECT name FROM facilities")
                        for w in name.split() if len(w.strip("\"'„“()-.,")) > 2})
        out["words"] = len(words)
        out["answers"] = [db.execute("SELECT rowid FROM facilities_fts WHERE facilities_fts MATCH ? ORDER BY rowid",
                                     (f'"{w}"',)).fetchall() for w in words]
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                   " AND name NOT IN ('facilities_fts_data', 'facilities_fts_idx')").fetchall():
            try:
                out[table] = db.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid').fetchall()
            except sqlite3.OperationalError:  # a virtual table without a rowid to order by
                out[table] = sorted(db.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
        out["search"] = db.execute("SELECT rowid FROM facilities_fts WHERE facilities_fts MATCH 'darzelis'"
                                   " ORDER BY rowid").fetchall()
        out["box"] = db.execute("SELECT rid FROM facilities_rtree WHERE min_lon >= 25.2 AND max_lon <= 25.3"
                                " AND min_lat >= 54.6 AND max_lat <= 54.7 ORDER BY rid").fetchall()
        return out
    finally:
        db.close()


def test_the_one_pass_copy_holds_what_the_whole_copy_held(audit_db, tmp_path):
    db = tmp_path / "audit.db"
    shutil.copy(audit_db, db)
    conn = connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM source_records").fetchone()[0] > 100
        copy_store(conn, tmp_path / "one-pass.sqlite")
        copy_whole(conn, tmp_path / "whole.sqlite")
    finally:
        conn.close()
    fast, slow = _dump(tmp_path / "one-pass.sqlite"), _dump(tmp_path / "whole.sqlite")
    assert fast.keys() == slow.keys()
    for key in slow:
        assert fast[key] == slow[key], key
    assert fast["integrity"] == [("ok",)]
    assert "changes" not in fast and "meta" not in fast and fast["search"] and fast["box"]
    assert fast["words"] > 100 and sum(map(len, fast["answers"])) > fast["words"]
    with sqlite3.connect(tmp_path / "one-pass.sqlite") as out:
        assert "data" not in [c[1] for c in out.execute("PRAGMA table_info(source_records)")]


def test_a_read_only_connection_gets_the_same_copy(audit_db, tmp_path):
    db = tmp_path / "audit.db"
    shutil.copy(audit_db, db)
    connect(db).close()  # migrated, as a reader expects
    reader = connect(db, readonly=True)
    try:
        copy_store(reader, tmp_path / "ro.sqlite")
    finally:
        reader.close()
    writer = connect(db)
    try:
        copy_whole(writer, tmp_path / "whole.sqlite")
    finally:
        writer.close()
    assert _dump(tmp_path / "ro.sqlite") == _dump(tmp_path / "whole.sqlite")
