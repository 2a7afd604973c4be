"""Server CPU per bbox request (issue 13: <= 2 ms), by phase, the served path against the old.

new : what `atvira serve --production` runs: the map's page answered by the WSGI fast path
      (directory.web.fastpath), its rids read from the map-cell index (search._cell_page; the
      R*Tree alone, search._box_page, for a box wider than search.MAX_CELLS cells) by a reader
      that maps the whole store (db.open_reader).
old : the same code with those three turned off (Flask's full request machinery and hooks, the
      general R*Tree-join-facilities statement sorted over every row in the box, the store's
      default 256 MB map): the path as it was before them.

Two measures, each interleaved old/new in one run so a busy machine moves both alike:
- in-process: the WSGI call (no socket) and its phases (the page's SQL, the rest), CPU time;
  beside them the floor of any page statement over this store (FLOOR_SQL: the page's rows
  visited by rid, their ready text read, nothing searched, sorted or joined);
- pinned gunicorn: one worker (2 threads) per path on core 0, wrk on core 1, the workers' CPU
  time (/proc utime+stime) divided by the requests served: the issue's figure. Beside them, on
  the sparse box, "bare": the same gunicorn answering the new path's exact bytes and headers with
  no app work, so gunicorn's own share (HTTP parsing, the socket, sending ~300 KB over loopback)
  is measured, not guessed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Context, box_with_rows, free_port, ratio
from .load import _server, dense_box, wrk

ROWS = 500
DENSE_ROWS = 8575
TARGET_CPU_MS = 2.0


def old_app() -> Any:
    """The app as the old path ran it (gunicorn imports this: `bench.serve_cpu:old_app()`)."""
    from app import create_app
    from directory import search
    from directory.config import Settings
    from directory.db import ThreadConnections
    from directory.store import connect

    settings = Settings.from_env()
    app = create_app(settings)
    app.wsgi_app.enabled = False  # Flask and every hook
    search._plain_box = lambda query: False  # the general statement (rows joined, sorted)
    app.extensions["atvira_readers"] = ThreadConnections(lambda: connect(settings.db, readonly=True))
    return app


def bare_app() -> Any:
    """gunicorn's own cost per request (gunicorn imports this: `bench.serve_cpu:bare_app()`): a
    WSGI callable answering every request with the sparse page's status line, headers and bytes,
    taken once from the real app (files named by ATVIRA_BENCH_BARE), doing no other work."""
    prefix = Path(os.environ["ATVIRA_BENCH_BARE"])
    body = prefix.with_suffix(".body").read_bytes()
    headers = [tuple(h) for h in json.loads(prefix.with_suffix(".json").read_text())]

    def app(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", headers)
        return [body]

    return app


def _bare_answer(db: Path, box: tuple[float, float, float, float], prefix: Path) -> None:
    """Write the new path's answer to `box` where bare_app reads it."""
    app = _new_app(db)
    resp = app.test_client().get(_url(box), base_url="http://127.0.0.1")
    prefix.with_suffix(".body").write_bytes(resp.get_data())
    prefix.with_suffix(".json").write_text(json.dumps(list(resp.headers.items())))


def _new_app(db: Path) -> Any:
    from app import create_app
    from directory.config import Settings

    return create_app(Settings(db=db))


def _url(box: tuple[float, float, float, float]) -> str:
    return "/api/facilities?bbox=" + ",".join(f"{v:.7f}" for v in box) + f"&limit={ROWS}"


# The least any page statement over this store does: visit the page's rows by rid (given, not
# found) and read their two ready-text columns, with no box search, no sort and no text joined.
# (A text's length counts its characters; a blob's is its size: the cast only retypes the value.)
FLOOR_SQL = ("SELECT sum(length(CAST(f.feature_head AS BLOB)) + length(CAST(f.feature_tail AS BLOB)))"
             " FROM json_each(?) j CROSS JOIN facilities f ON f.rid = j.value")


def in_process(db: Path, boxes: dict, *, calls: int, rounds: int) -> dict:
    """CPU ms per WSGI call, old and new interleaved, and the new path's SQL share."""
    from werkzeug.test import EnvironBuilder

    from directory import search
    from directory.query import parse_query

    os.environ["ATVIRA_DB"] = str(db)
    new = _new_app(db)
    plain_box = search._plain_box
    old = old_app()
    search._plain_box = plain_box  # old_app patched the module: the old app's turn patches it again below
    out: dict = {}
    for name, box in boxes.items():
        env = EnvironBuilder(path="/api/facilities", query_string=_url(box).split("?", 1)[1],
                             base_url="http://127.0.0.1").get_environ()

        def call(app: Any, env: dict = env) -> None:
            body = app(dict(env), lambda status, headers, exc=None: None)
            for _ in body:
                pass
            getattr(body, "close", lambda: None)()

        query = parse_query({"bbox": ",".join(map(str, box)), "limit": str(ROWS)})
        conn = new.extensions["atvira_readers"].get()
        rids = json.dumps([r[0] for r in conn.execute(
            "SELECT r.rid FROM facilities_rtree r JOIN facilities f ON f.rid = r.rid WHERE r.max_lon >= ?"
            " AND r.min_lon <= ? AND r.max_lat >= ? AND r.min_lat <= ? AND f.lon BETWEEN ? AND ?"
            " AND f.lat BETWEEN ? AND ? ORDER BY r.rid LIMIT ?",
            (box[0], box[2], box[1], box[3], box[0], box[2], box[1], box[3], ROWS))])
        times: dict[str, list[float]] = {"old": [], "new": [], "new_sql": [], "floor": []}
        for app, label in ((old, "old"), (new, "new")):  # warm both
            search._plain_box = (lambda q: False) if label == "old" else plain_box
            call(app)
        for _ in range(rounds):
            for label, app in (("old", old), ("new", new)):
                search._plain_box = (lambda q: False) if label == "old" else plain_box
                t = time.thread_time()
                for _ in range(calls):
                    call(app)
                times[label].append((time.thread_time() - t) * 1000 / calls)
            t = time.thread_time()
            for _ in range(calls):
                search.query_page(conn, query)
            times["new_sql"].append((time.thread_time() - t) * 1000 / calls)
            t = time.thread_time()
            for _ in range(calls):
                conn.execute(FLOOR_SQL, (rids,)).fetchone()
            times["floor"].append((time.thread_time() - t) * 1000 / calls)
        search._plain_box = plain_box
        best = {k: min(v) for k, v in times.items()}
        out[name] = {"old_ms": round(best["old"], 3), "new_ms": round(best["new"], 3),
                     "new_sql_ms": round(best["new_sql"], 3),
                     "new_rest_ms": round(best["new"] - best["new_sql"], 3),
                     "floor_sql_ms": round(best["floor"], 3),
                     "speedup": ratio(best["old"], best["new"])}
    return out


def pinned(db: Path, boxes: dict, *, seconds: int, connections: tuple[int, ...], workdir: Path) -> dict:
    """req/s, p50/p99 and CPU ms/request of one pinned gunicorn worker per path, interleaved."""
    from directory.config import Settings
    from directory.serving import gunicorn_command, gunicorn_environment

    cores = os.cpu_count() or 1
    pin = shutil.which("taskset") is not None and cores >= 2
    out: dict = {"pinned": pin}
    root = Path(__file__).resolve().parents[1]
    servers = {}
    stack = []
    bare = workdir / "bare"
    _bare_answer(db, boxes["sparse"], bare)
    try:
        for label, app in (("new", None), ("old", "bench.serve_cpu:old_app()"), ("bare", "bench.serve_cpu:bare_app()")):
            port = free_port()
            env = gunicorn_environment(Settings(db=db), host="127.0.0.1", port=port, workers=1, threads=2)
            env["ATVIRA_SECRET_KEY"] = secrets.token_hex(32)
            env["ATVIRA_BENCH_BARE"] = str(bare)
            cmd = gunicorn_command()
            if app:
                cmd[-1] = app
            if pin:
                cmd = ["taskset", "-c", "0", *cmd]
            base = f"http://127.0.0.1:{port}"
            ctx = _server(cmd, env=env, cwd=root, ready_url=base + _url(boxes["sparse"]),
                          log=workdir / f"gunicorn-{label}.log")
            servers[label] = (base, ctx.__enter__())
            stack.append(ctx)
        for name, box in boxes.items():
            for base, _pid in servers.values():  # warm-up, not recorded
                wrk(base + _url(box), connections=max(connections), seconds=2, core=1 if pin else None)
            for c in connections:
                for label, (base, pid) in servers.items():
                    if label == "bare" and name != "sparse":
                        continue  # it answers the sparse page's bytes to any request
                    r = wrk(base + _url(box), connections=c, seconds=seconds, server=pid, core=1 if pin else None)
                    out.setdefault(name, {}).setdefault(str(c), {})[label] = {
                        k: r.get(k) for k in ("req_s", "p50_ms", "p99_ms", "cpu_ms_per_request", "errors")}
                pair = out[name][str(c)]
                pair["cpu_ratio_old_to_new"] = ratio(pair["old"]["cpu_ms_per_request"], pair["new"]["cpu_ms_per_request"])
    finally:
        for ctx in reversed(stack):
            ctx.__exit__(None, None, None)
    return out


def run_one(db: Path, *, quick: bool, workdir: Path) -> dict:
    sparse, _n = box_with_rows(db, ROWS)
    boxes = {"sparse": sparse, "dense": dense_box()}
    if not quick:
        # the dense box held 8,575 facilities at 1M; today's synthetic 1M store has
        # 2,176 in load.dense_box, so a box around the same centre holding 8,575 is measured too
        boxes["dense8575"] = box_with_rows(db, DENSE_ROWS)[0]
    import sqlite3

    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    rows_in = {name: conn.execute(
        "SELECT count(*) FROM facilities_rtree WHERE max_lon >= ? AND min_lon <= ? AND max_lat >= ? AND min_lat <= ?",
        (b[0], b[2], b[1], b[3])).fetchone()[0] for name, b in boxes.items()}
    conn.close()
    out: dict = {"store": str(db), "rows_in_box": rows_in}
    out["in_process"] = in_process(db, boxes, calls=10 if quick else 30, rounds=3 if quick else 7)
    if quick:  # --quick stays under a minute: the in-process figures only
        out["gunicorn"] = {"skipped": "--quick: in-process only"}
    elif shutil.which("wrk") is None:
        out["gunicorn"] = {"skipped": "wrk is not installed (apt-get install wrk)"}
    else:
        seconds = int(os.environ.get("ATVIRA_BENCH_LOAD_SECONDS") or 5)
        out["gunicorn"] = pinned(db, boxes, seconds=seconds, connections=(1, 16), workdir=workdir)
    return out


def run(ctx: Context) -> dict:
    with tempfile.TemporaryDirectory(prefix="atvira-serve-cpu-") as tmp:
        return {str(size): run_one(ctx.store(size), quick=ctx.quick, workdir=Path(tmp)) for size in ctx.sizes}


def report(result: dict) -> str:
    lines = ["serve_cpu: server CPU per bbox request (limit 500), new path vs old, interleaved"]
    for size, r in result.items():
        if not isinstance(r, dict) or "in_process" not in r:
            continue
        lines.append(f"  {int(size):,} facilities; in the box: {r['rows_in_box']}")
        for name, p in r["in_process"].items():
            lines.append(f"    in-process {name:9s}: new {p['new_ms']:.2f} ms (SQL {p['new_sql_ms']:.2f}, rest "
                         f"{p['new_rest_ms']:.2f}) vs old {p['old_ms']:.2f} ms: {p['speedup']:.2f}x")
            if "floor_sql_ms" in p:
                lines.append(f"      the page's {ROWS} rows only visited by rid and their ready text read (FLOOR_SQL):"
                             f" {p['floor_sql_ms']:.2f} ms, {p['floor_sql_ms'] / max(p['new_sql_ms'], 1e-9):.0%} of the page's SQL")
        g = r["gunicorn"]
        if "skipped" in g:
            lines.append(f"    gunicorn: skipped ({g['skipped']})")
            continue
        for name in ("sparse", "dense", "dense8575"):
            for c, pair in g.get(name, {}).items():
                n, o = pair["new"], pair["old"]
                met = "met" if n["cpu_ms_per_request"] <= TARGET_CPU_MS else "NOT met"
                lines.append(f"    gunicorn {name:9s} c={c:>2}: new {n['cpu_ms_per_request']:.2f} ms CPU/request "
                             f"({n['req_s']:.0f} req/s, p99 {n['p99_ms']} ms) vs old {o['cpu_ms_per_request']:.2f} ms "
                             f"({o['req_s']:.0f} req/s): {pair['cpu_ratio_old_to_new']:.2f}x less; "
                             f"target <= {TARGET_CPU_MS} ms: {met}")
                if "bare" in pair:
                    b = pair["bare"]
                    share = n["cpu_ms_per_request"] - b["cpu_ms_per_request"]
                    lines.append(f"      gunicorn alone (the same bytes and headers, no app work): {b['cpu_ms_per_request']:.2f} ms "
                                 f"CPU/request ({b['req_s']:.0f} req/s); the app's share under gunicorn: {share:.2f} ms")
                    inproc = r["in_process"].get(name)
                    if inproc:  # what neither measure holds: caches and scheduling when served over a socket
                        lines.append(f"      of which the same WSGI call in-process (best round): {inproc['new_ms']:.2f} ms; "
                                     f"left over when served (caches, the socket, the thread hand-offs): "
                                     f"{share - inproc['new_ms']:.2f} ms")
    return "\n".join(lines)
