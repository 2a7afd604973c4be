"""Derived data after one changed facility: the incremental refresh against the full rebuild.

    python -m bench --only derived [--sizes 100000 1000000]
    python -m bench.derived --db bench/stores/synth-1000000-1.db [--work bench/stores] [--repeat 5]

On a copy of the synthetic store with the real areas loaded (bench.audit.prepare, whose copy is
kept beside the stores and shared with bench.audit), with the derived data current, runs of one
record go through the real run function (`apply_records(full=False)` then `refresh_derived`,
what an approved contribution does) three ways in turn: a new facility in central Vilnius (the
municipality holding ~20% of the synthetic store), the same facility edited (hours, features),
then moved to Kaunas (another municipality). Each is repeated `--repeat` times (a new facility
each round) and the median is reported, split per part:

apply      : apply_records without the ready text (upsert, triggers, change log, run row)
ready text : directory.ready.refresh_ready for the changed facility (inside apply_records)
scan       : the change-log reads of refresh_derived (changed_since for the grid, audit_changed)
grid       : the map grid cells moved (clusters.update_grid) and the credited sources
extent     : the stored extent grown or recomputed (derived._update_extent)
audit      : audit.update (the facility's fact row, per-area sums, its kinds' indicators,
             worst records, checklist)
cluster    : social_cluster.update
snapshot   : the snapshot bookkeeping: is one due, has ATVIRA_SNAPSHOT_INTERVAL passed (it has
             not: the copy is deferred, and stays due until the first refresh after the interval)
other      : the rest (meta reads and writes, transactions, commits)

The baseline, in the same run: the full rebuild (`refresh_derived(force=("map", "audit"))`,
what every run cost before). The snapshot copy (VACUUM INTO) is measured apart: it is what the
deferral saves each change.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from directory import derived, sync
from directory.areas_store import load_locator
from directory.config import Settings
from directory.derived import refresh_derived
from directory.model import Facility
from directory.snapshots import create_snapshot
from directory.store import connect
from directory.sync import apply_records

from .audit import prepare
from .common import Context, ratio, store_bench_main

TARGET_MS = 300.0  # issue 13: one changed facility at 1M, grid, audit and snapshot bookkeeping included
STEPS = ("add", "edit", "move")
# (module, attribute, part): the functions timed inside the run function, patched for the bench only.
TIMED = (
    (sync, "refresh_ready", "ready text"),
    (derived, "changed_since", "scan"),
    (derived, "audit_changed", "scan"),
    (derived, "update_grid", "grid"),
    (derived, "refresh_map_sources", "grid"),
    (derived, "_update_extent", "extent"),
    (derived.audit, "update", "audit"),
    (derived.social_cluster, "update", "cluster"),
    (derived, "_snapshot_due", "snapshot"),
    (derived, "_interval_passed", "snapshot"),
)


class Parts:
    """Time spent in each TIMED function while installed (nested calls are not double counted:
    none of the TIMED functions calls another)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._saved: list[tuple[Any, str, Callable]] = []

    def __enter__(self) -> Parts:
        for module, name, part in TIMED:
            original = getattr(module, name)
            self._saved.append((module, name, original))
            setattr(module, name, self._timed(original, part))
        return self

    def __exit__(self, *exc: object) -> None:
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)

    def _timed(self, fn: Callable, part: str) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - t
        return wrapper


def _record(i: int, **changes: Any) -> Facility:
    base = dict(source="bench-one", source_id=str(i), name=f"Vaikų kambarys {i}", categories=["baby_room"],
                lon=25.2797, lat=54.6872, licence="CC-BY-4.0", opening_hours="Mo-Fr 08:00-18:00",
                features={"changing_table": "yes"})
    base.update(changes)
    return Facility(**base)


def _steps(i: int) -> dict[str, Facility]:
    return {
        "add": _record(i),
        "edit": _record(i, opening_hours="Mo-Su 09:00-21:00", features={"changing_table": "yes", "seating": "yes"}),
        "move": _record(i, lon=23.9036, lat=54.8985),  # Kaunas
    }


def one_change(conn, settings: Settings, locator, rec: Facility) -> dict[str, float]:
    """One run of one record through the run function; ms per part."""
    with Parts() as parts:
        t = time.perf_counter()
        apply_records(conn, [rec], source="bench-one", scope="one", locator=locator, full=False)
        applied = time.perf_counter() - t
        refresh_derived(conn, settings)
        total = time.perf_counter() - t
    out = {"total": total, "apply": applied - parts.seconds.get("ready text", 0.0), **parts.seconds}
    out["other"] = total - sum(v for k, v in out.items() if k != "total")
    return {k: round(v * 1000, 2) for k, v in out.items()}


def run_one(db: Path, *, work: Path, repeat: int = 5) -> dict:
    target, facts = prepare(db, work)
    with tempfile.TemporaryDirectory(prefix="atvira-derived-", dir=work) as tmp:
        copy = Path(tmp) / "derived.db"
        shutil.copy(target, copy)
        # the snapshot copy is deferred: a change costs only the check that it is due
        settings = Settings(db=copy, snapshots_dir=Path(tmp) / "snapshots", snapshot_interval=24 * 3600)
        conn = connect(copy)
        locator = load_locator(conn)
        refresh_derived(conn, settings, snapshot=False)
        t = time.perf_counter()
        refresh_derived(conn, settings, snapshot=False, force=("map", "audit"))
        full_s = time.perf_counter() - t
        t = time.perf_counter()
        create_snapshot(conn, settings)
        snapshot_s = time.perf_counter() - t
        out: dict = {"facilities": conn.execute("SELECT count(*) FROM facilities").fetchone()[0],
                     "vilnius": conn.execute("SELECT count(*) FROM facilities WHERE municipality_code = '13'"
                                             ).fetchone()[0],
                     "full_rebuild_s": round(full_s, 2), "snapshot_copy_s": round(snapshot_s, 2),
                     "repeat": repeat, **facts}
        rounds: dict[str, list[dict[str, float]]] = {s: [] for s in STEPS}
        for i in range(repeat):
            for name, rec in _steps(i).items():
                rounds[name].append(one_change(conn, settings, locator, rec))
        assert refresh_derived(conn, settings, snapshot=False).done == {}, "the refresh left something stale"
        conn.close()
    for name, runs in rounds.items():
        parts = sorted({k for r in runs for k in r}, key=lambda k: (k != "total", k))
        out[name] = {k: round(statistics.median(r.get(k, 0.0) for r in runs), 2) for k in parts}
        out[name]["max_total"] = max(r["total"] for r in runs)
        out[f"ratio_full_to_{name}"] = ratio(full_s * 1000, out[name]["total"])
    return out


def run(ctx: Context) -> dict:
    """For `python -m bench`: every size of the run (prepared copies kept beside the stores)."""
    repeat = 3 if ctx.quick else 5
    return {str(size): run_one(ctx.store(size), work=ctx.stores, repeat=repeat) for size in ctx.sizes}


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        target = f" (target <= {TARGET_MS:.0f} ms at 1M)" if int(size) >= 1_000_000 else ""
        lines.append(f"derived {int(size):>9,}: one changed facility, run + refresh, median of {r['repeat']}{target}:"
                     f" full rebuild {r['full_rebuild_s']:.1f} s, snapshot copy (deferred) {r['snapshot_copy_s']:.1f} s")
        for step in STEPS:
            s = r[step]
            parts = ", ".join(f"{k} {v:.1f}" for k, v in s.items() if k not in ("total", "max_total"))
            lines.append(f"  {step:<5} {s['total']:7.1f} ms (max {s['max_total']:.0f};"
                         f" {r[f'ratio_full_to_{step}']:.0f}x faster than the full rebuild): {parts}")
    return "\n".join(lines)


def _run_one(db: Path, *, work: Path, repeat: int) -> dict:
    return {str(db.stem): run_one(db, work=work, repeat=repeat)}


def _report(result: dict) -> str:
    return report({k.split("-")[1]: v for k, v in result.items()})


if __name__ == "__main__":
    sys.exit(store_bench_main(sys.argv[1:], prog="python -m bench.derived", doc=__doc__, run_one=_run_one,
                              report=_report))
