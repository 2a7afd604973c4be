"""A real-data store for the audit tests: the 60 municipalities and 554 elderships, the Vilnius
kindergartens from the city's registry CSV, and a few hand-made institutions and baby rooms.

The kindergarten records are built here straight from `vilnius-darzeliai/darzeliai_grupes.csv`
(one facility per DARZ_ID; LKS-94 -> WGS84 with pyproj; rows with 0/blank coordinates skipped)
because the registry adapter is being written in parallel; switch to it once merged.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from pyproj import Transformer

from directory import audit
from directory.areas_store import load_locator, save_areas
from directory.model import Facility
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import facility

DARZELIAI = "vilnius-darzeliai/darzeliai_grupes.csv"
AREAS = "govlt-powerbi-map-lt"
TODAY = date(2026, 11, 28)
VILNIUS = "13"


def lks94_to_wgs84(a: float, b: float) -> tuple[float, float]:
    """(lon, lat) from an LKS-94 pair whose order is decided by magnitude (northing ~6 million)."""
    northing, easting = (a, b) if a > b else (b, a)
    lon, lat = Transformer.from_crs(3346, 4326, always_xy=True).transform(easting, northing)
    return lon, lat


def darzeliai_points(path: Path) -> dict[str, dict]:
    """DARZ_ID -> first row's name, address, coordinates (LKS-94) and summed capacity/children."""
    out: dict[str, dict] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            x, y = (row["GIS_X"] or "0").strip(), (row["GIS_Y"] or "0").strip()
            if float(x or 0) == 0 or float(y or 0) == 0:
                continue
            kg = out.setdefault(row["DARZ_ID"], {
                "name": row["SCHOOL_NAME"] or row["LABEL"], "address": row["ADDRESS"],
                "gis_x": float(x), "gis_y": float(y), "capacity": 0, "children": 0,
            })
            kg["capacity"] += int(row["CAPACITY"] or 0)
            kg["children"] += int(row["CHILD_COUNT"] or 0)
    return out


def darzeliai_facilities(path: Path) -> list[Facility]:
    records = []
    for darz_id, kg in darzeliai_points(path).items():
        lon, lat = lks94_to_wgs84(kg["gis_x"], kg["gis_y"])
        records.append(Facility(
            source="vilnius-darzeliai", source_id=darz_id, name=kg["name"], categories=["kindergarten"],
            lon=lon, lat=lat, licence="not stated", address=kg["address"], sector="public",
            last_verified="2026-03-22", extra={"capacity": kg["capacity"], "children": kg["children"]},
        ))
    return records


# Hand-made institutions in Vilnius (city centre) for the checklist.
ALL_YES = {k: "yes" for k in ("open_foyer", "toilet", "free", "changing_table", "feeding_room",
                              "play_corner", "seating", "wheelchair")}
INSTITUTIONS = [
    # A town hall whose toilets nobody has described: free_toilet is unknown, not no.
    dict(source_id="townhall-unknown-toilet", name="Vilniaus miesto savivaldybė", categories=["townhall"],
         sector="unknown", features={"open_foyer": "yes", "wheelchair": "yes"},
         opening_hours="Mo-Fr 08:00-17:00", lon=25.2576, lat=54.6967, last_verified="2026-10-01"),
    dict(source_id="library-all-yes", name="Vilniaus apskrities Adomo Mickevičiaus viešoji biblioteka",
         categories=["library"], sector="public", features=dict(ALL_YES), opening_hours="Mo-Sa 10:00-20:00",
         lon=25.2869, lat=54.6835, last_verified="2026-10-01"),
    dict(source_id="library-paid-toilet", name="<script>alert(1)</script> Bibliotekos filialas",
         categories=["library"], sector="public", features={"toilet": "yes", "free": "no", "cafe": "yes"},
         lon=25.2700, lat=54.6900),
    # Private: not a public institution, whatever its category.
    dict(source_id="private-theatre", name="Privatus teatras", categories=["culture"], sector="private",
         features=dict(ALL_YES), opening_hours="Mo-Su 10:00-22:00", lon=25.2800, lat=54.6850),
    # The only baby room in the country, in Vilnius.
    dict(source_id="baby-room-akropolis", name="Motinos ir vaiko kambarys", categories=["baby_room"],
         sector="private", features={"changing_table": "yes"}, lon=25.2300, lat=54.7100),
]


def build_audit_store(db: Path, shared_data: Path) -> Path:
    """Areas, then the kindergartens and the hand-made places, then the audit (fixed `today`)."""
    from ingest.areas import read_areas

    conn = connect(db)
    save_areas(conn, read_areas(shared_data / AREAS))
    locator = load_locator(conn)
    report = apply_records(conn, darzeliai_facilities(shared_data / DARZELIAI), source="vilnius-darzeliai",
                           scope="darzeliai_grupes.csv", locator=locator)
    assert not report.rejected, report.rejected[:3]
    apply_records(conn, [facility(**fields) for fields in INSTITUTIONS], source="test", scope="hand-made",
                  locator=locator)
    audit.recompute(conn, today=TODAY)
    conn.close()
    return db
