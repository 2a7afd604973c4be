"""The social-cluster pages served from the stored figures, and what recomputing them costs.

    python -m bench.cluster --db bench/stores/synth-1000000-1.db [--work /tmp]

The store is prepared as for the audit bench (a copy with the 60 municipalities and 554
elderships loaded, which places every facility), then `social_cluster.recompute` runs (timed).
Measured in the same run:

floor         : sqlite3 reading the 60 stored municipality rows (the least /cluster must do)
live_sql      : the municipality x kind x sector counts grouped from the facilities per request
                (json_each + GROUP BY): what /cluster would cost without the stored tables
cluster       : GET /cluster in-process (pilots, per-kind shares, 60-shape choropleth, table)
cluster_code  : GET /cluster/82 (Utena: kind x sector table, actors, partner suggestions by
                geodesic distance through the R*Tree, the actors map)
api_code      : GET /api/cluster/82 (the same figures as JSON)
"""

from __future__ import annotations

import time
from pathlib import Path

from directory import social_cluster
from directory.config import Settings
from directory.store import connect

from .audit import prepare
from .common import ratio, store_bench_main, timeit

FLOOR_SQL = "SELECT * FROM cluster_areas WHERE level = 'municipality' ORDER BY name"
LIVE_SQL = """
    SELECT f.municipality_code, c.value, f.sector, count(*) FROM facilities f, json_each(f.categories) c
    WHERE f.status IN ('active', 'unknown') AND f.municipality_code IS NOT NULL GROUP BY 1, 2, 3
"""
UTENA = "82"


def run_one(db: Path, *, work: Path, repeat: int = 100) -> dict:
    from app import create_app

    target, facts = prepare(db, work)
    conn = connect(target)
    size = conn.execute("SELECT count(*) FROM facilities").fetchone()[0]
    t = time.perf_counter()
    summary = social_cluster.recompute(conn)
    recompute_s = time.perf_counter() - t
    conn.close()

    reader = connect(target, readonly=True)
    floor = timeit(lambda: reader.execute(FLOOR_SQL).fetchall(), repeat=repeat)
    live = timeit(lambda: reader.execute(LIVE_SQL).fetchall(), repeat=3, warmup=1)
    app = create_app(Settings(db=target, tile_url=""))
    client = app.test_client()
    pages = {"cluster": "/cluster", "cluster_code": f"/cluster/{UTENA}", "api_code": f"/api/cluster/{UTENA}"}
    out: dict = {"facilities": size, **facts, "recompute_s": round(recompute_s, 2), "areas": summary["areas"],
                 "floor_ms": floor, "live_sql_ms": live}
    for key, url in pages.items():
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        out[f"{key}_bytes"] = len(resp.data)
        out[f"{key}_ms"] = timeit(lambda url=url: client.get(url).get_data(), repeat=repeat)
    out["ratio_cluster_to_floor_p50"] = ratio(out["cluster_ms"]["p50"], floor["p50"])
    out["ratio_live_sql_to_cluster_p50"] = ratio(live["p50"], out["cluster_ms"]["p50"])
    out["target_cluster_p50_ms"] = 50
    reader.close()
    return out


def run(ctx) -> dict:
    """For `python -m bench`: the largest store of the run, its prepared copy kept beside the stores."""
    return run_one(ctx.store(max(ctx.sizes)), work=ctx.stores, repeat=max(10, ctx.repeat // 2))


def report(r: dict) -> str:
    return (
        f"cluster {r['facilities']:>9,}: recompute {r['recompute_s']:.1f}s"
        f" | floor p50 {r['floor_ms']['p50']:.2f} ms"
        f" | /cluster p50 {r['cluster_ms']['p50']:.1f} ms ({r['ratio_cluster_to_floor_p50']:.0f}x floor; target <= 50)"
        f" | /cluster/82 p50 {r['cluster_code_ms']['p50']:.1f} ms"
        f" | /api/cluster/82 p50 {r['api_code_ms']['p50']:.1f} ms"
        f" | per-request SQL instead {r['live_sql_ms']['p50']:.0f} ms ({r['ratio_live_sql_to_cluster_p50']:.0f}x /cluster)"
    )


def main(argv: list[str] | None = None) -> int:
    return store_bench_main(argv, prog="python -m bench.cluster", doc=__doc__, run_one=run_one, report=report)


if __name__ == "__main__":
    raise SystemExit(main())
