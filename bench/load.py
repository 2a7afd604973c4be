"""Load: the bbox endpoint under wrk on loopback, Atvira's gunicorn against its peers on the
same rows, and the map's warm tile through nginx's cache (issue 13's figures).

ours             : `atvira serve --production`'s gunicorn (gunicorn.conf.py, 2 workers) serving
                   GET /api/facilities?bbox=…&limit=500: ordered GeoJSON with every property
datasette_plain  : Datasette (the `bench` extra) serving the same rows as a plain table (id, name,
                   category, lon, lat and four feature flags, plus an R*Tree; built once beside
                   the store) with the bbox SQL a Datasette user would write (9 columns, no ORDER BY)
datasette_atvira : Datasette running Atvira's own query (features.feature_sql of the list
                   properties, ordered by rid) on Atvira's file
postgis          : PostgreSQL 15 + PostGIS 3 (bench/postgis.py: a throwaway cluster in a temp dir,
                   the plain table's rows COPYed in, GiST index) asked the same plain SQL by
                   `pgbench -M prepared` (no HTTP); skipped with the install line when PostGIS is
                   not installed, and in --quick
tile             : the map's own request (static/js/map.js: the view snapped to the tile grid,
                   pinned to the content version `v=`) through nginx's proxy_cache (the README's,
                   tests/servers.nginx_server) in front of the same gunicorn: warmed once, then
                   wrk on the cache HITs
Two boxes: "sparse" (~500 facilities around central Vilnius) and "dense" (2 km x 2 km in central
Vilnius: ~8,575 facilities at 1M); 500 answered. Each server is pinned to core 0 and wrk/pgbench to
core 1 (taskset), so the ratios hold on a busy machine; for each point we record req/s, p50/p99,
errors and the server's CPU time per request (all its processes, from /proc), the figure that
hardly depends on what else the machine runs. Connections: 1 and 16; each figure is printed beside
its issue-13 target. Seconds per point: ATVIRA_BENCH_LOAD_SECONDS (default 10; the whole load
benchmark at 1M takes about 5 minutes); --quick: the sparse box only, 16 connections only, 1 s
per point on the 10k store after a few warm-up requests, no PostGIS.

Everything binds 127.0.0.1 and every loop is bounded (startup waits time out, wrk has -d).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
import signal
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
from tests.servers import nginx_server, stop_process

from . import postgis
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
    """User + system CPU seconds of a server: every live process in its session (a server and
    its workers) and the leader's direct children (postgres gives each child a session of its
    own), plus what the reaped ones used (cutime, cstime).

    On a shared machine req/s depends on what else runs; CPU per request does not, so the load
    figures include it (read from /proc; Linux only).
    """
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime
               for f in _session_stats(session_id)) / tick


def _session_stats(session_id: int) -> list[list[str]]:
    """/proc/PID/stat fields (from the state on) of every process in a session or whose parent
    is the session's leader."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[3]) == session_id or int(fields[1]) == session_id:  # fields 6 and 4: session, parent
            found.append(fields)
    return found


def settled_session_cpu_seconds(session_id: int, *, processes: int, timeout: float = 5.0) -> float:
    """session_cpu_seconds once the session is back to `processes` processes and none is a zombie.

    A server that forks a process per connection (postgres) reaps it shortly after the client
    leaves; until then an exiting process's time may be in neither its own stat nor its
    parent's cutime, and a short run's CPU would vanish into the next one's. Bounded wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = _session_stats(session_id)
        if len(stats) <= processes and not any(f[0] in "ZX" for f in stats):
            break
        time.sleep(0.05)
    return session_cpu_seconds(session_id)


@contextmanager
def _server(cmd: list[str], *, env: dict[str, str] | None, cwd: Path | None, ready_url: str,
            log: Path) -> Iterator[int]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_ready(ready_url, proc)
            yield proc.pid
        finally:
            # The figures are taken: kill the whole session (server and workers) at once. A graceful
            # stop drains keep-alive connections and polls its workers, about 2 s a server, which
            # `bench --quick` (five servers) cannot spare; nothing of a bench server is kept.
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            stop_process(proc)


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
WARMUP_SECONDS = 3
QUICK_WARM_REQUESTS = 8  # --quick: instead of the warm-up run (wrk's shortest is a whole second)


def warm(url: str, *, requests_: int = QUICK_WARM_REQUESTS) -> None:
    """A few unrecorded requests: the first ones of each worker pay its lazy imports and cold pages."""
    with requests.Session() as http:
        for _ in range(requests_):
            http.get(url, timeout=60).raise_for_status()

SECONDS = 10  # per point unless ATVIRA_BENCH_LOAD_SECONDS says otherwise
QUICK_SECONDS = 1  # --quick: a smoke run of every server (keeps `bench --quick` under a minute)
TILE_SECONDS = 5  # at most, per point: cache hits are fast, 5 s is thousands of samples
# PostGIS pinned to one core with 16 clients answered the sparse box at 1,368 q/s in one run and
# 667 in the next (its c=1 rate held at ~1,290): each of its points is the median of this many
# rounds, the rounds kept beside it, so one run's ratio does not rest on one noisy sample.
POSTGIS_ROUNDS = 3

# The dense box of issue 13: in its 1M store, 2 km x 2 km in central Vilnius held 8,575
# facilities (500 answered). What costs is the count, so the dense box is the box around central
# Vilnius holding that many (bench.common.box_with_rows: about 4 km across on the synthetic 1M
# store, whose 2 km box holds ~2,200), at most a quarter of a small store. The map's view for
# the warm tile stays the 2 km box (a zoom-15 map).
DENSE_ROWS = 8_575
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


def box_km(box: tuple[float, float, float, float]) -> tuple[float, float]:
    """Width and height of a lon/lat box in km (at its middle latitude)."""
    w, s, e, n = box
    return (e - w) * 111.32 * math.cos(math.radians((s + n) / 2)), (n - s) * 111.32


def dense_box() -> tuple[float, float, float, float]:
    """The 2 km x 2 km box in central Vilnius."""
    lon, lat = VILNIUS
    dlat = DENSE_HALF_KM / 111.32
    dlon = dlat / math.cos(math.radians(lat))
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def _pinned(cmd: list[str], core: int | None) -> list[str]:
    """`cmd` pinned to one core with taskset (when there is more than one core and taskset)."""
    if core is None:
        return cmd
    return ["taskset", "-c", str(core), *cmd]


# The map's own request (static/js/map.js): POINT_LIMIT points, the view snapped outward to the
# Web Mercator grid two zooms finer than the map. A 2 km view in Vilnius is a zoom-15 map.
MAP_POINT_LIMIT = 400
MAP_ZOOM = 15


def map_bbox(view: tuple[float, float, float, float], zoom: int) -> str:
    """static/js/map.js bboxParam(): the view's box snapped outward to the tile grid at zoom+2."""
    west, south, east, north = view
    n = 2 ** min(22, max(0, zoom + 2))

    def tx(lon: float) -> float:
        return (lon + 180) / 360 * n

    def ty(lat: float) -> float:
        r = math.radians(min(85.0511, max(-85.0511, lat)))
        return (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n

    def lon_of(x: float) -> float:
        return x / n * 360 - 180

    def lat_of(y: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))

    box = (lon_of(math.floor(tx(west))), lat_of(math.ceil(ty(south))), lon_of(math.ceil(tx(east))),
           lat_of(math.floor(ty(north))))
    return ",".join(f"{v:.6f}" for v in box)


def tile_urls(base: str, version: str, view: tuple[float, float, float, float]) -> dict[str, str]:
    """The two requests the map makes for a view (same parameter order and encoding as
    URLSearchParams): its clusters, and its points."""
    bbox = map_bbox(view, MAP_ZOOM)
    return {
        "points": f"{base}/api/facilities?" + urlencode({"bbox": bbox, "limit": MAP_POINT_LIMIT, "v": version}),
        "clusters": f"{base}/api/facilities/clusters?" + urlencode({"bbox": bbox, "zoom": MAP_ZOOM, "v": version}),
    }


def measure_tiles(base: str, *, view: tuple[float, float, float, float], connections: tuple[int, ...],
                  seconds: int, nginx_pid: int, core: int | None) -> dict:
    """The map's requests through nginx: the first (a MISS, answered by gunicorn), then wrk on
    the warm entry; X-Cache-Status is read before and after."""
    http = requests.Session()
    version = http.get(f"{base}/api/version", timeout=30).json()["version"]
    out: dict = {"version": version}
    for kind, url in tile_urls(base, version, view).items():
        t = time.perf_counter()
        first = http.get(url, timeout=60)
        cold_ms = (time.perf_counter() - t) * 1000
        first.raise_for_status()
        second = http.get(url, timeout=60)
        point = {"url": url.removeprefix(base), "bytes": len(first.content), "cold_ms": round(cold_ms, 2),
                 "first_status": first.headers.get("X-Cache-Status"), "warm_status": second.headers.get("X-Cache-Status"),
                 "cache_control": first.headers.get("Cache-Control")}
        for c in connections:
            point[str(c)] = wrk(url, connections=c, seconds=seconds, server=nginx_pid, core=core)
        point["after_status"] = http.get(url, timeout=60).headers.get("X-Cache-Status")
        out[kind] = point
    return out


@contextmanager
def _pinned_self(core: int | None) -> Iterator[None]:
    """This process (a Python client) pinned to `core` for a block; the old mask restored."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def run_one(db: Path, *, seconds: int, workdir: Path, connections: tuple[int, ...] = CONNECTIONS,
            warmup: int = WARMUP_SECONDS, with_postgis: bool = True,
            tile_connections: tuple[int, ...] = CONNECTIONS, box_names: tuple[str, ...] = ("dense", "sparse")) -> dict:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    cores = os.cpu_count() or 1
    pin = shutil.which("taskset") is not None and cores >= 2
    server_core, load_core = (0, 1) if pin else (None, None)
    conn = sqlite3.connect(db)
    total = conn.execute("SELECT count(*) FROM facilities").fetchone()[0]
    find = {"dense": lambda: box_with_rows(db, min(DENSE_ROWS, total // 4))[0], "sparse": lambda: box_with_rows(db, ROWS)[0]}
    boxes = {name: find[name]() for name in box_names}
    in_2km = conn.execute(
        "SELECT count(*) FROM facilities_rtree WHERE max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ?",
        (dense_box()[0], dense_box()[2], dense_box()[1], dense_box()[3])).fetchone()[0]
    rows_in = {name: conn.execute(
        "SELECT count(*) FROM facilities_rtree WHERE max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ?",
        (b[0], b[2], b[1], b[3])).fetchone()[0] for name, b in boxes.items()}
    conn.close()
    out: dict = {"store": str(db), "facilities": total, "pinned": pin, "seconds_per_point": seconds,
                 "warmup_seconds": warmup, "boxes": {name: list(b) for name, b in boxes.items()},
                 "box_km": {name: [round(v, 2) for v in box_km(b)] for name, b in boxes.items()},
                 "rows_in_box": rows_in, "rows_in_2km_box": in_2km}
    started = time.perf_counter()

    def measure(who: str, url_for_box, pid: int) -> None:
        out.setdefault(who, {})
        for name in boxes:
            url = url_for_box(name)
            out[who].setdefault(name, {})
            if warmup:
                wrk(url, connections=max(connections), seconds=warmup, core=load_core)  # not recorded
            else:  # --quick: a few requests warm the page cache and the workers' imports
                warm(url)
            for c in connections:
                out[who][name][str(c)] = wrk(url, connections=c, seconds=seconds, server=pid, core=load_core)

    def bbox(name: str) -> str:
        return ",".join(f"{v:.7f}" for v in boxes[name])

    # ours: gunicorn as `atvira serve --production` runs it; then nginx's cache in front of it
    port = free_port()
    env = gunicorn_environment(Settings(db=db), host="127.0.0.1", port=port, workers=2)
    env["ATVIRA_SECRET_KEY"] = secrets.token_hex(32)  # production refuses to start without one (per run)
    ours = lambda name: f"http://127.0.0.1:{port}/api/facilities?bbox={bbox(name)}&limit={ROWS}"  # noqa: E731
    with _server(_pinned(gunicorn_command(), server_core), env=env, cwd=Path(__file__).resolve().parents[1],
                 ready_url=ours(box_names[0]), log=workdir / "gunicorn.log") as pid:
        out["rows_returned"] = {n: requests.get(ours(n), timeout=30).json()["numberReturned"] for n in boxes}
        measure("ours", ours, pid)
        try:
            with nginx_server(workdir / "nginx", upstream=port, prefix=tuple(_pinned([], server_core))) as nginx:
                out["tile"] = measure_tiles(nginx.base, view=dense_box(), connections=tile_connections,
                                            seconds=min(seconds // 2 or 1, TILE_SECONDS), nginx_pid=nginx.pid, core=load_core)
        except (AssertionError, OSError, RuntimeError, requests.RequestException) as exc:  # nginx missing or failing
            out["tile"] = {"skipped": f"{type(exc).__name__}: {exc} (apt-get install nginx-light)"}
    out["seconds_ours"] = round(time.perf_counter() - started, 1)

    if shutil.which("datasette") is None:
        out["datasette_plain"] = out["datasette_atvira"] = {
            "skipped": "datasette is not installed (pip install -e '.[bench]')"}
    else:
        def datasette(file: Path, port: int, url_for, who: str, *, log: str) -> None:
            """Serve `file` with Datasette (pinned like ours) and measure `url_for`'s boxes."""
            cmd = ["datasette", "serve", "-i", str(file), "--host", "127.0.0.1", "--port", str(port),
                   "--setting", "sql_time_limit_ms", "10000", "--setting", "max_returned_rows", str(ROWS)]
            with _server(_pinned(cmd, server_core), env=None, cwd=None, ready_url=url_for(box_names[0]),
                         log=workdir / log) as pid:
                measure(who, url_for, pid)

        # Datasette on the plain table with the plain SQL
        plain = plain_store(db)
        port = free_port()

        def plain_url(name: str) -> str:
            w, s_, e, n = boxes[name]
            sql = PLAIN_SQL.format(w=w, e=e, s=s_, n=n, limit=ROWS)
            return f"http://127.0.0.1:{port}/{plain.stem}.json?" + urlencode({"sql": sql, "_shape": "array"})

        datasette(plain, port, plain_url, "datasette_plain", log="datasette-plain.log")
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

        datasette(db, port, atvira_url, "datasette_atvira", log="datasette-atvira.log")
    out["seconds_datasette"] = round(time.perf_counter() - started - out["seconds_ours"], 1)

    missing = postgis.available()
    if not with_postgis:
        out["postgis"] = {"skipped": "not run in --quick (run without --quick to add it)"}
    elif missing:
        out["postgis"] = {"skipped": missing}
        print(f"load: PostGIS peer skipped: {missing}", flush=True)
    else:
        t = time.perf_counter()
        try:
            out["postgis"] = measure_postgis(plain_store(db), boxes, connections=connections, seconds=seconds,
                                             warmup=warmup, workdir=workdir, server_core=server_core,
                                             load_core=load_core)
        except (OSError, RuntimeError, subprocess.SubprocessError, ValueError, AttributeError) as exc:
            # an optional peer that fails to start or answer must not cost the run its other figures
            out["postgis"] = {"skipped": f"failed: {type(exc).__name__}: {exc}"}
        out["postgis"]["seconds"] = round(time.perf_counter() - t, 1)
    out["targets"] = targets(out, boxes=list(boxes), connections=connections)
    return out


def measure_postgis(plain: Path, boxes: dict, *, connections: tuple[int, ...], seconds: int, warmup: int,
                    workdir: Path, server_core: int | None, load_core: int | None) -> dict:
    """The PostGIS peer: load the plain rows, then pgbench each box (server CPU per query from
    the postmaster's session: its backends are its children)."""
    result: dict = {}
    with postgis.cluster(core=server_core) as pg:
        result["load"] = postgis.load_rows(pg, plain)
        result["rows_in_box"] = {name: postgis.count_in_box(pg, b) for name, b in boxes.items()}
        time.sleep(1)  # the psql sessions above have left
        idle = len(_session_stats(pg.pid))  # the postmaster and its background processes
        for name, b in boxes.items():
            result[name] = {}
            postgis.pgbench(pg, b, clients=max(connections), seconds=warmup, limit=ROWS, core=load_core,
                            workdir=workdir)  # not recorded
            for c in connections:
                rounds = []
                for _ in range(POSTGIS_ROUNDS):
                    cpu0 = settled_session_cpu_seconds(pg.pid, processes=idle)
                    point = postgis.pgbench(pg, b, clients=c, seconds=seconds, limit=ROWS, core=load_core,
                                            workdir=workdir)
                    cpu = settled_session_cpu_seconds(pg.pid, processes=idle) - cpu0
                    point["server_cpu_s"] = round(cpu, 2)
                    point["cpu_ms_per_request"] = 1000 * cpu / max(point["requests"], 1)
                    rounds.append(point)
                rounds.sort(key=lambda p: p["req_s"])
                median = dict(rounds[len(rounds) // 2])
                median["rounds_req_s"] = [p["req_s"] for p in rounds]
                result[name][str(c)] = median
            if 1 in connections:
                with _pinned_self(load_core):
                    p = postgis.psycopg_p50(pg, b, limit=ROWS, repeat=max(100, 50 * seconds))
                result[name]["psycopg_1"] = p if p is not None else {
                    "skipped": "psycopg is not installed (pip install -e '.[bench]')"}
    return result


def targets(out: dict, *, boxes: list[str], connections: tuple[int, ...]) -> list[dict]:
    """Each issue-13 figure this run measured, its value, and whether it meets the target where
    the issue sets one: req/s ratios and p99 at 16 connections, a warm tile's p50 for one client,
    CPU per request at any load. The other connection count is listed as information."""
    rows: list[dict] = []

    def add(figure: str, box: str, c: int, value: float | None, unit: str, op: str, bound: float, *,
            at: int | None = None) -> None:
        if value is None or not math.isfinite(value):
            return
        met = (value >= bound if op == ">=" else value <= bound) if at in (None, c) else None
        rows.append({"figure": figure, "box": box, "connections": c, "value": value, "unit": unit,
                     "target": f"{op} {bound:g}{unit}" + (f" at c={at}" if at else ""), "met": met})

    def point(who: str, box: str, c: int) -> dict | None:
        return out.get(who, {}).get(box, {}).get(str(c))

    for box in boxes:
        for c in connections:
            ours = point("ours", box, c)
            if ours is None:
                continue
            for peer, figure, bound in (("datasette_plain", "req/s vs Datasette plain table", 2),
                                        ("datasette_atvira", "req/s vs Datasette running Atvira's query", 12),
                                        ("postgis", "req/s vs PostGIS pgbench (no HTTP)", 0.5)):
                other = point(peer, box, c)
                if other:
                    add(figure, box, c, ratio(ours["req_s"], other["req_s"]), "x", ">=", bound, at=16)
            add("server CPU per request", box, c, ours.get("cpu_ms_per_request"), " ms", "<=", 2)
            if c == 16:
                add("p99 at 16 connections", box, c, ours.get("p99_ms"), " ms", "<=", 50)
    tile = out.get("tile", {})
    for kind in ("points", "clusters"):
        for c in sorted(int(k) for k in tile.get(kind, {}) if k.isdigit()):
            hit = tile[kind][str(c)]
            if hit:
                add(f"warm map {kind} request through nginx's cache, p50", "dense", c, hit["p50_ms"], " ms", "<=", 1, at=1)
    return rows


def run(ctx: Context) -> dict:
    size = ctx.sizes[-1]
    seconds = QUICK_SECONDS if ctx.quick else int(os.environ.get("ATVIRA_BENCH_LOAD_SECONDS", str(SECONDS)))
    with tempfile.TemporaryDirectory(prefix="atvira-load-") as workdir:  # server logs, never beside the stores
        return {str(size): run_one(ctx.store(size), seconds=seconds, workdir=Path(workdir),
                                   connections=(16,) if ctx.quick else CONNECTIONS,
                                   warmup=0 if ctx.quick else WARMUP_SECONDS, with_postgis=not ctx.quick,
                                   # the tile figure is one client's p50
                                   tile_connections=(1,) if ctx.quick else CONNECTIONS,
                                   # --quick: one box (each costs every server a warm-up and a point)
                                   box_names=("sparse",) if ctx.quick else ("dense", "sparse"))}


WHO = {"ours": "Atvira (gunicorn)", "datasette_plain": "Datasette plain table", "datasette_atvira":
       "Datasette, Atvira's query", "postgis": "PostGIS (pgbench)"}


VERDICT = {True: "met", False: "NOT MET", None: "info"}


def _fmt_point(x: dict) -> str:
    cpu = x.get("cpu_ms_per_request")
    return (f"{x['req_s']:>7,.0f} req/s | p50 {x['p50_ms']:7.2f} ms | p99 {x['p99_ms']:7.1f} ms"
            f" | CPU {cpu if cpu is not None else float('nan'):6.2f} ms/req | errors {x['errors']}")


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        tag = f"load {int(size):>9,}"
        rows_in = ", ".join(f"{name} {n:,} ({r['box_km'][name][0]:.1f} x {r['box_km'][name][1]:.1f} km)"
                            for name, n in r["rows_in_box"].items())
        lines.append(f"{tag}: rows in box: {rows_in}, {ROWS} answered (the 2 km box in central Vilnius holds"
                     f" {r['rows_in_2km_box']:,}); {r['seconds_per_point']} s per point after "
                     + (f"{r['warmup_seconds']} s warm-up" if r["warmup_seconds"] else f"{QUICK_WARM_REQUESTS} warm-up requests")
                     + f"; servers pinned to core 0, wrk/pgbench to core 1: {r['pinned']}")
        for who in WHO:
            if "skipped" in r.get(who, {}):
                lines.append(f"{tag} {WHO[who]}: skipped: {r[who]['skipped']}")
        pg = r.get("postgis", {})
        if "load" in pg:
            lines.append(f"{tag} PostGIS: {pg['load']['rows']:,} rows loaded + GiST in {pg['load']['load_s']} s;"
                         f" rows in box {pg['rows_in_box']}")
        for name in r["rows_in_box"]:
            for c in sorted({c for who in WHO for c in r.get(who, {}).get(name, {}) if c.isdigit()}, key=int):
                for who in WHO:
                    x = r.get(who, {}).get(name, {}).get(c)
                    if x:
                        spread = (f" | median of {len(x['rounds_req_s'])} rounds:"
                                  f" {', '.join(f'{v:,.0f}' for v in x['rounds_req_s'])}" if "rounds_req_s" in x else "")
                        lines.append(f"{tag} {name:<6} c={c:<2} {WHO[who]:<26} {_fmt_point(x)}{spread}")
                psy = pg.get(name, {}).get("psycopg_1", {})
                if c == "1" and "p50_ms" in psy:
                    lines.append(f"{tag} {name:<6} c=1  {'PostGIS via psycopg':<26} p50 {psy['p50_ms']:.2f} ms"
                                 f" (one Python client, prepared, {psy['n']} queries)")
        tile = r.get("tile", {})
        if "skipped" in tile:
            lines.append(f"{tag} warm tile through nginx: skipped: {tile['skipped']}")
        for kind in ("points", "clusters"):
            t = tile.get(kind)
            if not t:
                continue
            lines.append(f"{tag} tile {kind}: {t['url']} ({t['bytes']:,} bytes; {t['cache_control']}):"
                         f" first {t['cold_ms']:.1f} ms X-Cache-Status {t['first_status']}, then"
                         f" {t['warm_status']}, after wrk {t['after_status']}")
            for c in sorted((k for k in t if k.isdigit()), key=int):
                lines.append(f"{tag} tile {kind:<8} c={c:<2} {'nginx cache HIT':<17} {_fmt_point(t[c])}")
        for row in r.get("targets", []):
            value = f"{row['value']:.2f}{row['unit']}"
            lines.append(f"{tag} target {row['box']:<6} c={row['connections']:<2} {row['figure']:<58} {value:>10}"
                         f"  (target {row['target']}) {VERDICT[row['met']]}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from .__main__ import main

    raise SystemExit(main(["--only", "load", *sys.argv[1:]]))
