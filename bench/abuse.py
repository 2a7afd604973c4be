"""Abuse: plain map queries beside the requests a hostile probe found expensive (issue 14).

Against `atvira serve --production`'s gunicorn on a synthetic store, wrk runs 16 connections of
plain bbox queries (a box of ~500 facilities around Vilnius, limit 500) twice: alone, then
beside 8 abusive clients looping in parallel (two of each):
  - whole-world clusters at zoom 30 (/api/facilities/clusters?bbox=-180,-90,180,90&zoom=30),
  - a whole-world filtered GeoPackage abandoned after 1 s (the socket closed, as `curl -m1`),
  - near= in the empty south Pacific with status=removed,
  - /changes?limit=5000.
Recorded: the plain queries' p50/p99 with and without the abuse (the issue's bar: p99 within 3x),
the abusive answers' status codes, and the peak RSS of the whole server (master and workers,
sampled from /proc every 0.2 s; the bar: 1.5 GB in total). Figures on a shared 2-core machine
are noisy; the ratio is measured in one run.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import requests

from directory.config import Settings
from directory.derived import repair
from directory.serving import gunicorn_command, gunicorn_environment

from .common import Context, box_with_rows, free_port, ratio
from .load import _server, wrk

CONNECTIONS = 16
ABUSERS_EACH = 2
ABUSE = {
    "clusters_world_z30": "/api/facilities/clusters?bbox=-180,-90,180,90&zoom=30",
    "gpkg_world_abandoned": "/downloads/facilities.gpkg?bbox=-180,-90,180,90",
    "near_removed": "/api/facilities?near=-100,-60&status=removed",
    "changes_5000": "/changes?limit=5000",
}


def session_rss_bytes(session_id: int) -> int:
    """Resident memory of every process in a session (the server and its workers)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session_id:
                total += int(fields[21]) * page  # field 24 of stat: rss in pages
        except (OSError, IndexError, ValueError):
            continue
    return total


def _abandon(base: str, path: str, seconds: float) -> str:
    """Send the request, read for `seconds`, then close the socket (curl -m1)."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=seconds + 5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nConnection: close\r\n\r\n".encode())
        sock.settimeout(seconds)
        head = b""
        try:
            head = sock.recv(64)
        except TimeoutError:
            return "abandoned"
        return head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "abandoned"


def _abuser(base: str, name: str, stop: threading.Event, seen: Counter) -> None:
    while not stop.is_set():
        try:
            if name == "gpkg_world_abandoned":
                seen[f"{name} {_abandon(base, ABUSE[name], 1.0)}"] += 1
            else:
                seen[f"{name} {requests.get(base + ABUSE[name], timeout=120).status_code}"] += 1
        except (requests.RequestException, OSError) as exc:
            seen[f"{name} {type(exc).__name__}"] += 1


def run_one(db: Path, *, seconds: int, workdir: Path, warmup: int = 3) -> dict:
    box, n = box_with_rows(db, 500)
    bbox = ",".join(f"{v:.7f}" for v in box)
    port = free_port()
    env = gunicorn_environment(Settings(db=db), host="127.0.0.1", port=port)
    env.update(ATVIRA_CACHE_DIR=str(workdir / "cache"), ATVIRA_SNAPSHOTS_DIR=str(workdir / "snapshots"),
               ATVIRA_SECRET_KEY=secrets.token_hex(32))  # production refuses to start without one
    # What the server's start would do (map grid, audit: minutes at 1M), done first, so the
    # start-up wait measures only the start.
    repair(Settings(db=db, snapshots_dir=workdir / "snapshots"))
    base = f"http://127.0.0.1:{port}"
    plain = f"{base}/api/facilities?bbox={bbox}&limit=500"
    out: dict = {"store": str(db), "rows_in_box": n, "abusers": ABUSERS_EACH * len(ABUSE), "connections": CONNECTIONS}
    with _server(gunicorn_command(), env=env, cwd=Path(__file__).resolve().parents[1], ready_url=plain,
                 log=workdir / "gunicorn.log") as pid:
        peak = [session_rss_bytes(pid)]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak[0] = max(peak[0], session_rss_bytes(pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        wrk(plain, connections=CONNECTIONS, seconds=warmup)  # warm-up, not recorded
        out["alone"] = wrk(plain, connections=CONNECTIONS, seconds=seconds, server=pid)
        out["rss_alone_mb"] = round(peak[0] / 2**20)
        stop, seen = threading.Event(), Counter()
        abusers = [threading.Thread(target=_abuser, args=(base, name, stop, seen), daemon=True)
                   for name in ABUSE for _ in range(ABUSERS_EACH)]
        for t in abusers:
            t.start()
        time.sleep(1.0)  # the abuse is under way before the measurement starts
        out["with_abuse"] = wrk(plain, connections=CONNECTIONS, seconds=seconds, server=pid)
        stop.set()
        for t in abusers:
            t.join(timeout=130)
        sampling.set()
        sampler.join(timeout=5)
        out["abusive_answers"] = dict(sorted(seen.items()))
        out["rss_peak_mb"] = round(peak[0] / 2**20)
        cache = workdir / "cache" / "exports"
        out["export_cache_mb_left"] = round(sum(p.stat().st_size for p in cache.glob("*") if p.is_file()) / 2**20, 1) \
            if cache.is_dir() else 0
    out["p99_ratio"] = ratio(out["with_abuse"]["p99_ms"], out["alone"]["p99_ms"])
    return out


def run(ctx: Context) -> dict:
    size = ctx.sizes[-1]
    # --quick: a smoke run, 1 s a phase (wrk's shortest), keeping `bench --quick` under a minute
    seconds = 1 if ctx.quick else int(os.environ.get("ATVIRA_BENCH_ABUSE_SECONDS", "30"))
    with tempfile.TemporaryDirectory(prefix="atvira-abuse-") as workdir:
        return {str(size): run_one(ctx.store(size), seconds=seconds, workdir=Path(workdir), warmup=1 if ctx.quick else 3)}


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        a, b = r["alone"], r["with_abuse"]
        lines.append(f"abuse {int(size):>9,} plain c={r['connections']} alone: {a['req_s']:,.0f} req/s"
                     f" p50 {a['p50_ms']:.1f} ms p99 {a['p99_ms']:.1f} ms errors {a['errors']}")
        lines.append(f"abuse {int(size):>9,} plain c={r['connections']} + {r['abusers']} abusers: {b['req_s']:,.0f} req/s"
                     f" p50 {b['p50_ms']:.1f} ms p99 {b['p99_ms']:.1f} ms errors {b['errors']}"
                     f" | p99 ratio {r['p99_ratio']:.2f}x (bar 3x) | peak RSS {r['rss_peak_mb']} MB (bar 1536 MB)")
        lines.append(f"abuse {int(size):>9,} abusive answers: {r['abusive_answers']}")
    return "\n".join(lines)
