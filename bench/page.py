"""The parents' map page at 10 and at 1M facilities: weight, time to first markers, cluster latency.

bytes        : the map page's HTML + the app's own JS/CSS (and, apart, the vendored Leaflet files)
               with 10 and with N facilities in the store. They must be equal: the page never
               embeds facilities.
first_markers: headless Chromium, navigation start -> the first marker or cluster bubble drawn,
               for the country view and a city-street view; the 10-facility store is the
               baseline measured in the same run.
clusters     : /api/facilities/clusters in-process: the precomputed grid (country, city) and
               the on-the-fly grouping a feature filter needs, against the raw SQL floor of the
               grid lookup.

`python -m bench.page [--source STORE]` (default: the cached 1M synthetic store). The synthetic
store is read only: it is copied once to bench/stores/<name>-map.db, migrated, and given its
grid (`directory.clusters.refresh_map_data`), as an ingest would.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import time
from contextlib import ExitStack
from pathlib import Path

from directory.clusters import _cell_range, cell_deg, refresh_map_data
from directory.config import Settings
from directory.store import SCHEMA_VERSION, connect, refresh_extent, transaction

from .common import ratio, serve_in_thread, timeit, write_result
from .synth import build_store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OWN_ASSETS = ("js/map.js", "css/atvira.css")
VENDOR_ASSETS = (
    "vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css",
    "vendor/leaflet.markercluster/leaflet.markercluster.js",
    "vendor/leaflet.markercluster/MarkerCluster.css", "vendor/leaflet.markercluster/MarkerCluster.Default.css",
)
COUNTRY_VIEW = "/"  # opens on the data's extent
CITY_VIEW = "/?ll=54.68720,25.27970&z=17"  # a few streets of central Vilnius


def map_ready(source: Path, workdir: Path) -> Path:
    """A migrated copy of `source` with its map grid (built once, reused while the source is unchanged)."""
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"{source.stem}-map.db"
    marker = workdir / f"{source.stem}-map.ok"
    stamp = f"{source.stat().st_size}:{source.stat().st_mtime_ns}:{SCHEMA_VERSION}"
    if target.exists() and marker.exists() and marker.read_text() == stamp:
        return target
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    src.backup(dst)  # a consistent copy even if the source has a WAL
    src.close()
    dst.close()
    conn = connect(target)
    with transaction(conn):
        refresh_map_data(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    marker.write_text(stamp)
    return target


def small_store(workdir: Path, size: int = 10) -> Path:
    path = workdir / f"synth-{size}-page.db"
    build_store(path, size)
    conn = connect(path)
    with transaction(conn):
        # the extent too, as a run leaves it (the page embeds it): else the two pages differ by it
        refresh_extent(conn)
        refresh_map_data(conn)
    conn.close()
    return path


def page_bytes(app) -> dict:
    client = app.test_client()
    html = client.get("/").get_data()
    own = sum(len(client.get(f"/static/{a}").get_data()) for a in OWN_ASSETS)
    vendor = sum(len(client.get(f"/static/{a}").get_data()) for a in VENDOR_ASSETS)
    return {"html": len(html), "own_js_css": own, "total": len(html) + own, "vendor": vendor,
            "html_sha_no_nonce": hash(re.sub(rb'nonce="[^"]+"', b"", html))}


def first_markers(bases: dict[str, str], paths: tuple[str, ...], *, repeat: int) -> dict[str, dict[str, dict]]:
    """Median ms from navigation start to the first drawn marker/bubble, per server (label: base
    URL) and path, a fresh context each; one browser for all (a launch costs about a second)."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            return {label: _first_markers(browser, base, paths, repeat=repeat) for label, base in bases.items()}
        finally:
            browser.close()


def _first_markers(browser, base: str, paths: tuple[str, ...], *, repeat: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in paths:
        samples = []
        for i in range(repeat + 1):
            context = browser.new_context(viewport={"width": 1200, "height": 800}, locale="lt-LT")
            context.route(lambda url: not url.startswith("http://127.0.0.1"), lambda route: route.abort())
            page = context.new_page()
            t = time.perf_counter()
            page.goto(base + path)
            drawn = page.locator(".atvira-marker, .atvira-cluster, .marker-cluster")
            # a view with nothing in it ends with a status message and no marker
            empty = page.locator("#status").filter(has_text=re.compile(r"\S")).filter(has_not_text="…")
            drawn.or_(empty).first.wait_for(state="attached", timeout=60_000)
            took = (time.perf_counter() - t) * 1000
            kind = ("clusters" if page.locator(".atvira-cluster").count()
                    else "markers" if drawn.count() else "nothing in view")
            context.close()
            if i:  # the first load warms the server's caches
                samples.append(took)
        samples.sort()
        out[path] = {"p50": samples[len(samples) // 2], "min": samples[0], "max": samples[-1], "n": len(samples), "drew": kind}
    return out


def cluster_latency(app, db: Path, *, repeat: int) -> dict:
    client = app.test_client()
    country = "/api/facilities/clusters?bbox=20.9,53.9,26.9,56.5&zoom=7"
    city = "/api/facilities/clusters?bbox=25.18,54.64,25.38,54.73&zoom=12"
    grid_feature = country + "&features=changing_table"
    live = country + "&features=changing_table&category=baby_room"
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    x0, y0, x1, y1 = _cell_range((20.9, 53.9, 26.9, 56.5), cell_deg(7))
    floor = timeit(lambda: conn.execute(
        "SELECT sum_lon / n, sum_lat / n, n FROM map_grid WHERE zoom = 7 AND category = '*'"
        " AND gx BETWEEN ? AND ? AND gy BETWEEN ? AND ?", (x0, x1, y0, y1)).fetchall(), repeat=repeat)
    res = {
        "floor_ms": floor,
        "country_grid_ms": timeit(lambda: client.get(country).get_data(), repeat=repeat),
        "city_grid_ms": timeit(lambda: client.get(city).get_data(), repeat=repeat),
        "country_grid_feature_ms": timeit(lambda: client.get(grid_feature).get_data(), repeat=repeat),
        "country_live_ms": timeit(lambda: client.get(live).get_data(), repeat=3, warmup=1),
        "clusters_country": len(client.get(country).get_json()["clusters"]),
    }
    res["ratio_grid_to_floor_p50"] = ratio(res["country_grid_ms"]["p50"], floor["p50"])
    return res


def run_one(source: Path, *, workdir: Path, repeat: int = 5, views: tuple[str, ...] = (COUNTRY_VIEW, CITY_VIEW)) -> dict:
    from app import create_app

    big = map_ready(source, workdir)
    small = small_store(workdir)
    size = sqlite3.connect(f"{big.resolve().as_uri()}?mode=ro", uri=True).execute("SELECT count(*) FROM facilities").fetchone()[0]
    result: dict = {"facilities": size}
    apps = {label: create_app(Settings(db=db, tile_url="")) for label, db in (("small", small), ("big", big))}
    result["bytes"] = {label: page_bytes(app) for label, app in apps.items()}
    result["bytes_equal"] = result["bytes"]["small"]["total"] == result["bytes"]["big"]["total"]
    with ExitStack() as servers:
        bases = {label: servers.enter_context(serve_in_thread(app)) for label, app in apps.items()}
        for label, drawn in first_markers(bases, views, repeat=repeat).items():
            result[f"first_markers_{label}"] = drawn
    result["ratio_first_markers_country_big_to_small"] = ratio(
        result["first_markers_big"][COUNTRY_VIEW]["p50"], result["first_markers_small"][COUNTRY_VIEW]["p50"])
    result["clusters"] = cluster_latency(apps["big"], big, repeat=50)
    for r in (result["bytes"]["small"], result["bytes"]["big"]):
        r.pop("html_sha_no_nonce")
    return result


def run(ctx) -> dict:
    """For `python -m bench`: the largest store of the run against a 10-facility one."""
    # --quick: the country view only (the ratio's figure), one sample after the warm load: each
    # load is most of a second and `bench --quick` must stay under a minute
    return run_one(ctx.store(max(ctx.sizes)), workdir=ctx.stores, repeat=1 if ctx.quick else 5,
                   views=(COUNTRY_VIEW,) if ctx.quick else (COUNTRY_VIEW, CITY_VIEW))


def report(result: dict) -> str:
    b, fb, fs, c = result["bytes"], result["first_markers_big"], result["first_markers_small"], result["clusters"]
    return (
        f"page: {b['small']['total']:,} B with 10 vs {b['big']['total']:,} B with {result['facilities']:,} facilities"
        f" (html {b['big']['html']:,} + own js/css {b['big']['own_js_css']:,}; vendored Leaflet {b['big']['vendor']:,})"
        f" equal={result['bytes_equal']}\n"
        f"page: first markers at {result['facilities']:,}: country {fb[COUNTRY_VIEW]['p50']:.0f} ms ({fb[COUNTRY_VIEW]['drew']}),"
        + (f" city {fb[CITY_VIEW]['p50']:.0f} ms ({fb[CITY_VIEW]['drew']})," if CITY_VIEW in fb else "")
        + f" at 10: country {fs[COUNTRY_VIEW]['p50']:.0f} ms,"
        + (f" city {fs[CITY_VIEW]['p50']:.0f} ms," if CITY_VIEW in fs else "")
        + f" ratio {result['ratio_first_markers_country_big_to_small']:.2f}x\n"
        f"page: clusters p50 country {c['country_grid_ms']['p50']:.2f} ms ({c['clusters_country']} cells),"
        f" city {c['city_grid_ms']['p50']:.2f} ms, grid floor {c['floor_ms']['p50']:.3f} ms"
        f" ({c['ratio_grid_to_floor_p50']:.1f}x), one feature {c['country_grid_feature_ms']['p50']:.2f} ms;"
        f" live (feature + category, not in the grid) {c['country_live_ms']['p50']:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=HERE / "stores" / "synth-1000000-1.db")
    parser.add_argument("--workdir", type=Path, default=HERE / "stores")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    result = run_one(args.source, workdir=args.workdir, repeat=args.repeat)
    print(report(result))
    write_result(HERE / "results" / "page.json", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
