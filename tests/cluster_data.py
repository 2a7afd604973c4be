"""A real-data store for the social-cluster tests: the offline Lithuanian default itself.

`ingest.runs.setup_lithuania(from_dir=../shared/data)`, what `atvira setup lithuania --from`
runs: the 60 municipalities and 554 elderships (with the country outline), the gazetteer, the
country OSM sample (`geodata-lt-osm-nodes`, Overpass JSON that `ingest/osm.py` reads as it is)
and the Vilnius kindergarten register through its real mapping, then one derived refresh
(audit + cluster). Built once per session; tests copy it before writing.
"""

from __future__ import annotations

from pathlib import Path

from directory.config import Settings
from directory.store import connect
from ingest.runs import setup_lithuania

DARZELIAI = "vilnius-darzeliai/darzeliai_grupes.csv"
UTENA = "82"
VILNIUS = "13"


def build_cluster_store(db: Path, shared_data: Path, tmp: Path) -> Path:
    settings = Settings(db=db, cache_dir=tmp / "cache", offline=True, tile_url="")
    conn = connect(db)
    setup_lithuania(conn, settings=settings, from_dir=shared_data)
    conn.close()
    return db
