"""Run the benchmarks: `python -m bench [--quick] [--sizes 100000,1000000] [--only a,b] [--skip c]`.

Each benchmark prints its figures and the ratio against a baseline measured in the same run,
and the whole run is written to bench/results/latest.json (one key per benchmark).

Adding a benchmark is one line in BENCHMARKS: a name and a module exposing
`run(ctx: Context) -> dict` (the figures, JSON-able) and `report(result: dict) -> str` (what to
print). Modules are imported lazily, so one whose optional tool is missing (wrk, Datasette)
is reported as skipped instead of breaking the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sqlite3
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from .common import Context

HERE = Path(__file__).resolve().parent

# name -> module. One line per benchmark; the order is the order they run in.
BENCHMARKS: dict[str, str] = {
    "bbox": "bench.bbox",      # bbox API latency vs the raw R*Tree query (in-process and HTTP)
    "fts": "bench.fts",        # text search latency vs the raw FTS5 query
    "ingest": "bench.ingest",  # OSM JSON and PBF: parse alone, whole run, re-run, peak RSS, bytes written vs executemany
    "ingest_write": "bench.ingest_write",  # apply_records alone (no parsing): first run and re-run vs executemany
    "load": "bench.load",      # wrk against gunicorn vs Datasette on the same file and query
    "page": "bench.page",      # map page bytes (10 vs N facilities) and time to first markers in Chromium
    "export": "bench.export",  # whole-dataset CSV/GeoJSON export time and peak RSS vs sqlite3 -csv
    "audit": "bench.audit",    # /audit and /audit/<code> p50 from stored indicators, and the recompute
    "abuse": "bench.abuse",    # plain bbox p99 alone vs beside 8 abusive requests, and the server's peak RSS
    "moderate": "bench.moderate",  # /moderate p50 with 10,000 pending vs a plain SELECT; submissions per second
    "derived": "bench.derived",  # one changed facility: incremental grid + audit vs the full rebuild
    "cluster": "bench.cluster",  # /cluster and /cluster/<code> p50 from stored figures, and the recompute
    "serve_cpu": "bench.serve_cpu",  # server CPU per bbox request by phase, fast path vs old, pinned gunicorn
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k facilities, fewer repeats, short load (under a minute)")
    parser.add_argument("--sizes", default=None, help="comma-separated store sizes (default 100000,1000000; quick: 10000)")
    parser.add_argument("--stores", type=Path, default=HERE / "stores", help="where synthetic stores are cached")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([10_000] if args.quick else [100_000, 1_000_000])
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    names = [n for n in names if n not in set(args.skip.split(","))]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    ctx = Context(quick=args.quick, sizes=sizes, stores=args.stores)
    started = time.perf_counter()
    results: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                    "cpu": platform.processor() or platform.machine()},
        "quick": args.quick,
        "sizes": sizes,
        "note": "shared machine: figures are noisy; compare ratios measured in the same run",
    }
    failed: list[str] = []
    for name in names:
        t = time.perf_counter()
        try:
            module = importlib.import_module(BENCHMARKS[name])
            result = module.run(ctx)
            print(module.report(result), flush=True)
        except ImportError as exc:  # an optional tool or package is missing: say so, run the others
            result = {"skipped": f"{type(exc).__name__}: {exc}"}
            print(f"{name}: SKIPPED ({result['skipped']})", flush=True)
        except Exception as exc:  # a broken benchmark must not hide the others, nor pass for skipped
            traceback.print_exc()
            result = {"failed": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
            print(f"{name}: FAILED ({result['failed']})", flush=True)
        result["seconds"] = round(time.perf_counter() - t, 1)
        results[name] = result
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"wrote {args.out} ({results['seconds']}s)")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
