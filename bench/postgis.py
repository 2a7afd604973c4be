"""The PostGIS peer of the load benchmark: a throwaway PostgreSQL 15 + PostGIS 3 cluster holding
the same rows as the plain Datasette table, asked the same bbox SQL by pgbench.

    with cluster(core=0) as pg:      # initdb + postgres on a free loopback port
        load_rows(pg, plain_db)                # COPY the 9 columns; geometry + GiST index
        pgbench(pg, box, clients=16, seconds=10, core=1)

The cluster lives in a temporary directory and is stopped and removed when the block ends,
also on Ctrl-C or an error (postgres runs in its own session, so a terminal's Ctrl-C reaches
only us, and the `finally` stops it). initdb refuses to run as root, so as root the cluster
runs as the `postgres` user (Debian's package creates it). Only Debian's packages are needed:
`apt-get install postgresql-15 postgresql-15-postgis-3`; `available()` says what is missing.
"""

from __future__ import annotations

import csv
import os
import pwd
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .common import free_port

INSTALL = "apt-get install postgresql-15 postgresql-15-postgis-3"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT = 60.0  # seconds for initdb'd postgres to accept connections

# The plain table of bench.load (the rows Datasette serves), with a geometry computed from
# lon/lat and a GiST index: what a PostGIS user would publish.
CREATE = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE plain (id text, name text, category text, lon double precision, lat double precision,
                    changing_table text, feeding_room text, wheelchair text, toilet text,
                    geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED);
"""
INDEX = "CREATE INDEX plain_geom ON plain USING gist (geom)"
# The same SQL as Datasette's plain table: 9 columns, the box, no ORDER BY, LIMIT.
BOX_SQL = ("SELECT id, name, category, lon, lat, changing_table, feeding_room, wheelchair, toilet FROM plain"
           " WHERE geom && ST_MakeEnvelope({w}, {s}, {e}, {n}, 4326) LIMIT {limit}")
COLUMNS = ("id", "name", "category", "lon", "lat", "changing_table", "feeding_room", "wheelchair", "toilet")


def _tool(name: str) -> str | None:
    found = PG_BIN / name
    return str(found) if found.exists() else shutil.which(name)


def available() -> str | None:
    """None when a PostGIS cluster can be started here, else why not (with the install line)."""
    for tool in ("initdb", "postgres", "psql", "pgbench"):
        if _tool(tool) is None:
            return f"PostgreSQL is not installed ({tool} missing): {INSTALL}"
    pg_config = _tool("pg_config")
    share = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True) if pg_config else None
    sharedir = Path((share.stdout.strip() if share else "") or "/usr/share/postgresql/15")
    if not any((sharedir / "extension").glob("postgis.control")):
        return f"PostGIS is not installed (no postgis extension in {sharedir}): {INSTALL}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run initdb as (useradd postgres)"
    return None


@dataclass(frozen=True)
class Cluster:
    port: int
    pid: int  # the postmaster; its backends share its session (see bench.load.session_cpu_seconds)
    user: str
    dbname: str = "bench"

    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.dbname}"

    def args(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]


def _psql(pg: Cluster, sql: str, *, db: str | None = None, timeout: float = 120) -> str:
    done = subprocess.run([_tool("psql"), *pg.args(), "-d", db or pg.dbname, "-v", "ON_ERROR_STOP=1", "-qAt",
                           "-c", sql], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed on {sql.strip()[:80]!r}: {done.stderr.strip()[-2000:]}")
    return done.stdout


@contextmanager
def cluster(*, core: int | None = None) -> Iterator[Cluster]:
    """initdb and start a PostgreSQL cluster on a free loopback port (pinned to `core`); stop
    it and remove its files afterwards, whatever happens in the block."""
    as_root = os.geteuid() == 0
    account = pwd.getpwnam("postgres") if as_root else pwd.getpwuid(os.geteuid())
    tmp = Path(tempfile.mkdtemp(prefix="atvira-pg-"))  # its own: the postgres user must reach it
    proc = None
    # a plain `kill` of the benchmark must stop the cluster too: SIGTERM unwinds like Ctrl-C
    previous = (signal.signal(signal.SIGTERM, _exit_on_term)
                if threading.current_thread() is threading.main_thread() else None)
    try:
        if as_root:
            os.chown(tmp, account.pw_uid, account.pw_gid)
        data = tmp / "data"
        run_as = {"user": account.pw_uid, "group": account.pw_gid} if as_root else {}
        init = subprocess.run([_tool("initdb"), "-D", str(data), "-U", account.pw_name, "--auth=trust", "-E", "UTF8",
                               "--locale=C", "--no-sync"], capture_output=True, text=True, cwd=tmp, **run_as)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {(init.stderr or init.stdout).strip()[-2000:]}")
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1", "port": str(port), "unix_socket_directories": str(tmp),
            # a benchmark's throwaway copy: durability off so the load is quick; the query
            # path (shared buffers hold the 1M rows and their index) as a tuned server has it
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
            "shared_buffers": "512MB", "max_connections": "50", "jit": "off",
            "max_parallel_workers_per_gather": "0",  # one core: a parallel plan only adds overhead
            "logging_collector": "off",
        }
        cmd = [_tool("postgres"), "-D", str(data), *[a for k, v in settings.items() for a in ("-c", f"{k}={v}")]]
        if core is not None:
            cmd = ["taskset", "-c", str(core), *cmd]
        log = open(tmp / "postgres.log", "wb")  # noqa: SIM115 (closed below, after the server)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True, **run_as)
        pg = Cluster(port=port, pid=proc.pid, user=account.pw_name)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {proc.returncode}: {(tmp / 'postgres.log').read_text()[-2000:]}")
            ready = subprocess.run([_tool("pg_isready") or "pg_isready", *pg.args()], capture_output=True)
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not accept connections within {START_TIMEOUT:.0f} s")
            time.sleep(0.2)
        _psql(pg, f"CREATE DATABASE {pg.dbname}", db="postgres")
        yield pg
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # "fast" shutdown: ends the backends, no checkpoint wait
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()  # its children (sessions of their own) exit when they see it gone
                    proc.wait(timeout=10)
            log.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def load_rows(pg: Cluster, plain_db: Path) -> dict:
    """COPY the plain table's rows (bench.load.plain_store) in, then the geometry and GiST index."""
    started = time.perf_counter()
    _psql(pg, CREATE)
    copy = subprocess.Popen([_tool("psql"), *pg.args(), "-d", pg.dbname, "-v", "ON_ERROR_STOP=1", "-q", "-c",
                             f"COPY plain ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    src = sqlite3.connect(f"file:{plain_db}?mode=ro", uri=True)
    rows = 0
    try:
        writer = csv.writer(copy.stdin, lineterminator="\n")
        cur = src.execute(f"SELECT {', '.join(COLUMNS)} FROM plain")
        while batch := cur.fetchmany(10_000):
            writer.writerows(batch)  # None is an empty unquoted field: NULL to COPY csv
            rows += len(batch)
    finally:
        src.close()
        copy.stdin.close()
        err = copy.stderr.read()
        if copy.wait(timeout=600) != 0:
            raise RuntimeError(f"COPY into PostGIS failed: {err.strip()}")
    _psql(pg, INDEX, timeout=1800)
    _psql(pg, "VACUUM ANALYZE plain", timeout=1800)  # not in a transaction: a statement of its own
    return {"rows": rows, "load_s": round(time.perf_counter() - started, 1)}


def count_in_box(pg: Cluster, box: tuple[float, float, float, float]) -> int:
    w, s, e, n = box
    return int(_psql(pg, f"SELECT count(*) FROM plain WHERE geom && ST_MakeEnvelope({w}, {s}, {e}, {n}, 4326)").strip())


def _pct(sorted_ms: list[float], p: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(p * len(sorted_ms)))] if sorted_ms else float("nan")


def pgbench(pg: Cluster, box: tuple[float, float, float, float], *, clients: int, seconds: int, limit: int,
            core: int | None = None, workdir: Path) -> dict:
    """`pgbench -M prepared` of the box SQL: queries/s and latency percentiles (from its
    per-transaction log), with the server's CPU per query when the caller measures it."""
    w, s, e, n = box
    script = workdir / "box.sql"
    script.write_text(BOX_SQL.format(w=w, s=s, e=e, n=n, limit=limit) + ";\n")
    logdir = Path(tempfile.mkdtemp(prefix="pgbench-", dir=workdir))
    cmd = [_tool("pgbench"), *pg.args(), "-n", "-M", "prepared", "-f", str(script), "-c", str(clients),
           "-j", str(min(clients, 2)), "-T", str(seconds), "-l", "--log-prefix", str(logdir / "tx"), pg.dbname]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=True, cwd=logdir).stdout
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    failed = int(m.group(1)) if (m := re.search(r"number of failed transactions: (\d+)", out)) else 0
    latencies = []
    for f in logdir.glob("tx*"):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                latencies.append(int(parts[2]) / 1000)  # µs -> ms
    shutil.rmtree(logdir, ignore_errors=True)
    latencies.sort()
    return {"connections": clients, "seconds": seconds, "req_s": tps, "requests": len(latencies), "errors": failed,
            "p50_ms": _pct(latencies, 0.50), "p99_ms": _pct(latencies, 0.99)}


def psycopg_p50(pg: Cluster, box: tuple[float, float, float, float], *, limit: int, repeat: int) -> dict | None:
    """p50 of the box SQL from Python over one connection (psycopg 3, server-side prepared), or
    None when psycopg is not installed (`pip install -e '.[bench]'`)."""
    try:
        import psycopg  # optional: only this peer's extra figure needs it
    except ImportError:
        return None
    w, s, e, n = box
    sql = BOX_SQL.format(w="%s", s="%s", e="%s", n="%s", limit=limit)
    samples = []
    with psycopg.connect(pg.dsn()) as conn:
        for i in range(repeat + 20):
            t = time.perf_counter()
            conn.execute(sql, (w, s, e, n), prepare=True).fetchall()
            if i >= 20:  # the first ones prepare and warm up
                samples.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": statistics.median(samples), "n": len(samples)}
