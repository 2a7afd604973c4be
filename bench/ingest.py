"""Ingest rate: facilities per second from Overpass JSON bytes to a committed store.

The input is an Overpass JSON document synthesised from the same deterministic rows as the
synthetic stores (nodes tagged the way OSM tags each category, Lithuanian names and
addresses), so the run needs no network and is the same every time.

floor    : the same rows, already in store form, written by one `executemany` INSERT in one
           transaction into a fresh store (the R*Tree and FTS5 triggers fire as in any ingest)
ingest   : parse_overpass_json + element_to_facility + apply_records (validation, area
           assignment skipped: no areas loaded, content hashes, change log, provenance) into a
           fresh store: what `atvira ingest osm FILE.json` does
reingest : the same input again over the result (every record unchanged: the idempotent path)
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from directory.store import connect
from directory.sync import apply_records
from ingest import osm

from .common import Context, ratio
from .synth import generate_rows

# One OSM tagging per category (what the tag table in ingest.osm maps back to that category).
CATEGORY_TAGS: dict[str, dict[str, str]] = {
    "day_centre": {"amenity": "social_facility", "social_facility": "day_care"},
    "kindergarten": {"amenity": "kindergarten"},
    "childcare": {"amenity": "childcare"},
    "playground": {"leisure": "playground"},
    "indoor_play": {"leisure": "indoor_play"},
    "baby_room": {"changing_table": "yes", "changing_table:location": "dedicated_room"},
    "toilet": {"amenity": "toilets"},
    "library": {"amenity": "library"},
    "community_centre": {"amenity": "community_centre"},
    "townhall": {"amenity": "townhall"},
    "culture": {"amenity": "theatre"},
}
SIZES_QUICK = 10_000
SIZES_FULL = 100_000
FETCHED_AT = "2026-01-15T00:00:00Z"


def overpass_document(size: int, *, seed: int = 1) -> bytes:
    """An `out center tags` style Overpass answer with `size` nodes (deterministic)."""
    elements = []
    for i, row in enumerate(generate_rows(size, seed=seed)):
        name, cats, lon, lat, address = row[1], json.loads(row[2]), row[3], row[4], row[5]
        street, _, number = address.rpartition(" ")
        tags = {**CATEGORY_TAGS[cats[0]], "name": name, "addr:street": street, "addr:housenumber": number}
        if row[11]:
            tags["opening_hours"] = row[11]
        for feature, value in json.loads(row[10]).items():
            if feature == "wheelchair":
                tags["wheelchair"] = value
        elements.append({"type": "node", "id": i + 1, "lat": lat, "lon": lon, "tags": tags})
    return json.dumps({"version": 0.6, "generator": "atvira bench", "elements": elements},
                      ensure_ascii=False).encode("utf-8")


def _ingest(db: Path, payload: bytes) -> tuple[float, float, dict]:
    """Seconds to parse, seconds for the whole ingest, and the report counts."""
    conn = connect(db)
    start = time.perf_counter()
    elements = list(osm.parse_overpass_json(payload, where="bench", keep=osm.is_of_interest))
    records = [r for r in (osm.element_to_facility(el, fetched_at=FETCHED_AT) for el in elements) if r is not None]
    parsed = time.perf_counter() - start
    report = apply_records(conn, records, source="osm", scope="bench")
    total = time.perf_counter() - start
    conn.close()
    return parsed, total, report.counts()


def _floor(db: Path, size: int) -> float:
    conn = connect(db)
    cols = ("id, name, categories, lon, lat, address, municipality_code, eldership_code, operator, sector, "
            "features, opening_hours, status, last_verified, source, source_id, licence, fetched_at, extra, updated_at")
    sql = f"INSERT INTO facilities({cols}) VALUES ({', '.join('?' * 20)})"
    rows = list(generate_rows(size))
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(sql, rows)
    conn.execute("COMMIT")
    took = time.perf_counter() - start
    conn.close()
    return took


def run_one(size: int) -> dict:
    payload = overpass_document(size)
    with tempfile.TemporaryDirectory(prefix="atvira-bench-") as tmp:
        floor = _floor(Path(tmp) / "floor.db", size)
        parsed, total, counts = _ingest(Path(tmp) / "ingest.db", payload)
        _, again, again_counts = _ingest(Path(tmp) / "ingest.db", payload)
    return {
        "facilities": size,
        "payload_mb": round(len(payload) / 1e6, 1),
        "floor_per_s": size / floor,
        "ingest_per_s": size / total,
        "parse_per_s": size / parsed,
        "reingest_per_s": size / again,
        "ingest_seconds": total,
        "counts": counts,
        "reingest_counts": again_counts,
        "ratio_floor_to_ingest": ratio(size / floor, size / total),
    }


def run(ctx: Context) -> dict:
    size = SIZES_QUICK if ctx.quick else SIZES_FULL
    return {str(size): run_one(size)}


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        lines.append(
            f"ingest {int(size):>7,}: {r['ingest_per_s']:,.0f} facilities/s from Overpass JSON ({r['payload_mb']} MB;"
            f" parse alone {r['parse_per_s']:,.0f}/s) | floor executemany {r['floor_per_s']:,.0f}/s"
            f" ({r['ratio_floor_to_ingest']:.1f}x faster) | re-ingest unchanged {r['reingest_per_s']:,.0f}/s"
            f" | {r['counts']['added']} added, re-run {r['reingest_counts']['unchanged']} unchanged"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from .__main__ import main

    raise SystemExit(main(["--only", "ingest", *sys.argv[1:]]))
