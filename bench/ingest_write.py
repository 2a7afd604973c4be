"""Ingest, write side alone: `apply_records` fed ready-made Facility records (no parsing).

The records are OpenStreetMap-shaped (source "osm", `node/N` ids, the raw tags kept in
`extra.osm_tags`), made from the same deterministic rows as the synthetic stores, and handed
over as a stream (never a list: the run's peak RSS is the sync's, not the input's). What it
costs to make them is measured alone first and taken off, so each figure is the sync's rate.

floor    : the same rows in store form, one `executemany` INSERT into a fresh store (triggers and
           indexes as any store has them): what writing the rows costs at least
first    : apply_records into a fresh store (with the conflation matcher, as `atvira ingest osm`)
rerun    : the same records again over the result (all unchanged)
Each phase runs in a process of its own, so its peak RSS and its bytes written
(/proc/self/io write_bytes) are its own; bytes written are set against the final store size
(store + WAL). Targets (issue 13): >= 15,000 facilities/s at 100k and 1M, re-run >= 40,000/s,
peak RSS <= 600 MB, bytes written <= 3x the store.

`python -m bench.ingest_write [--sizes 100000,1000000] [--profile]`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from directory.conflate import Thresholds, make_matcher
from directory.model import Facility
from directory.store import connect
from directory.sync import apply_records

from .common import Context, proc_figures, ratio
from .synth import generate_rows

TARGET_RATE = 15_000
TARGET_RERUN = 40_000
TARGET_RSS_MB = 600
TARGET_WRITE_X = 3.0
FETCHED_AT = "2026-01-15T00:00:00Z"
TAGS = {
    "day_centre": {"amenity": "social_facility", "social_facility": "day_care"},
    "kindergarten": {"amenity": "kindergarten"}, "childcare": {"amenity": "childcare"},
    "playground": {"leisure": "playground"}, "indoor_play": {"leisure": "indoor_play"},
    "baby_room": {"changing_table": "yes"}, "toilet": {"amenity": "toilets"},
    "library": {"amenity": "library"}, "community_centre": {"amenity": "community_centre"},
    "townhall": {"amenity": "townhall"}, "culture": {"amenity": "theatre"},
    "school": {"amenity": "school"}, "state_institution": {"office": "government"},
}


def records(size: int, *, seed: int = 1) -> Iterator[Facility]:
    """OSM-shaped records made from the synthetic rows (deterministic for size and seed)."""
    for i, row in enumerate(generate_rows(size, seed=seed)):
        cats = json.loads(row[2])
        tags = {**TAGS.get(cats[0], {}), "name": row[1], "addr:full": row[5]}
        if row[11]:
            tags["opening_hours"] = row[11]
        yield Facility(
            source="osm", source_id=f"node/{i + 1}", name=row[1], categories=cats, lon=row[3], lat=row[4],
            licence="ODbL-1.0", address=row[5], sector=row[9], features=json.loads(row[10]),
            opening_hours=row[11], fetched_at=FETCHED_AT, extra={"osm_tags": tags},
        )


def _store_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def phase(kind: str, db: Path, size: int, *, profile: Path | None = None) -> dict:
    """One measured phase, in this process: what the parent's subprocess runs."""
    if kind == "make":
        start, cpu = time.perf_counter(), time.process_time()
        for _ in records(size):
            pass
        return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}
    conn = connect(db)
    written = proc_figures()["write_bytes"]
    start, cpu = time.perf_counter(), time.process_time()
    if kind == "floor":
        cols = ("id, name, categories, lon, lat, address, municipality_code, eldership_code, operator, sector, "
                "features, opening_hours, status, last_verified, source, source_id, licence, fetched_at, extra,"
                " updated_at")
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO facilities({cols}) VALUES ({', '.join('?' * 20)})", generate_rows(size))
        conn.execute("COMMIT")
        counts: dict = {}
    else:
        matcher = make_matcher(Thresholds())
        if profile is not None:
            import cProfile  # only when asked: the profile of one phase

            prof = cProfile.Profile()
            prof.enable()
        counts = apply_records(conn, records(size), source="osm", scope="bench", matcher=matcher).counts()
        if profile is not None:
            prof.disable()
            prof.dump_stats(str(profile))
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    conn.close()
    return {"seconds": seconds, "cpu": cpu, "counts": counts, "written": proc_figures()["write_bytes"] - written,
            "rss_mb": proc_figures()["peak_rss_kb"] / 1024, "store_bytes": _store_bytes(db)}


def _child(kind: str, db: Path, size: int, profile: Path | None = None) -> dict:
    cmd = [sys.executable, "-m", "bench.ingest_write", "--phase", kind, "--db", str(db), "--sizes", str(size)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_one(size: int, *, work: Path, profile: Path | None = None) -> dict:
    made = _child("make", work / "none.db", size)
    make = made["seconds"]
    floor = _child("floor", work / f"floor-{size}.db", size)
    db = work / f"ingest-{size}.db"
    first = _child("first", db, size, profile and profile.with_suffix(".first.prof"))
    rerun = _child("rerun", db, size, profile and profile.with_suffix(".rerun.prof"))
    store = first["store_bytes"]
    return {
        "facilities": size,
        "make_seconds": make,
        "floor_per_s": size / floor["seconds"],
        "first_per_s": size / max(1e-9, first["seconds"] - make),
        "rerun_per_s": size / max(1e-9, rerun["seconds"] - make),
        "first_rss_mb": first["rss_mb"], "rerun_rss_mb": rerun["rss_mb"],
        "first_written_x": first["written"] / store, "rerun_written_x": rerun["written"] / store,
        "floor_written_x": floor["written"] / floor["store_bytes"],
        "store_mb": store / 1e6,
        # by CPU time (this process only): steadier than the wall clock on a shared machine
        "floor_cpu_per_s": size / floor["cpu"],
        "first_cpu_per_s": size / max(1e-9, first["cpu"] - made["cpu"]),
        "rerun_cpu_per_s": size / max(1e-9, rerun["cpu"] - made["cpu"]),
        "first_counts": first["counts"], "rerun_counts": rerun["counts"],
    }


def run(ctx: Context) -> dict:
    sizes = [5_000] if ctx.quick else ctx.sizes  # quick: a smoke run (bench --quick stays under a minute)
    with tempfile.TemporaryDirectory(prefix="atvira-bench-write-") as tmp:
        return {str(size): run_one(size, work=Path(tmp)) for size in sizes}


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        lines.append(
            f"ingest_write {int(size):>9,}: first {r['first_per_s']:,.0f}/s (target {TARGET_RATE:,}: "
            f"{_mark(r['first_per_s'] >= TARGET_RATE)}; floor executemany {r['floor_per_s']:,.0f}/s,"
            f" {ratio(r['floor_per_s'], r['first_per_s']):.2f}x) | re-run {r['rerun_per_s']:,.0f}/s (target"
            f" {TARGET_RERUN:,}: {_mark(r['rerun_per_s'] >= TARGET_RERUN)}) | peak RSS {r['first_rss_mb']:.0f} /"
            f" {r['rerun_rss_mb']:.0f} MB (target {TARGET_RSS_MB}: "
            f"{_mark(max(r['first_rss_mb'], r['rerun_rss_mb']) <= TARGET_RSS_MB)}) | written"
            f" {r['first_written_x']:.2f}x the {r['store_mb']:.0f} MB store (re-run {r['rerun_written_x']:.2f}x,"
            f" floor {r['floor_written_x']:.2f}x; target {TARGET_WRITE_X:g}x:"
            f" {_mark(r['first_written_x'] <= TARGET_WRITE_X)})"
            f" | making the records {r['make_seconds']:.1f} s, taken off | by CPU time: first"
            f" {r['first_cpu_per_s']:,.0f}/s, re-run {r['rerun_cpu_per_s']:,.0f}/s, floor {r['floor_cpu_per_s']:,.0f}/s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_write", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--phase", choices=("make", "floor", "first", "rerun"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of each sync phase here")
    parser.add_argument("--work", type=Path, default=None, help="keep the stores here (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.phase:
        print(json.dumps(phase(args.phase, args.db, sizes[0], profile=args.profile)))
        return 0
    with tempfile.TemporaryDirectory(prefix="atvira-bench-write-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = {str(size): run_one(size, work=work, profile=args.profile) for size in sizes}
    print(report(result), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
