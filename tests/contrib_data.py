"""Shared data for the contributions tests: a public store with the real areas (60 municipalities,
554 elderships from ../shared/data/govlt-powerbi-map-lt), a few OpenStreetMap places in Vilnius
and Kaunas from a small Overpass file, and editors of Vilniaus m. sav. ("13") and Kauno m. sav.
("19"). Built once per session; tests copy the file before writing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from directory.accounts import User
from directory.areas_store import save_areas
from directory.config import Settings
from directory.store import connect
from ingest.areas import read_areas
from ingest.runs import run_osm

VILNIUS, KAUNAS = "13", "19"
EDITOR_VILNIUS = User(id=1, login="vilnius-editor", role="editor", municipalities=(VILNIUS,))
EDITOR_KAUNAS = User(id=2, login="kaunas-editor", role="editor", municipalities=(KAUNAS,))
ADMIN = User(id=3, login="admin", role="admin", municipalities=())

# Vilnius city centre and a Kaunas library, as OpenStreetMap would give them.
OSM_PLACES = [
    {"type": "node", "id": 501, "lon": 25.2797, "lat": 54.6872,
     "tags": {"amenity": "library", "name": "Centrinė biblioteka", "opening_hours": "Mo-Fr 10:00-19:00"}},
    {"type": "node", "id": 502, "lon": 25.2900, "lat": 54.6900, "tags": {"leisure": "playground", "name": "Saulutė"}},
    {"type": "node", "id": 503, "lon": 23.9036, "lat": 54.8985, "tags": {"amenity": "library", "name": "Kauno biblioteka"}},
]
VILNIUS_POINT = (25.2790, 54.6880)  # Senamiestis
KAUNAS_POINT = (23.9040, 54.8990)


def write_osm(path: Path, elements: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 0.6, "elements": elements}, ensure_ascii=False), encoding="utf-8")
    return path


def build_public(db: Path, shared_data: Path, tmp: Path) -> Path:
    """Areas, then the OSM places (as `atvira ingest osm FILE` does), derived data refreshed."""

    conn = connect(db)
    save_areas(conn, read_areas(shared_data / "govlt-powerbi-map-lt"))
    settings = Settings(db=db, cache_dir=tmp / "cache", offline=True, tile_url="", snapshots_dir=tmp / "snaps")
    run_osm(conn, settings=settings, files=[write_osm(tmp / "places.json", OSM_PLACES)])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db


def copy_store(template: Path, dest: Path) -> Path:
    shutil.copy(template, dest)
    return dest
