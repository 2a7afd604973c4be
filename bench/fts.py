"""Text search latency (`/api/facilities?q=…`) against the raw FTS5 floor, measured in the same run.

floor : sqlite3, FTS5 driving (MATCH, rows joined by rowid, every column, ORDER BY rowid so it
        stops after LIMIT 51), the same prefix expression the API builds
api   : GET /api/facilities?q=…&limit=50 through Flask in-process (parse, FTS5, GeoJSON in SQLite)
Queries mix a rare word, a common one, a diacritic-free spelling, two words, and text + bbox.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from directory.config import Settings
from directory.query import fts_expression
from directory.store import connect

from .common import VILNIUS, Context, ratio, timeit

QUERIES: list[dict[str, str]] = [
    {"q": "ziogelis"},                       # diacritic-free: finds "Žiogelis"
    {"q": "darželis"},                       # a common word
    {"q": "vaikų aikštelė"},                 # two words, both required
    {"q": "bibliotekos filialas"},
    {"q": "saulute", "bbox": f"{VILNIUS[0] - 0.2},{VILNIUS[1] - 0.1},{VILNIUS[0] + 0.2},{VILNIUS[1] + 0.1}"},
]
LIMIT = 50

# The floor: FTS5 drives, rows joined by rowid, stopping after LIMIT (the fastest plain form).
FLOOR_SQL = (
    "SELECT f.* FROM facilities_fts JOIN facilities f ON f.rid = facilities_fts.rowid"
    " WHERE facilities_fts MATCH ? ORDER BY facilities_fts.rowid LIMIT ?"
)
FLOOR_BBOX_SQL = (
    "SELECT f.* FROM facilities_fts JOIN facilities f ON f.rid = facilities_fts.rowid"
    " WHERE facilities_fts MATCH ? AND f.lon BETWEEN ? AND ? AND f.lat BETWEEN ? AND ?"
    " ORDER BY facilities_fts.rowid LIMIT ?"
)


def run_one(db: Path, *, repeat: int) -> dict:
    from app import create_app

    conn = connect(db, readonly=True)
    client = create_app(Settings(db=db, tile_url="")).test_client()
    out: dict = {"queries": []}
    floor_total = api_total = 0.0
    for params in QUERIES:
        expr = fts_expression(params["q"])
        if "bbox" in params:
            w, s, e, n = (float(v) for v in params["bbox"].split(","))
            floor_fn = lambda expr=expr, w=w, e=e, s=s, n=n: conn.execute(  # noqa: E731
                FLOOR_BBOX_SQL, (expr, w, e, s, n, LIMIT + 1)).fetchall()
        else:
            floor_fn = lambda expr=expr: conn.execute(FLOOR_SQL, (expr, LIMIT + 1)).fetchall()  # noqa: E731
        url = "/api/facilities?" + urlencode({**params, "limit": LIMIT})
        got = client.get(url).get_json(force=True)["numberReturned"]
        floor = timeit(floor_fn, repeat=repeat)
        api = timeit(lambda url=url: client.get(url).get_data(), repeat=repeat)
        floor_total += floor["p50"]
        api_total += api["p50"]
        out["queries"].append({"params": params, "rows_returned": got, "floor_ms": floor, "api_ms": api,
                               "ratio_api_to_floor_p50": ratio(api["p50"], floor["p50"])})
    conn.close()
    out["floor_p50_sum_ms"] = floor_total
    out["api_p50_sum_ms"] = api_total
    out["ratio_api_to_floor_p50"] = ratio(api_total, floor_total)
    return out


def run(ctx: Context) -> dict:
    return {str(size): run_one(ctx.store(size), repeat=max(20, ctx.repeat // 2)) for size in ctx.sizes}


def report(result: dict) -> str:
    lines = []
    for size, r in result.items():
        if not size.isdigit():
            continue
        worst = max(r["queries"], key=lambda x: x["api_ms"]["p50"])
        lines.append(
            f"fts  {int(size):>9,}: {len(r['queries'])} queries | floor p50 sum {r['floor_p50_sum_ms']:.2f} ms"
            f" | api p50 sum {r['api_p50_sum_ms']:.2f} ms ({r['ratio_api_to_floor_p50']:.2f}x)"
            f" | slowest api p50 {worst['api_ms']['p50']:.2f} ms ({worst['params']['q']!r})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from .__main__ import main

    raise SystemExit(main(["--only", "fts", *sys.argv[1:]]))
