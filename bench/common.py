"""Shared helpers for the benchmarks: timing, a box holding ~N rows, a real HTTP server."""

from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VILNIUS = (25.2797, 54.6872)


def timeit(fn: Callable[[], object], *, repeat: int, warmup: int = 3) -> dict[str, float]:
    """p50/p90/p99/mean in milliseconds over `repeat` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    q = lambda p: samples[min(len(samples) - 1, int(p * len(samples)))]  # noqa: E731
    return {"p50": statistics.median(samples), "p90": q(0.90), "p99": q(0.99), "mean": statistics.fmean(samples), "n": repeat}


def box_with_rows(db: Path, target: int, *, centre: tuple[float, float] = VILNIUS) -> tuple[tuple[float, float, float, float], int]:
    """A box around `centre` holding about `target` facilities (bisection on its half-size)."""
    conn = sqlite3.connect(db)
    lo, hi = 1e-5, 3.0
    box, n = None, 0
    for _ in range(40):
        half = (lo + hi) / 2
        box = (centre[0] - half * 1.7, centre[1] - half, centre[0] + half * 1.7, centre[1] + half)
        n = conn.execute(
            "SELECT count(*) FROM facilities_rtree WHERE max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ?",
            (box[0], box[2], box[1], box[3]),
        ).fetchone()[0]
        if abs(n - target) <= target * 0.02:
            break
        lo, hi = (half, hi) if n < target else (lo, half)
    conn.close()
    return box, n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """The app on a real loopback HTTP server (werkzeug, threaded) for the duration of a block."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request skews timings
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("inf")


@dataclass(frozen=True, kw_only=True)
class Context:
    """What every benchmark gets from `python -m bench`: the run's mode, sizes and store cache."""

    quick: bool
    sizes: list[int]
    stores: Path

    @property
    def repeat(self) -> int:
        return 50 if self.quick else 200

    def store(self, size: int) -> Path:
        """The synthetic store of `size` facilities (built once, then reused)."""
        from .synth import cached_store

        return cached_store(self.stores, size)


def write_result(path: Path, result: dict) -> Path:
    """Write a benchmark's figures as JSON (a standalone run's counterpart of latest.json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return path


def store_bench_main(argv: list[str] | None, *, prog: str, doc: str | None,
                     run_one: Callable[..., dict], report: Callable[[dict], str]) -> int:
    """The standalone entry of a benchmark that reads one synthetic store (`--db`) and keeps a
    prepared copy of it in `--work` (bench.audit, bench.cluster): run, print, optionally save."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="a synthetic store (bench/stores/synth-*.db)")
    parser.add_argument("--work", type=Path, default=Path("/tmp"), help="where the copy with areas is kept")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    r = run_one(args.db, work=args.work, repeat=args.repeat)
    print(report(r), flush=True)
    if args.out:
        write_result(args.out, r)
    return 0


def proc_figures() -> dict[str, int]:
    """Peak RSS and bytes written so far by this process (Linux /proc).

    VmHWM, not getrusage's ru_maxrss: a child started by a large process (the bench's own, after
    the bbox benchmark: ~900 MB) reports that parent's peak as its own ru_maxrss, which Linux
    carries across the exec; VmHWM belongs to the new program's memory alone."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                out["peak_rss_kb"] = int(line.split()[1])
    with open("/proc/self/io") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("wchar", "write_bytes"):
                out[key] = int(value)
    return out
