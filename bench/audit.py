"""Audit pages served from the stored indicators, and what recomputing them costs after an ingest.

    python -m bench.audit --db bench/stores/synth-1000000-1.db [--work /tmp]

The synthetic stores carry no areas, so the store is copied into --work once (never written in
place), the 60 municipalities and 554 elderships are loaded into the copy (which places every
facility, as `atvira areas load` does) and the audit is recomputed. Measured in the same run:

floor       : sqlite3 reading the 60 stored municipality rows of one category (the least any
              audit page must do)
live_sql    : the same per-10k figures computed from the facilities per request (GROUP BY over
              json_each) — what a page would cost without the stored tables
audit       : GET /audit through Flask in-process (table, national totals, 60-shape choropleth)
audit_code  : GET /audit/13 (Vilnius: indicators, two eldership maps, checklist, data quality)
*_http      : the same over a real loopback HTTP server (werkzeug), keep-alive client
recompute   : audit.recompute on the whole store (what every ingest now ends with)
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import requests

from directory import audit
from directory.config import Settings
from directory.store import connect

from .common import ratio, serve_in_thread, store_bench_main, timeit

ROOT = Path(__file__).resolve().parents[1]
AREAS = ROOT.parent / "shared" / "data" / "govlt-powerbi-map-lt"

FLOOR_SQL = ("SELECT a.code, a.name, i.* FROM areas a JOIN audit_indicators i"
             " ON i.level = 'municipality' AND i.code = a.code AND i.category = ? WHERE a.level = 'municipality'")
LIVE_SQL = """
    SELECT a.code, a.population, count(f.rid) * 10000.0 / a.population
    FROM areas a LEFT JOIN (
        SELECT f.rid, f.municipality_code FROM facilities f, json_each(f.categories) j
        WHERE j.value = ? AND f.status IN ('active', 'unknown')) f ON f.municipality_code = a.code
    WHERE a.level = 'municipality' GROUP BY a.code
"""


def _area_count(db: Path) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM areas").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def prepare(db: Path, work: Path) -> tuple[Path, dict]:
    """A copy of `db` with the areas loaded and the audit computed (reused when already there)."""
    from directory.areas_store import save_areas
    from ingest.areas import read_areas

    facts: dict = {}
    if _area_count(db):
        target = db
    else:
        work.mkdir(parents=True, exist_ok=True)
        target = work / f"audit-{db.name}"
        marker = target.with_suffix(".audit-ok")
        if not (target.exists() and marker.exists()):
            t = time.perf_counter()
            shutil.copy(db, target)
            conn = connect(target)
            areas = read_areas(AREAS)
            t2 = time.perf_counter()
            save_areas(conn, areas)
            facts["areas_load_s"] = round(time.perf_counter() - t2, 2)
            conn.close()
            marker.write_text(json.dumps(facts))
            facts["prepare_s"] = round(time.perf_counter() - t, 2)
        else:
            facts.update(json.loads(marker.read_text() or "{}"))
    return target, facts


def run_one(db: Path, *, work: Path, repeat: int = 100) -> dict:
    from app import create_app

    target, facts = prepare(db, work)
    conn = connect(target)
    size = conn.execute("SELECT count(*) FROM facilities").fetchone()[0]
    t = time.perf_counter()
    summary = audit.recompute(conn)
    recompute_s = time.perf_counter() - t
    conn.close()

    reader = connect(target, readonly=True)
    floor = timeit(lambda: reader.execute(FLOOR_SQL, ("kindergarten",)).fetchall(), repeat=repeat)
    live = timeit(lambda: reader.execute(LIVE_SQL, ("kindergarten",)).fetchall(), repeat=3, warmup=1)
    app = create_app(Settings(db=target, tile_url=""))
    client = app.test_client()
    pages = {"audit": "/audit?category=kindergarten", "audit_code": "/audit/13?category=kindergarten"}
    out: dict = {"facilities": size, **facts, "recompute_s": round(recompute_s, 2),
                 "recompute_parts_s": summary["timings"], "institutions": summary["institutions"],
                 "floor_ms": floor, "live_sql_ms": live}
    for key, url in pages.items():
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        out[f"{key}_bytes"] = len(resp.data)
        out[f"{key}_ms"] = timeit(lambda url=url: client.get(url).get_data(), repeat=repeat)
    with serve_in_thread(app) as base, requests.Session() as http:
        for key, url in pages.items():
            out[f"{key}_http_ms"] = timeit(lambda url=url: http.get(base + url).content, repeat=repeat)
    for key in ("audit", "audit_code"):
        out[f"ratio_{key}_to_floor_p50"] = ratio(out[f"{key}_ms"]["p50"], floor["p50"])
    out["ratio_live_sql_to_audit_p50"] = ratio(live["p50"], out["audit_ms"]["p50"])
    reader.close()
    return out


def run(ctx) -> dict:
    """For `python -m bench`: the largest store of the run, its prepared copy kept beside the stores."""
    # --quick: 10 samples a page (each /audit answer takes ~50 ms at 10k: bench --quick under a minute)
    return run_one(ctx.store(max(ctx.sizes)), work=ctx.stores, repeat=10 if ctx.quick else max(10, ctx.repeat // 2))


def report(r: dict) -> str:
    return (
        f"audit {r['facilities']:>9,}: recompute {r['recompute_s']:.1f}s"
        f" | floor p50 {r['floor_ms']['p50']:.2f} ms"
        f" | /audit p50 {r['audit_ms']['p50']:.1f} ms ({r['ratio_audit_to_floor_p50']:.0f}x floor;"
        f" http {r['audit_http_ms']['p50']:.1f} ms)"
        f" | /audit/13 p50 {r['audit_code_ms']['p50']:.1f} ms ({r['ratio_audit_code_to_floor_p50']:.0f}x;"
        f" http {r['audit_code_http_ms']['p50']:.1f} ms)"
        f" | per-request SQL instead {r['live_sql_ms']['p50']:.0f} ms ({r['ratio_live_sql_to_audit_p50']:.0f}x /audit)"
    )


def main(argv: list[str] | None = None) -> int:
    return store_bench_main(argv, prog="python -m bench.audit", doc=__doc__, run_one=run_one, report=report)


if __name__ == "__main__":
    raise SystemExit(main())
