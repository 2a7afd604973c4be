"""Load: the bbox endpoint under wrk on loopback, Atvira's gunicorn against two Datasette peers.

ours             : `atvira serve --production`'s gunicorn (gunicorn.conf.py, 2 workers) serving
                   GET /api/facilities?bbox=…&limit=500: ordered GeoJSON with every property
datasette_plain  : Datasette (the `bench` extra) serving the same rows as a plain table (id, name,
                   category, lon, lat and four feature flags, plus an R*Tree; built once beside
                   the store) with the bbox SQL a Datasette user would write (no ORDER BY)
datasette_atvira : Datasette running Atvira's own query (features.feature_sql of the list
                   properties, ordered by rid) on Atvira's file
postgis          : skipped with a note unless installed (it is not on the shared machine)
Two boxes: "sparse" (~500 facilities around central Vilnius) and "dense" (2 km x 2 km in central
Vilnius: ~8,575 facilities at 1M); 500 answered. Each server is pinned to core 0 and wrk to core
1 (taskset), so the ratios hold on a busy machine; for each point we record req/s, p50/p99,
errors and the server's CPU time per request (all its processes, from /proc), the figure that
hardly depends on what else the machine runs. Connections: 1 (p50) and 16; --quick: 16 only, 2 s
per point on the 10k store.

Everything binds 127.0.0.1 and every loop is bounded (startup waits time out, wrk has -d).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import requests

from directory.config import Settings
from directory.features import LIST_PROPERTIES, feature_sql
from directory.serving import gunicorn_command, gunicorn_environment

from .common import VILNIUS, Context, box_with_rows, free_port, ratio

ROWS = 500
CONNECTIONS = (1, 16)  # p50 at one connection, req/s and p99 at 16
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


def wrk(url: str, *, connections: int, seconds: int, server: int | None = None, core: int | None = None) -> dict:
    cmd = _pinned(["wrk", f"-t{min(THREADS, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
           "--latency", url], core)
    cpu0 = session_cpu_seconds(server) if server else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    result = {"connections": connections, "seconds": seconds, **parse_wrk(out)}
    if server:
        cpu = session_cpu_seconds(server) - cpu0
        result["server_cpu_s"] = round(cpu, 2)
        result["cpu_ms_per_request"] = 1000 * cpu / max(result["requests"], 1)
    return result


# Each server first gets an unrecorded run, so neither is measured with a cold page cache or
# with workers still importing; all get the same.
WARMUP_SECONDS = 5

# The dense box of issue 13: 2 km x 2 km in central Vilnius (about 8,575 facilities at 1M).
DENSE_HALF_KM = 1.0

# The plain table a Datasette user would publish: 9 columns and an R*Tree, and the bbox SQL
# they would write (no ORDER BY).
PLAIN_COLUMNS = ("id", "name", "category", "lon", "lat", "changing_table", "feeding_room", "wheelchair", "toilet")
PLAIN_SQL = ("SELECT p.id, p.name, p.category, p.lon, p.lat, p.changing_table, p.feeding_room, p.wheelchair, p.toilet"
             " FROM plain_rtree r JOIN plain p ON p.rowid = r.id"
             " WHERE r.max_lon >= {w} AND r.min_lon <= {e} AND r.max_lat >= {s} AND r.min_lat <= {n} LIMIT {limit}")


def plain_store(db: Path) -> Path:
    """The same rows as a plain table (built once beside the store, reused)."""
    path = db.with_name(db.stem + "-plain.db")
    marker = path.with_suffix(".ok")
    if path.exists() and marker.exists():
        return path
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("ATTACH ? AS src", (str(db),))
    conn.executescript("""
        CREATE TABLE plain (id TEXT, name TEXT, category TEXT, lon REAL, lat REAL,
                            changing_table TEXT, feeding_room TEXT, wheelchair TEXT, toilet TEXT);
        CREATE VIRTUAL TABLE plain_rtree USING rtree(id, min_lon, max_lon, min_lat, max_lat);
        INSERT INTO plain(rowid, id, name, category, lon, lat, changing_table, feeding_room, wheelchair, toilet)
            SELECT rid, id, name, json_extract(categories, '$[0]'), lon, lat,
                   json_extract(features, '$.changing_table'), json_extract(features, '$.feeding_room'),
                   json_extract(features, '$.wheelchair'), json_extract(features, '$.toilet')
            FROM src.facilities WHERE lon IS NOT NULL;
        INSERT INTO plain_rtree SELECT rowid, lon, lon, lat, lat FROM plain;
    """)
    conn.commit()
    conn.execute("DETACH src")
    conn.close()
    marker.write_text("ok\n")
    return path


def dense_box() -> tuple[float, float, float, float]:
    lon, lat = VILNIUS
    dlat = DENSE_HALF_KM / 111.32
    dlon = dlat / math.cos(math.radians(lat))
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def _pinned(cmd: list[str], core: int | None) -> list[str]:
    """`cmd` pinned to one core with taskset (when there is more than one core and taskset)."""
    if core is None:
        return cmd
    return ["taskset", "-c", str(core), *cmd]


def run_one(db: Path, *, seconds: int, workdir: Path, connections: tuple[int, ...] = CONNECTIONS,
            warmup: int = WARMUP_SECONDS) -> dict:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    cores = os.cpu_count() or 1
    pin = shutil.which("taskset") is not None and cores >= 2
    server_core, load_core = (0, 1) if pin else (None, None)
    sparse, n_sparse = box_with_rows(db, ROWS)
    boxes = {"sparse": sparse, "dense": dense_box()}
    conn = sqlite3.connect(db)
    rows_in = {name: conn.execute(
        "SELECT count(*) FROM facilities_rtree WHERE max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ?",
        (b[0], b[2], b[1], b[3])).fetchone()[0] for name, b in boxes.items()}
    conn.close()
    out: dict = {"store": str(db), "pinned": pin, "rows_in_box": rows_in, "postgis": {
        "skipped": "PostGIS is not installed here (apt-get install postgresql-15-postgis-3 to add it)"}}
    if shutil.which("psql") is None:
        print("load: PostGIS peer skipped (not installed)", flush=True)

    def measure(who: str, url_for_box, pid: int) -> None:
        out.setdefault(who, {})
        for name in boxes:
            url = url_for_box(name)
            out[who].setdefault(name, {})
            wrk(url, connections=max(connections), seconds=warmup, core=load_core)  # not recorded
            for c in connections:
                out[who][name][str(c)] = wrk(url, connections=c, seconds=seconds, server=pid, core=load_core)

    def bbox(name: str) -> str:
        return ",".join(f"{v:.7f}" for v in boxes[name])

    # ours: gunicorn as `atvira serve --production` runs it
    port = free_port()
    env = gunicorn_environment(Settings(db=db), host="127.0.0.1", port=port, workers=2)
    env["ATVIRA_SECRET_KEY"] = secrets.token_hex(32)  # production refuses to start without one (per run)
    ours = lambda name: f"http://127.0.0.1:{port}/api/facilities?bbox={bbox(name)}&limit={ROWS}"  # noqa: E731
    with _server(_pinned(gunicorn_command(), server_core), env=env, cwd=Path(__file__).resolve().parents[1],
                 ready_url=ours("sparse"), log=workdir / "gunicorn.log") as pid:
        out["rows_returned"] = {n: requests.get(ours(n), timeout=30).json()["numberReturned"] for n in boxes}
        measure("ours", ours, pid)

    if shutil.which("datasette") is None:
        out["datasette"] = {"skipped": "datasette is not installed (pip install -e '.[bench]')"}
        return out
    # Datasette on the plain table with the plain SQL
    plain = plain_store(db)
    port = free_port()

    def plain_url(name: str) -> str:
        w, s_, e, n = boxes[name]
        sql = PLAIN_SQL.format(w=w, e=e, s=s_, n=n, limit=ROWS)
        return f"http://127.0.0.1:{port}/{plain.stem}.json?" + urlencode({"sql": sql, "_shape": "array"})

    cmd = ["datasette", "serve", "-i", str(plain), "--host", "127.0.0.1", "--port", str(port),
           "--setting", "sql_time_limit_ms", "10000", "--setting", "max_returned_rows", str(ROWS)]
    with _server(_pinned(cmd, server_core), env=None, cwd=None, ready_url=plain_url("sparse"),
                 log=workdir / "datasette-plain.log") as pid:
        measure("datasette_plain", plain_url, pid)
    # Datasette running Atvira's own query (its list features, ordered; open_state needs our
    # SQL function, which Datasette does not have) on Atvira's file
    port = free_port()

    def atvira_url(name: str) -> str:
        w, s_, e, n = boxes[name]
        sql = (f"SELECT {feature_sql(LIST_PROPERTIES)} AS feature FROM facilities_rtree r JOIN facilities f"
               f" ON f.rid = r.rid WHERE r.max_lon >= {w} AND r.min_lon <= {e} AND r.max_lat >= {s_}"
               f" AND r.min_lat <= {n} AND f.lon BETWEEN {w} AND {e} AND f.lat BETWEEN {s_} AND {n}"
               f" ORDER BY r.rid LIMIT {ROWS}")
        return f"http://127.0.0.1:{port}/{db.stem}.json?" + urlencode({"sql": sql, "_shape": "array"})

    cmd = ["datasette", "serve", "-i", str(db), "--host", "127.0.0.1", "--port", str(port),
           "--setting", "sql_time_limit_ms", "10000", "--setting", "max_returned_rows", str(ROWS)]
    with _server(_pinned(cmd, server_core), env=None, cwd=None, ready_url=atvira_url("sparse"),
                 log=workdir / "datasette-atvira.log") as pid:
        measure("datasette_atvira", atvira_url, pid)
    for peer in ("datasette_plain", "datasette_atvira"):
        for name in boxes:
            for c in connections:
                a, b = out["ours"][name][str(c)], out[peer][name][str(c)]
                out[f"ratio_req_s_vs_{peer}_{name}_{c}"] = ratio(a["req_s"], b["req_s"])
                out[f"ratio_cpu_{peer}_to_ours_{name}_{c}"] = ratio(b["cpu_ms_per_request"], a["cpu_ms_per_request"])
    return out


def run(ctx: Context) -> dict:
    size = ctx.sizes[-1]
    seconds = 2 if ctx.quick else int(os.environ.get("ATVIRA_BENCH_LOAD_SECONDS", "30"))
    with tempfile.TemporaryDirectory(prefix="atvira-load-") as workdir:  # server logs, never beside the stores
        return {str(size): run_one(ctx.store(size), seconds=seconds, workdir=Path(workdir),
                                   connections=(16,) if ctx.quick else CONNECTIONS,
                                   warmup=1 if ctx.quick else WARMUP_SECONDS)}


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        lines.append(f"load {int(size):>9,}: pinned={r['pinned']} rows in box {r['rows_in_box']}"
                     f" | PostGIS: {r['postgis'].get('skipped', 'measured')}")
        for who in ("ours", "datasette_plain", "datasette_atvira"):
            if "skipped" in r.get(who, {}):
                lines.append(f"load {int(size):>9,} {who}: {r[who]['skipped']}")
                continue
            for name, points in r.get(who, {}).items():
                for c, x in points.items():
                    lines.append(
                        f"load {int(size):>9,} {who:<16} {name:<6} c={c:<2}: {x['req_s']:,.0f} req/s"
                        f" | p50 {x['p50_ms']:.1f} ms p99 {x['p99_ms']:.1f} ms | errors {x['errors']}"
                        f" | server CPU {x.get('cpu_ms_per_request', float('nan')):.2f} ms/request")
        for key, value in r.items():
            if key.startswith("ratio_"):
                lines.append(f"load {int(size):>9,} {key}: {value:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from .__main__ import main

    raise SystemExit(main(["--only", "load", *sys.argv[1:]]))
