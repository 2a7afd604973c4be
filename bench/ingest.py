"""Ingest rate: facilities per second from an OSM file to a committed store, per size and format.

The inputs are synthesised from the same deterministic rows as the synthetic stores
(`bench.synth.generate_rows`): the same facilities as an Overpass `out center` answer (JSON laid
out as Overpass prints it) and as an OSM PBF extract (nodes, and ~15% of the facilities as
closed ways whose bounding-box centre is the facility's point, plus untagged way nodes and
tagged places no rule maps, as a real extract has; every element with a version, a changeset
and a timestamp, as extracts cut from the OSM database carry them). Both are cached under the
stores directory (`ingest-<size>.json`, `ingest-<size>-v2.osm.pbf`: v2 carries versions, so an
older cached PBF without them is never reused) so later runs skip the writing.

Each case runs in a child process of its own, so its peak RSS (VmHWM) and its bytes written
(/proc/self/io) are its own:

parse    : read_elements + element_to_facility alone (no store): the read side
ingest   : `ingest.runs.run_osm` on a fresh store, including `refresh_derived` (map grid, audit,
           snapshot copy), as `atvira ingest osm FILE` does on a user's first run
rerun    : the same again over the result (every record unchanged: the idempotent path)
floor    : the same rows, in store form, written by plain `executemany` INSERTs (20,000 a
           transaction) into a fresh store (the R*Tree and FTS5 triggers fire as in any ingest)

Targets (issue 13): ingest >= 15,000 facilities/s at 100k and 1M from both formats; the
unchanged re-run >= 40,000/s; peak RSS <= 600 MB; bytes written <= 3x the final store size
(bytes written: /proc write_bytes, the pages the run dirtied, i.e. what reaches the disk; the
volume of write() calls, which counts SQLite's cache spills again and again, is shown beside).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from directory.model import CATEGORIES

from .common import Context, proc_figures, ratio
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
    "school": {"amenity": "school"},
    "state_institution": {"office": "government", "government": "tax"},
}
assert set(CATEGORY_TAGS) == set(CATEGORIES), "every category needs a bench tagging"
# Mapped as areas (closed ways) one time in AREA_EVERY, as OSM maps many of them.
AREA_CATEGORIES = {"playground", "school", "kindergarten", "community_centre"}
AREA_EVERY = 2
NOISE_EVERY = 4  # PBF only: one tagged element no rule maps (a bench, a shop) per 4 facilities
NOISE_TAGS = ({"amenity": "bench"}, {"shop": "bakery", "name": "Kepyklėlė"}, {"amenity": "parking"},
              {"highway": "bus_stop", "name": "Stotelė"})
OPERATORS = ("UAB „Vaikystė“", "Vilniaus miesto savivaldybė", "VšĮ „Šypsena“", None, None, None)
HALF = 0.0002  # an area's half-size in degrees (on the 1e-7 grid OSM stores)
WAY_NODE_BASE = 10**9  # ids of the untagged nodes areas are drawn with
FORMATS = ("json", "pbf")
PBF_NAME = "ingest-{size}-v2.osm.pbf"  # v2: with versions (see write_pbf)
EDITED_AT = "2025-06-01T12:00:00Z"  # every element's timestamp in the PBF
FETCHED_AT = "2026-01-15T00:00:00Z"
TARGETS = {"ingest_per_s": 15_000, "rerun_per_s": 40_000, "peak_rss_mb": 600, "written_x_store": 3.0,
           "parse_per_s": 60_000}


# --------------------------------------------------------------------------- the inputs


def facilities(size: int, *, seed: int = 1) -> Iterator[dict[str, Any]]:
    """The facilities both inputs describe: type, id, tags, lon, lat (deterministic)."""
    for i, row in enumerate(generate_rows(size, seed=seed)):
        name, cats, lon, lat, address = row[1], json.loads(row[2]), row[3], row[4], row[5]
        street, _, number = address.rpartition(" ")
        cat = cats[0]
        tags = {**CATEGORY_TAGS[cat], "name": name, "addr:street": street, "addr:housenumber": number,
                "addr:city": "Vilnius"}
        if row[11]:
            tags["opening_hours"] = row[11]
        for feature, value in json.loads(row[10]).items():
            if feature in ("wheelchair", "changing_table"):
                tags.setdefault(feature, value)  # a baby room's changing_table=yes stays
        operator = OPERATORS[i % len(OPERATORS)]
        if operator:
            tags["operator"] = operator
        if i % 7 == 0:
            tags["website"] = f"https://pavyzdys.lt/{i}"
        area = cat in AREA_CATEGORIES and i % AREA_EVERY == 0
        yield {"type": "way" if area else "node", "id": i + 1, "tags": tags, "lon": lon, "lat": lat}


def write_json(path: Path, size: int) -> None:
    """An Overpass `out center tags;` answer, laid out the way Overpass prints it."""
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write('{\n  "version": 0.6,\n  "generator": "Overpass API 0.7.62 (atvira bench)",\n  "osm3s": {\n'
                 '    "timestamp_osm_base": "2026-01-15T00:00:00Z",\n    "copyright": "The data included in this'
                 ' document is from www.openstreetmap.org. The data is made available under ODbL."\n  },\n'
                 '  "elements": [\n')
        for n, f in enumerate(facilities(size)):
            if f["type"] == "node":
                el = {"type": "node", "id": f["id"], "lat": f["lat"], "lon": f["lon"], "tags": f["tags"]}
            else:
                el = {"type": "way", "id": f["id"], "center": {"lat": f["lat"], "lon": f["lon"]}, "tags": f["tags"]}
            fh.write(("," if n else "") + "\n" + json.dumps(el, indent=2, ensure_ascii=False))
        fh.write("\n\n  ]\n}\n")
    tmp.replace(path)


def _meta(el_id: int) -> dict[str, Any]:
    """An element's metadata as an extract of the OSM database carries it (deterministic): a
    version, the changeset that wrote it, a timestamp (ingest.osm keys a re-run by the first two)."""
    return {"version": 1 + el_id % 7, "changeset": 100_000 + el_id // 64, "timestamp": EDITED_AT}


def write_pbf(path: Path, size: int) -> None:
    """The same facilities as an extract: nodes (with noise) in id order, then the areas' ways,
    each with a version, a changeset and a timestamp (_meta)."""
    import osmium  # the bench's own import: only the PBF writer needs it here

    tmp = path.with_name(path.name + ".part.osm.pbf")
    tmp.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(tmp))
    ways: list[tuple[int, dict[str, str], float, float]] = []
    noise_id = 2 * WAY_NODE_BASE
    try:
        for f in facilities(size):
            if f["type"] == "node":
                writer.add_node(osmium.osm.mutable.Node(id=f["id"], location=(f["lon"], f["lat"]), tags=f["tags"],
                                                        **_meta(f["id"])))
            else:
                ways.append((f["id"], f["tags"], f["lon"], f["lat"]))
        for n, f in enumerate(facilities(size // NOISE_EVERY, seed=2)):
            writer.add_node(osmium.osm.mutable.Node(id=noise_id + n, location=(f["lon"], f["lat"]),
                                                    tags=NOISE_TAGS[n % len(NOISE_TAGS)], **_meta(noise_id + n)))
        for k, (_, _, lon, lat) in enumerate(ways):
            base = WAY_NODE_BASE + 4 * k
            for j, (dx, dy) in enumerate(((-1, -1), (1, -1), (1, 1), (-1, 1))):
                writer.add_node(osmium.osm.mutable.Node(
                    id=base + j, location=(round(lon + dx * HALF, 7), round(lat + dy * HALF, 7)), **_meta(base + j)))
        for k, (way_id, tags, _, _) in enumerate(ways):
            base = WAY_NODE_BASE + 4 * k
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=[base, base + 1, base + 2, base + 3, base],
                                                  tags=tags, **_meta(way_id)))
    finally:
        writer.close()
    tmp.replace(path)


def cached_input(directory: Path, size: int, fmt: str) -> Path:
    """The synthetic input of `size` facilities in `fmt`, written once and reused."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (f"ingest-{size}.json" if fmt == "json" else PBF_NAME.format(size=size))
    marker = directory / f"{path.name}.ok"
    if not (path.exists() and marker.exists()):
        started = time.perf_counter()
        (write_json if fmt == "json" else write_pbf)(path, size)
        marker.write_text(f"{time.perf_counter() - started:.1f}s\n")
    return path


# --------------------------------------------------------------------------- the cases (child side)


def _store_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def case_parse(path: Path) -> dict:
    from ingest import osm

    started = time.perf_counter()
    n = 0
    for el in osm.read_elements(path, keep=osm.is_of_interest):
        if osm.element_to_facility(el, fetched_at=FETCHED_AT) is not None:
            n += 1
    return {"facilities": n, "seconds": time.perf_counter() - started}


class _TimedConnection(sqlite3.Connection):
    """The run's writer connection, adding up the CPU time spent inside its execute and
    executemany calls: the store's writes and the derived data's statements (all of an ingest's
    SQLite work but the reads it makes through cursors, a small share on a first run). Without
    any Python, an ingest could go no faster than its rows over this time."""

    sql_seconds = 0.0

    def _timed(self, call: Callable[..., sqlite3.Cursor], *args: Any) -> sqlite3.Cursor:
        started = time.thread_time()
        try:
            return call(*args)
        finally:
            self.sql_seconds += time.thread_time() - started

    def execute(self, *args: Any) -> sqlite3.Cursor:
        return self._timed(super().execute, *args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        return self._timed(super().executemany, *args)


def case_ingest(path: Path, db: Path) -> dict:
    from directory.config import Settings
    from directory.store import connect
    from ingest.runs import run_osm

    settings = Settings(db=db, snapshots_dir=db.parent / "snapshots", cache_dir=db.parent / "cache")
    before = proc_figures()
    conn = connect(db, factory=_TimedConnection)
    conn.sql_seconds = 0.0  # the migrations of a new store are not the run's
    started, cpu = time.perf_counter(), time.process_time()
    result = run_osm(conn, settings=settings, files=[path])
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    after = proc_figures()
    (report,) = result.reports
    derived = result.derived.done if result.derived is not None else {}
    return {"seconds": took, "cpu_s": cpu, "sql_cpu_s": conn.sql_seconds, "counts": report.counts(),
            "derived": {k: round(v, 2) for k, v in derived.items()},
            "wchar": after["wchar"] - before["wchar"], "write_bytes": after["write_bytes"] - before["write_bytes"],
            "store_bytes": _store_bytes(db)}


def case_floor(size: int, db: Path) -> dict:
    from directory.store import connect

    cols = ("id, name, categories, lon, lat, address, municipality_code, eldership_code, operator, sector, "
            "features, opening_hours, status, last_verified, source, source_id, licence, fetched_at, extra, updated_at")
    sql = f"INSERT INTO facilities({cols}) VALUES ({', '.join('?' * 20)})"
    conn = connect(db)
    before = proc_figures()
    rows = generate_rows(size)
    started = time.perf_counter()
    while chunk := [r for _, r in zip(range(20_000), rows)]:
        conn.execute("BEGIN")
        conn.executemany(sql, chunk)
        conn.execute("COMMIT")
    took = time.perf_counter() - started
    conn.close()
    after = proc_figures()
    return {"seconds": took, "wchar": after["wchar"] - before["wchar"],
            "write_bytes": after["write_bytes"] - before["write_bytes"], "store_bytes": _store_bytes(db)}


def child(argv: list[str]) -> int:
    """`python -m bench.ingest --child CASE ARGS...`: one case, its figures as a JSON line."""
    kind, *args = argv
    if kind == "parse":
        out = case_parse(Path(args[0]))
    elif kind == "ingest":
        out = case_ingest(Path(args[0]), Path(args[1]))
    elif kind == "floor":
        out = case_floor(int(args[0]), Path(args[1]))
    else:
        raise SystemExit(f"unknown case {kind}")
    out.update(proc_figures())
    print(json.dumps(out))
    return 0


def _in_child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "bench.ingest", "--child", *args], capture_output=True,
                          text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.ingest child {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the run


def run_one(size: int, *, stores: Path, formats: tuple[str, ...] = FORMATS) -> dict:
    out: dict[str, Any] = {"facilities": size}
    with tempfile.TemporaryDirectory(prefix="atvira-bench-ingest-", dir=stores) as tmp:
        floor = _in_child("floor", str(size), str(Path(tmp) / "floor.db"))
        out["floor"] = {"per_s": size / floor["seconds"], "peak_rss_mb": floor["peak_rss_kb"] / 1024,
                        "written_x_store": floor["write_bytes"] / floor["store_bytes"]}
        for fmt in formats:
            path = cached_input(stores, size, fmt)
            parse = _in_child("parse", str(path))
            db = Path(tmp) / f"ingest-{fmt}" / "atvira.db"
            db.parent.mkdir()
            first = _in_child("ingest", str(path), str(db))
            again = _in_child("ingest", str(path), str(db))
            out[fmt] = {
                "input_mb": round(path.stat().st_size / 1e6, 1),
                "parse_per_s": parse["facilities"] / parse["seconds"],
                "parse_facilities": parse["facilities"],
                "parse_peak_rss_mb": parse["peak_rss_kb"] / 1024,
                "ingest_per_s": size / first["seconds"],
                "ingest_seconds": first["seconds"],
                "ingest_cpu_s": first["cpu_s"],
                "ingest_sql_cpu_s": first["sql_cpu_s"],
                # the rate if everything but SQLite's statements cost nothing (see _TimedConnection)
                "sql_bound_per_s": size / max(first["sql_cpu_s"], 1e-9),
                "peak_rss_mb": first["peak_rss_kb"] / 1024,
                "written_mb": first["wchar"] / 1e6,
                "written_disk_mb": first["write_bytes"] / 1e6,
                "store_mb": first["store_bytes"] / 1e6,
                # what reached the disk (write_bytes: pages dirtied) against the final store;
                # wchar (every write() call, SQLite's cache spills included) shown beside it
                "written_x_store": first["write_bytes"] / first["store_bytes"],
                "derived": first["derived"],
                "counts": first["counts"],
                "rerun_per_s": size / again["seconds"],
                "rerun_peak_rss_mb": again["peak_rss_kb"] / 1024,
                "rerun_counts": again["counts"],
                "floor_x_ingest": ratio(out["floor"]["per_s"], size / first["seconds"]),
            }
            shutil.rmtree(db.parent)  # a 1M store and its snapshot are GBs: one format's at a time
    return out


def run(ctx: Context) -> dict:
    # quick: 10k from Overpass JSON only (keeps `bench --quick` under a minute)
    formats = ("json",) if ctx.quick else FORMATS
    return {str(size): run_one(size, stores=ctx.stores, formats=formats) for size in ctx.sizes}


def _mark(value: float, target: float, *, at_most: bool = False) -> str:
    ok = value <= target if at_most else value >= target
    return "met" if ok else "NOT met"


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        fl = r["floor"]
        lines.append(f"ingest {int(size):>9,}: floor executemany {fl['per_s']:,.0f} rows/s"
                     f" (peak RSS {fl['peak_rss_mb']:.0f} MB, wrote {fl['written_x_store']:.1f}x its store to disk)")
        for fmt in FORMATS:
            if fmt not in r:
                continue
            x = r[fmt]
            lines.append(
                f"  {fmt:<4} ({x['input_mb']} MB): parse+map {x['parse_per_s']:,.0f}/s (aim >= 60,000:"
                f" {_mark(x['parse_per_s'], TARGETS['parse_per_s'])}; RSS {x['parse_peak_rss_mb']:.0f} MB)"
                f" | ingest {x['ingest_per_s']:,.0f}/s (target >= 15,000: {_mark(x['ingest_per_s'], 15_000)};"
                f" floor {x['floor_x_ingest']:.1f}x faster)"
                f" | re-run unchanged {x['rerun_per_s']:,.0f}/s (target >= 40,000: {_mark(x['rerun_per_s'], 40_000)})")
            lines.append(
                f"       peak RSS {x['peak_rss_mb']:.0f} MB (target <= 600: {_mark(x['peak_rss_mb'], 600, at_most=True)})"
                f" | wrote {x['written_disk_mb']:,.0f} MB to disk = {x['written_x_store']:.1f}x the final store of"
                f" {x['store_mb']:,.0f} MB (target <= 3x: {_mark(x['written_x_store'], 3.0, at_most=True)};"
                f" write() calls {x['written_mb']:,.0f} MB)"
                f" | {x['counts']['added']:,} added, re-run {x['rerun_counts']['unchanged']:,} unchanged"
                f" | derived {x['derived']}")
            if "sql_bound_per_s" in x:
                lines.append(
                    f"       CPU {x['ingest_cpu_s']:.1f} s, of it {x['ingest_sql_cpu_s']:.1f} s inside SQLite statements:"
                    f" with no Python at all at most {x['sql_bound_per_s']:,.0f}/s")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        raise SystemExit(child(sys.argv[2:]))
    from .__main__ import main

    raise SystemExit(main(["--only", "ingest", *sys.argv[1:]]))
