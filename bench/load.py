"""Load: the bbox endpoint under wrk on loopback, gunicorn vs Datasette on the same file and query.

ours      : `atvira serve --production`'s gunicorn (gunicorn.conf.py) serving
            GET /api/facilities?bbox=…&limit=500 (a box of ~500 facilities around Vilnius)
peer      : Datasette (optional bench dependency: `pip install datasette`; never a runtime one)
            on the same store file, immutable mode (its fastest), answering the same R*Tree
            query through its `?sql=` JSON endpoint with the same LIMIT
For each connection count (16 and 32) and each server: wrk -t2 -cN -dD --latency; we record
req/s, p50/p99 latency, non-2xx responses and socket errors, and the server's CPU time per
request (all its processes, from /proc): unlike req/s, that figure hardly depends on what else
the machine is running. The peer ratios (req/s, CPU per request) come from the same run. The full run is 60 s per point (4 points, ~4.5 minutes
at 1M facilities); --quick is 3 s per point on the 10k store.

Everything binds 127.0.0.1 and every loop is bounded (startup waits time out, wrk has -d).
Figures on a shared 2-core machine, with wrk on the same cores as the servers, are noisy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import requests

from directory.config import Settings
from directory.serving import gunicorn_command, gunicorn_environment

from .bbox import FLOOR_SQL
from .common import Context, box_with_rows, free_port, ratio

ROWS = 500
CONNECTIONS = (16, 32)
THREADS = 2
START_TIMEOUT = 120.0  # seconds; Datasette counts a 1M-row table before it answers


def _wait_ready(url: str, proc: subprocess.Popen, *, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server did not answer {url} within {timeout:.0f} s")


def session_cpu_seconds(session_id: int) -> float:
    """User + system CPU seconds of every live process in a session (a server and its workers).

    On a shared machine req/s depends on what else runs; CPU per request does not, so the load
    figures include it (read from /proc; Linux only).
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[3]) == session_id:  # field 6 of stat: the session id
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # utime stime cutime cstime
    return total / tick


@contextmanager
def _server(cmd: list[str], *, env: dict[str, str] | None, cwd: Path | None, ready_url: str,
            log: Path) -> Iterator[int]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_ready(ready_url, proc)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(out: str) -> dict:
    """req/s, latency percentiles and errors from `wrk --latency` output."""
    pct = {f"p{int(p)}": _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(g) for g in sock.groups()) if sock else 0
    return {"req_s": rps, "requests": total, "errors": non2xx + socket_errors, "non_2xx": non2xx,
            "socket_errors": socket_errors, **{f"{k}_ms": v for k, v in pct.items()}}


def wrk(url: str, *, connections: int, seconds: int, server: int | None = None) -> dict:
    cmd = ["wrk", f"-t{min(THREADS, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
           "--latency", url]
    cpu0 = session_cpu_seconds(server) if server else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    result = {"connections": connections, "seconds": seconds, **parse_wrk(out)}
    if server:
        cpu = session_cpu_seconds(server) - cpu0
        result["server_cpu_s"] = round(cpu, 2)
        result["cpu_ms_per_request"] = 1000 * cpu / max(result["requests"], 1)
    return result


# Each server first gets an unrecorded run, so neither is measured with a cold page cache or
# with workers still importing; both get the same.
WARMUP_SECONDS = 5


def run_one(db: Path, *, seconds: int, workdir: Path) -> dict:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    box, n = box_with_rows(db, ROWS)
    w, s, e, n_ = box
    bbox = f"{w:.7f},{s:.7f},{e:.7f},{n_:.7f}"
    out: dict = {"store": str(db), "rows_in_box": n, "ours": {}, "datasette": {}}

    port = free_port()
    env = gunicorn_environment(Settings(db=db), host="127.0.0.1", port=port)
    ours_url = f"http://127.0.0.1:{port}/api/facilities?bbox={bbox}&limit={ROWS}"
    with _server(gunicorn_command(), env=env, cwd=Path(__file__).resolve().parents[1], ready_url=ours_url,
                 log=workdir / "gunicorn.log") as pid:
        out["ours"]["rows_returned"] = requests.get(ours_url, timeout=30).json()["numberReturned"]
        wrk(ours_url, connections=max(CONNECTIONS), seconds=WARMUP_SECONDS)  # not recorded: page cache, workers
        for c in CONNECTIONS:
            out["ours"][str(c)] = wrk(ours_url, connections=c, seconds=seconds, server=pid)

    if shutil.which("datasette") is None:
        out["datasette"] = {"skipped": "datasette is not installed (pip install datasette)"}
        return out
    port = free_port()
    literal = FLOOR_SQL.replace("?", "{}").format(w, e, s, n_, w, e, s, n_, ROWS)
    peer_url = f"http://127.0.0.1:{port}/{db.stem}.json?" + urlencode({"sql": literal, "_shape": "array"})
    cmd = ["datasette", "serve", "-i", str(db), "--host", "127.0.0.1", "--port", str(port),
           "--setting", "sql_time_limit_ms", "10000", "--setting", "max_returned_rows", str(ROWS)]
    with _server(cmd, env=None, cwd=None, ready_url=peer_url, log=workdir / "datasette.log") as pid:
        out["datasette"]["rows_returned"] = len(requests.get(peer_url, timeout=30).json())
        wrk(peer_url, connections=max(CONNECTIONS), seconds=WARMUP_SECONDS)  # the same warm-up for the peer
        for c in CONNECTIONS:
            out["datasette"][str(c)] = wrk(peer_url, connections=c, seconds=seconds, server=pid)
    for c in CONNECTIONS:
        ours, peer = out["ours"][str(c)], out["datasette"][str(c)]
        out[f"ratio_req_s_vs_datasette_{c}"] = ratio(ours["req_s"], peer["req_s"])
        out[f"ratio_cpu_per_request_datasette_to_ours_{c}"] = ratio(peer["cpu_ms_per_request"], ours["cpu_ms_per_request"])
    return out


def run(ctx: Context) -> dict:
    size = ctx.sizes[-1]
    seconds = 3 if ctx.quick else int(os.environ.get("ATVIRA_BENCH_LOAD_SECONDS", "60"))
    with tempfile.TemporaryDirectory(prefix="atvira-load-") as workdir:  # server logs, never beside the stores
        return {str(size): run_one(ctx.store(size), seconds=seconds, workdir=Path(workdir))}


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        for who in ("ours", "datasette"):
            for c in CONNECTIONS:
                x = r[who].get(str(c))
                if x is None:
                    lines.append(f"load {int(size):>9,} {who:<9}: {r[who].get('skipped', 'not run')}")
                    continue
                lines.append(
                    f"load {int(size):>9,} {who:<9} c={c:<2} {x['seconds']}s: {x['req_s']:,.0f} req/s"
                    f" | p50 {x['p50_ms']:.1f} ms p99 {x['p99_ms']:.1f} ms | errors {x['errors']}"
                    f" | server CPU {x.get('cpu_ms_per_request', float('nan')):.1f} ms/request"
                    f" | {r[who]['rows_returned']} rows/response"
                )
        for c in CONNECTIONS:
            if f"ratio_req_s_vs_datasette_{c}" in r:
                lines.append(f"load {int(size):>9,} ratio c={c}: {r[f'ratio_req_s_vs_datasette_{c}']:.1f}x Datasette's req/s,"
                             f" {r[f'ratio_cpu_per_request_datasette_to_ours_{c}']:.1f}x less CPU per request")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from .__main__ import main

    raise SystemExit(main(["--only", "load", *sys.argv[1:]]))
