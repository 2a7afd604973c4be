"""A real-data store for the social-cluster tests: what the offline Lithuanian default holds.

The 60 municipalities and 554 elderships, the Vilnius kindergarten register through its real
mapping (`ingest/mappings/vilnius-darzeliai.toml`), then the country OSM sample
(`geodata-lt-osm-nodes`, Overpass JSON, which `ingest/osm.py` reads as it is), each through the
same run functions the CLI uses, so conflation and the derived refresh (audit + cluster) run
as they do for a user. Built once per session; tests copy it before writing.
"""

from __future__ import annotations

from pathlib import Path

from directory.config import Settings
from directory.store import connect
from ingest.mapping import load_mapping
from ingest.runs import load_areas, run_osm, run_registry_files

AREAS = "govlt-powerbi-map-lt"
DARZELIAI = "vilnius-darzeliai/darzeliai_grupes.csv"
OSM_SAMPLE = "geodata-lt-osm-nodes/lithuania-2019-amenity-leisure.json.gz"
UTENA = "82"
VILNIUS = "13"


def build_cluster_store(db: Path, shared_data: Path, tmp: Path) -> Path:
    settings = Settings(db=db, cache_dir=tmp / "cache", offline=True, tile_url="")
    conn = connect(db)
    load_areas(conn, settings=settings, from_dir=shared_data / AREAS, derive=False)
    run_registry_files(conn, load_mapping("vilnius-darzeliai"), [shared_data / DARZELIAI], settings=settings,
                       derive=False)
    run_osm(conn, settings=settings, files=[shared_data / OSM_SAMPLE])  # ends with refresh_derived
    conn.close()
    return db
