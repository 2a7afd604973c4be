"""The moderation queue with 10,000 pending suggestions, and how many suggestions a second are taken.

    python -m bench.moderate [--pending 10000] [--work /tmp/bench-moderate]

A public store with the real areas (60 municipalities, 554 elderships) and 2,000 places in Vilnius
and Kaunas; a private store with `--pending` suggestions in Vilnius (half new places, half problem
reports on those places) and a fifth as many in Kaunas. An editor of Vilniaus m. sav. signs in.
Measured in the same run:

floor          : sqlite3 selecting the same first page of rows (50, newest first, the editor's
                 municipality) from the private store: the least any queue page must do
core_page      : directory.contributions.list_pending, first page (with each facility's current values)
moderate       : GET /moderate through Flask in-process (signed in), first page
moderate_deep  : GET /moderate?after=<middle id>: a keyset page in the middle of the queue
submit         : directory.contributions.submit per second (validation, area lookup, one transaction)
insert_floor   : a bare INSERT of the same row per transaction, per second
open311        : POST /open311/v2/requests.json per second (in-process, limit raised)
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from app import create_app
from directory import clock
from directory import contributions as core
from directory.accounts import User, add_user
from directory.areas_store import load_locator, save_areas
from directory.config import Settings
from directory.model import Facility
from directory.private_store import connect_private
from directory.store import connect
from directory.sync import apply_records
from ingest.areas import read_areas

from .common import ratio, timeit, write_result

ROOT = Path(__file__).resolve().parents[1]
AREAS = ROOT.parent / "shared" / "data" / "govlt-powerbi-map-lt"
VILNIUS, KAUNAS = ("13", (25.2797, 54.6872)), ("19", (23.9036, 54.8985))
PASSWORD = "bench password 0123"
FLOOR_SQL = ("SELECT * FROM contributions WHERE status = 'pending' AND municipality_code IN (?)"
             " ORDER BY id DESC LIMIT 51")


def _places(n: int, rng: random.Random) -> list[Facility]:
    out = []
    for i in range(n):
        _code, (lon, lat) = VILNIUS if i % 5 else KAUNAS
        out.append(Facility(source="bench", source_id=str(i), name=f"Vieta {i}", categories=["library"],
                            lon=lon + rng.uniform(-0.03, 0.03), lat=lat + rng.uniform(-0.02, 0.02), licence="CC0-1.0",
                            opening_hours="Mo-Fr 09:00-18:00"))
    return out


def prepare(work: Path, *, pending: int, seed: int = 11) -> Settings:
    """Both stores in `work` (rebuilt every run: the queue must hold exactly `pending` items)."""

    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    for p in work.glob("moderate*"):
        p.unlink()
    settings = Settings(db=work / "moderate.db", tile_url="", snapshots_dir=work / "snaps",
                        submission_limit="1000000 per minute")
    public = connect(settings.db)
    save_areas(public, read_areas(AREAS))
    locator = load_locator(public)
    apply_records(public, _places(2000, rng), source="bench", scope="bench", locator=locator)
    rows = public.execute("SELECT id, municipality_code, lon, lat FROM facilities").fetchall()
    public.close()
    private = connect_private(settings)
    add_user(private, login="vilnius", password=PASSWORD, role="editor", municipalities=[VILNIUS[0]])
    now = clock.stamp()
    batch = []
    for i in range(pending + pending // 5):
        code, (lon, lat) = VILNIUS if i < pending else KAUNAS
        if i % 2:
            fac = rng.choice([r for r in rows[:50] if r["municipality_code"] == code] or rows[:1])
            batch.append(("report_problem", "wrong_hours", fac["id"], code,
                          json.dumps({"opening_hours": "Mo-Sa 10:00-20:00"}), "", None, "form", now))
        else:
            proposed = {"name": f"Kambarys {i}", "categories": ["baby_room"],
                        "position": [lon + rng.uniform(-0.01, 0.01), lat + rng.uniform(-0.01, 0.01)],
                        "features.changing_table": "yes"}
            batch.append(("add_place", None, None, code, json.dumps(proposed, ensure_ascii=False), "Pastaba", None,
                          "form", now))
    with private:
        private.execute("BEGIN")
        private.executemany(
            "INSERT INTO contributions(kind, problem, facility_id, municipality_code, proposed, note, email, via,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    private.close()
    return settings


def run_one(*, pending: int = 10_000, work: Path, repeat: int = 50, submits: int = 300) -> dict:

    settings = prepare(work, pending=pending)
    private = connect_private(settings)
    public = connect(settings.db, readonly=True)
    editor = User(id=1, login="vilnius", role="editor", municipalities=(VILNIUS[0],))
    out: dict = {"pending": pending, "pending_elsewhere": pending // 5}
    out["floor_ms"] = timeit(lambda: private.execute(FLOOR_SQL, (VILNIUS[0],)).fetchall(), repeat=repeat)
    out["core_page_ms"] = timeit(lambda: core.list_pending(private, public=public, user=editor), repeat=repeat)
    middle = private.execute("SELECT id FROM contributions WHERE municipality_code = ? ORDER BY id"
                             " LIMIT 1 OFFSET ?", (VILNIUS[0], pending // 2)).fetchone()[0]

    app = create_app(settings)
    app.testing = True
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    resp = client.post("/login", data={"login": "vilnius", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 303, resp.status_code
    first = client.get("/moderate")
    assert first.status_code == 200 and first.data.count(b'class="queue-item"') == core.PAGE_LIMIT
    out["moderate_bytes"] = len(first.data)
    out["moderate_ms"] = timeit(lambda: client.get("/moderate").get_data(), repeat=repeat)
    out["moderate_deep_ms"] = timeit(lambda: client.get(f"/moderate?after={middle}").get_data(), repeat=repeat)

    # submissions per second: the core, a bare insert, and the Open311 POST
    writer = connect(settings.db)
    locator = load_locator(writer)
    sub = core.Submission(kind="add_place", name="Kambarys", category="baby_room", lon=VILNIUS[1][0],
                          lat=VILNIUS[1][1], features={"changing_table": "yes"}, licence_agreed=True)
    t = time.perf_counter()
    for _ in range(submits):
        core.submit(private, writer, sub, locator=locator)
    out["submit_per_s"] = submits / (time.perf_counter() - t)
    writer.close()
    row = private.execute("SELECT kind, problem, facility_id, municipality_code, proposed, note, email, via,"
                          " created_at FROM contributions ORDER BY id DESC LIMIT 1").fetchone()
    t = time.perf_counter()
    for _ in range(submits):
        private.execute("BEGIN IMMEDIATE")
        private.execute("INSERT INTO contributions(kind, problem, facility_id, municipality_code, proposed, note,"
                        " email, via, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tuple(row))
        private.execute("COMMIT")
    out["insert_floor_per_s"] = submits / (time.perf_counter() - t)
    form = {"service_code": "add_place", "lat": VILNIUS[1][1], "long": VILNIUS[1][0], "attribute[licence]": "yes",
            "attribute[category]": "baby_room", "attribute[name]": "Kambarys"}
    poster = app.test_client()
    t = time.perf_counter()
    for _ in range(submits):
        assert poster.post("/open311/v2/requests.json", data=form).status_code == 201
    out["open311_per_s"] = submits / (time.perf_counter() - t)
    out["ratio_moderate_to_floor_p50"] = ratio(out["moderate_ms"]["p50"], out["floor_ms"]["p50"])
    out["ratio_core_to_floor_p50"] = ratio(out["core_page_ms"]["p50"], out["floor_ms"]["p50"])
    out["ratio_insert_floor_to_submit"] = ratio(out["insert_floor_per_s"], out["submit_per_s"])
    private.close()
    public.close()
    return out


def run(ctx) -> dict:
    """For `python -m bench`: 10,000 pending (the issue's figure) whatever the store sizes."""
    return run_one(work=ctx.stores / "moderate", repeat=max(20, ctx.repeat // 2), submits=100 if ctx.quick else 300)


def report(r: dict) -> str:
    return (
        f"moderate {r['pending']:,} pending (+{r['pending_elsewhere']:,} elsewhere):"
        f" floor p50 {r['floor_ms']['p50']:.2f} ms"
        f" | list_pending p50 {r['core_page_ms']['p50']:.1f} ms ({r['ratio_core_to_floor_p50']:.0f}x floor)"
        f" | /moderate p50 {r['moderate_ms']['p50']:.1f} ms ({r['ratio_moderate_to_floor_p50']:.0f}x floor,"
        f" {r['moderate_bytes'] / 1024:.0f} KB), deep page p50 {r['moderate_deep_ms']['p50']:.1f} ms"
        f" | submit {r['submit_per_s']:.0f}/s (bare insert {r['insert_floor_per_s']:.0f}/s,"
        f" {r['ratio_insert_floor_to_submit']:.1f}x) | Open311 POST {r['open311_per_s']:.0f}/s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.moderate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-moderate"))
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--submits", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    r = run_one(pending=args.pending, work=args.work, repeat=args.repeat, submits=args.submits)
    print(report(r), flush=True)
    if args.out:
        write_result(args.out, r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
