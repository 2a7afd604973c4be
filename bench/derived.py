"""Derived data after one changed facility: the incremental refresh against the full rebuild.

On a copy of the synthetic store with the real areas loaded (bench.audit.prepare), with the
derived data current, one run of one record is applied (apply_records, `full=False`) and the
derived data refreshed (`refresh_derived`, no snapshot: it is deferred, ATVIRA_SNAPSHOT_INTERVAL)
three ways in turn: a new facility in central Vilnius, the same facility edited (hours,
features), then moved to another municipality. Each figure is the run plus the refresh. The
baseline, in the same run: the full rebuild (`refresh_derived(force=("map", "audit"))`, what
every run cost before). The snapshot copy is measured apart: it is what the deferral saves.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from directory.areas_store import load_locator
from directory.config import Settings
from directory.derived import refresh_derived
from directory.model import Facility
from directory.snapshots import create_snapshot
from directory.store import connect
from directory.sync import apply_records

from .audit import prepare
from .common import Context, ratio


def _record(**changes) -> Facility:
    base = dict(source="bench-one", source_id="1", name="Vaikų kambarys", categories=["baby_room"],
                lon=25.2797, lat=54.6872, licence="CC-BY-4.0", opening_hours="Mo-Fr 08:00-18:00",
                features={"changing_table": "yes"})
    base.update(changes)
    return Facility(**base)


def run_one(db: Path, *, work: Path) -> dict:
    target, _facts = prepare(db, work / "audit")
    copy = work / "derived.db"
    shutil.copy(target, copy)
    settings = Settings(db=copy, snapshots_dir=work / "snapshots")
    conn = connect(copy)
    locator = load_locator(conn)
    refresh_derived(conn, settings, snapshot=False)
    t = time.perf_counter()
    refresh_derived(conn, settings, snapshot=False, force=("map", "audit"))
    full_s = time.perf_counter() - t
    out: dict = {"facilities": conn.execute("SELECT count(*) FROM facilities").fetchone()[0],
                 "full_rebuild_s": full_s}
    steps = {
        "add": _record(),
        "edit": _record(opening_hours="Mo-Su 09:00-21:00", features={"changing_table": "yes", "seating": "yes"}),
        "move": _record(lon=23.9036, lat=54.8985),  # Kaunas
    }
    for name, rec in steps.items():
        t = time.perf_counter()
        apply_records(conn, [rec], source="bench-one", scope="one", locator=locator, full=False)
        applied = time.perf_counter() - t
        report = refresh_derived(conn, settings, snapshot=False)
        total = time.perf_counter() - t
        out[name] = {"apply_ms": applied * 1000, "total_ms": total * 1000,
                     "parts": {k: round(v * 1000, 1) for k, v in report.done.items()}}
        out[f"ratio_full_to_{name}"] = ratio(full_s * 1000, total * 1000)
    t = time.perf_counter()
    create_snapshot(conn, settings)
    out["snapshot_copy_s"] = time.perf_counter() - t
    conn.close()
    return out


def run(ctx: Context) -> dict:
    size = ctx.sizes[-1]
    with tempfile.TemporaryDirectory(prefix="atvira-derived-") as tmp:
        return {str(size): run_one(ctx.store(size), work=Path(tmp))}


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        steps = " | ".join(f"{k} {r[k]['total_ms']:.0f} ms ({r[f'ratio_full_to_{k}']:.0f}x faster)"
                           for k in ("add", "edit", "move"))
        lines.append(f"derived {int(size):>9,}: one changed facility, run + refresh: {steps}"
                     f" | full rebuild {r['full_rebuild_s']:.2f} s | snapshot copy (deferred) {r['snapshot_copy_s']:.2f} s")
    return "\n".join(lines)
