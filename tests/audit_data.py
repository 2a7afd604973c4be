"""A real-data store for the audit tests: the 60 municipalities and 554 elderships, the Vilnius
kindergartens from the city's registry CSV, and a few hand-made institutions and baby rooms.

The kindergartens come in through the registry adapter and its shipped mapping (as `atvira
ingest registry` does), with the clock fixed to the morning of TODAY: all 180 of the register,
the 8 without coordinates counted in Vilnius because the mapping states the municipality.
`darzeliai_points` reads the CSV independently (csv module, not the adapter) for the checks.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path
from unittest import mock

from directory import audit
from directory.areas_store import load_locator, save_areas
from directory.config import Settings
from directory.store import connect
from directory.sync import apply_records
from tests.conftest import facility

DARZELIAI = "vilnius-darzeliai/darzeliai_grupes.csv"
AREAS = "govlt-powerbi-map-lt"
TODAY = date(2026, 11, 28)
VILNIUS = "13"


def darzeliai_points(path: Path, *, unplaced: bool = False) -> dict[str, dict]:
    """DARZ_ID -> first row's name, address, coordinates (LKS-94) and summed capacity/children;
    with `unplaced`, the kindergartens without coordinates too (gis_x/gis_y 0)."""
    out: dict[str, dict] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            x, y = (row["GIS_X"] or "0").strip(), (row["GIS_Y"] or "0").strip()
            if (float(x or 0) == 0 or float(y or 0) == 0) and not unplaced:
                continue
            kg = out.setdefault(row["DARZ_ID"], {
                "name": row["SCHOOL_NAME"] or row["LABEL"], "address": row["ADDRESS"],
                "gis_x": float(x), "gis_y": float(y), "capacity": 0, "children": 0,
            })
            kg["capacity"] += int(row["CAPACITY"] or 0)
            kg["children"] += int(row["CHILD_COUNT"] or 0)
    return out


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
    """Areas, then the kindergartens (the registry adapter, clock fixed to TODAY 09:00 UTC) and
    the hand-made places, then the audit (fixed `today`)."""
    from ingest.areas import read_areas
    from ingest.mapping import load_mapping
    from ingest.runs import run_registry_files

    conn = connect(db)
    save_areas(conn, read_areas(shared_data / AREAS))
    with mock.patch("directory.clock.now", return_value=datetime(TODAY.year, TODAY.month, TODAY.day, 9, tzinfo=UTC)):
        result = run_registry_files(conn, load_mapping("vilnius-darzeliai"), [shared_data / DARZELIAI],
                                    settings=Settings(db=db), derive=False)
        assert not result.reports[0].rejected, result.reports[0].rejected[:3]
        apply_records(conn, [facility(**fields) for fields in INSTITUTIONS], source="test", scope="hand-made",
                      locator=load_locator(conn))
    audit.recompute(conn, today=TODAY)
    conn.close()
    return db
