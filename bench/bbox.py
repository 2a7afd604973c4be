"""Bbox API latency against the raw sqlite3 R*Tree floor, measured in the same run.

floor     : sqlite3, the R*Tree join fetching every column of the box's rows (what any API must do)
api       : GET /api/facilities?bbox=… through Flask in-process (routing, parsing, GeoJSON)
api_http  : the same request over a real loopback HTTP server (werkzeug), keep-alive client
country   : one page of 500 for all of Lithuania (the map's first view), against the id-order
            scan floor: the case where sorting the R*Tree answer used to cost seconds
"""

from __future__ import annotations

from pathlib import Path

import requests

from directory.config import Settings
from directory.store import connect

from .common import Context, box_with_rows, ratio, serve_in_thread, timeit

FLOOR_SQL = (
    "SELECT f.* FROM facilities_rtree r JOIN facilities f ON f.rid = r.rid"
    " WHERE r.max_lon >= ? AND r.min_lon <= ? AND r.max_lat >= ? AND r.min_lat <= ?"
    " AND f.lon BETWEEN ? AND ? AND f.lat BETWEEN ? AND ? ORDER BY r.rid LIMIT ?"
)

COUNTRY_FLOOR_SQL = "SELECT f.* FROM facilities f WHERE f.lon BETWEEN ? AND ? AND f.lat BETWEEN ? AND ? ORDER BY f.rid LIMIT ?"
LT_EXTENT = (20.9, 53.9, 26.9, 56.5)


def run_one(db: Path, *, rows: int = 500, repeat: int = 200) -> dict:
    from app import create_app

    box, n = box_with_rows(db, rows)
    w, s, e, n_ = box
    conn = connect(db, readonly=True)
    floor = timeit(lambda: conn.execute(FLOOR_SQL, (w, e, s, n_, w, e, s, n_, rows + 1)).fetchall(), repeat=repeat)
    app = create_app(Settings(db=db, tile_url=""))
    client = app.test_client()
    url = f"/api/facilities?bbox={w:.7f},{s:.7f},{e:.7f},{n_:.7f}&limit={rows}"
    got = client.get(url).get_json(force=True)["numberReturned"]
    api = timeit(lambda: client.get(url).get_data(), repeat=repeat)
    with serve_in_thread(app) as base, requests.Session() as http:
        api_http = timeit(lambda: http.get(base + url).content, repeat=repeat)
    # The map's first view: all of Lithuania, one page. Floor: the id-order scan with the box
    # as a filter (what the API picks for a dense box), raw in sqlite3.
    cw, cs, ce, cn = LT_EXTENT
    country_url = f"/api/facilities?bbox={cw},{cs},{ce},{cn}&limit={rows}"
    country_floor = timeit(lambda: conn.execute(COUNTRY_FLOOR_SQL, (cw, ce, cs, cn, rows + 1)).fetchall(),
                           repeat=max(10, repeat // 5))
    country = timeit(lambda: client.get(country_url).get_data(), repeat=max(10, repeat // 5))
    return {
        "country_floor_ms": country_floor,
        "country_api_ms": country,
        "ratio_country_to_floor_p50": ratio(country["p50"], country_floor["p50"]),
        "rows_in_box": n,
        "rows_returned": got,
        "floor_ms": floor,
        "api_ms": api,
        "api_http_ms": api_http,
        "ratio_api_to_floor_p50": ratio(api["p50"], floor["p50"]),
        "ratio_http_to_floor_p50": ratio(api_http["p50"], floor["p50"]),
    }


def run(ctx: Context) -> dict:
    """Every size of the run: {size: figures}."""
    return {str(size): run_one(ctx.store(size), repeat=ctx.repeat) for size in ctx.sizes}


def report(result: dict) -> str:
    return "\n".join(report_one(int(size), r) for size, r in result.items() if size.isdigit())


def report_one(size: int, result: dict) -> str:
    return (
        f"bbox {size:>9,}: {result['rows_returned']} rows | floor p50 {result['floor_ms']['p50']:.2f} ms"
        f" | api p50 {result['api_ms']['p50']:.2f} ms ({result['ratio_api_to_floor_p50']:.2f}x)"
        f" | http p50 {result['api_http_ms']['p50']:.2f} ms ({result['ratio_http_to_floor_p50']:.2f}x)"
        f" | whole country: api p50 {result['country_api_ms']['p50']:.2f} ms"
        f" ({result['ratio_country_to_floor_p50']:.2f}x floor)"
    )


if __name__ == "__main__":
    import sys

    from .__main__ import main

    raise SystemExit(main(["--only", "bbox", *sys.argv[1:]]))
