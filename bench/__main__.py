"""Run the benchmarks: `python -m bench [--quick] [--sizes 100000,1000000]`.

Each prints its figures and the ratio against a baseline measured in the same run, and the
whole run is written to bench/results/latest.json. Synthetic stores are cached in bench/stores/.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from . import audit, bbox, export, page
from .synth import cached_store

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10k facilities, fewer repeats (under a minute)")
    parser.add_argument("--sizes", default=None, help="comma-separated store sizes (default 100000,1000000)")
    parser.add_argument("--stores", type=Path, default=HERE / "stores", help="where synthetic stores are cached")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([10_000] if args.quick else [100_000, 1_000_000])
    repeat = 50 if args.quick else 200
    started = time.perf_counter()
    results: dict = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "cpu": platform.processor() or platform.machine()},
        "quick": args.quick,
        "bbox": {},
    }
    for size in sizes:
        db = cached_store(args.stores, size)
        r = bbox.run(db, repeat=repeat)
        results["bbox"][str(size)] = r
        print(bbox.report(size, r), flush=True)
    results["audit"] = audit.run(db, work=args.stores, repeat=repeat // 2)  # the largest size
    print(audit.report(results["audit"]), flush=True)
    results["page"] = page.run(cached_store(args.stores, max(sizes)), workdir=args.stores, repeat=3 if args.quick else 5)
    print(page.report(results["page"]), flush=True)
    results["export"] = export.run(cached_store(args.stores, sizes[-1]), repeat=1 if args.quick else 2)
    print(export.report(results["export"]), flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out} ({results['seconds']}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
