"""A deterministic synthetic Lithuania-shaped facility store, for benchmarks (never for tests).

Points cluster around cities in proportion to their population, with a rural remainder spread
over the country's extent; every category occurs; names carry Lithuanian diacritics. The same
(size, seed) always gives the same file, so runs can be compared.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from directory.model import CATEGORIES, FEATURES
from directory.store import connect

# The largest towns (lon, lat, population ~2021), enough to give the density a realistic shape.
CITIES: list[tuple[str, float, float, int]] = [
    ("Vilnius", 25.2797, 54.6872, 556_490), ("Kaunas", 23.9036, 54.8985, 295_269),
    ("Klaipėda", 21.1443, 55.7033, 152_008), ("Šiauliai", 23.3141, 55.9349, 100_653),
    ("Panevėžys", 24.3576, 55.7348, 87_048), ("Alytus", 24.0458, 54.3963, 50_862),
    ("Marijampolė", 23.3547, 54.5594, 36_628), ("Mažeikiai", 22.3422, 56.3167, 32_936),
    ("Jonava", 24.2797, 55.0728, 26_423), ("Utena", 25.5996, 55.4976, 25_449),
    ("Kėdainiai", 23.9736, 55.2883, 23_036), ("Telšiai", 22.2472, 55.9814, 21_327),
    ("Tauragė", 22.2897, 55.2522, 21_116), ("Ukmergė", 24.7500, 55.2500, 20_262),
    ("Visaginas", 26.4333, 55.6000, 18_117), ("Palanga", 21.0681, 55.9175, 16_839),
    ("Plungė", 21.8456, 55.9111, 16_834), ("Kretinga", 21.2422, 55.8892, 17_500),
    ("Šilutė", 21.4833, 55.3500, 15_700), ("Radviliškis", 23.5333, 55.8000, 15_161),
    ("Druskininkai", 23.9667, 54.0167, 12_600), ("Rokiškis", 25.5833, 55.9667, 12_500),
    ("Biržai", 24.7500, 56.2000, 11_900), ("Elektrėnai", 24.6586, 54.7858, 10_800),
]
LT_BBOX = (20.95, 53.90, 26.83, 56.45)
RURAL_SHARE = 0.25

_PREFIX = {
    "day_centre": ["Vaikų dienos centras", "Senjorų dienos centras", "Dienos užimtumo centras"],
    "kindergarten": ["Lopšelis-darželis", "Darželis", "L/d"],
    "childcare": ["Vaikų priežiūros centras", "Auklių namai"],
    "playground": ["Vaikų žaidimų aikštelė", "Žaidimų aikštelė"],
    "indoor_play": ["Žaidimų kambarys", "Vaikų žaidimų erdvė"],
    "baby_room": ["Motinos ir vaiko kambarys", "Kūdikių priežiūros kambarys"],
    "toilet": ["Viešasis tualetas", "Tualetas"],
    "library": ["Viešoji biblioteka", "Bibliotekos filialas"],
    "community_centre": ["Bendruomenės namai", "Jaunimo centras"],
    "townhall": ["Seniūnija", "Savivaldybės administracija"],
    "culture": ["Kultūros centras", "Kultūros namai", "Teatras"],
    "school": ["Gimnazija", "Progimnazija", "Pagrindinė mokykla"],
    "state_institution": ["Valstybinė mokesčių inspekcija", "Sodros skyrius", "Apylinkės teismas"],
}
_NAMES = ["Žiogelis", "Ąžuoliukas", "Šermukšnėlė", "Čiauškutis", "Pušelė", "Gintarėlis", "Šilas",
          "Vėjelis", "Ūsorius", "Žvaigždutė", "Saulutė", "Liepaitė", "Kregždutė", "Drugelis", "Eglutė"]
_STREETS = ["Gedimino pr.", "Vilniaus g.", "Žalgirio g.", "Šv. Stepono g.", "Ąžuolyno g.", "Liepų g.", "Mokyklos g."]
_HOURS = [None, None, "Mo-Fr 08:00-18:00", "Mo-Fr 07:00-19:00; Sa 09:00-14:00", "24/7", "Mo-Su 10:00-20:00"]


def generate_rows(size: int, *, seed: int = 1):
    """Yield facility rows (tuples for the INSERT below) — deterministic for (size, seed)."""
    rng = random.Random(seed)
    weights = [c[3] for c in CITIES]
    cats = list(CATEGORIES)
    feats = list(FEATURES)
    for i in range(size):
        if rng.random() < RURAL_SHARE:
            lon = rng.uniform(LT_BBOX[0], LT_BBOX[2])
            lat = rng.uniform(LT_BBOX[1], LT_BBOX[3])
        else:
            _, clon, clat, pop = rng.choices(CITIES, weights=weights)[0]
            spread = 0.02 + 0.06 * (pop / 556_490) ** 0.5
            lon = rng.gauss(clon, spread * 1.7)
            lat = rng.gauss(clat, spread)
        cat = cats[i % len(cats)]
        categories = [cat] + ([rng.choice(cats)] if rng.random() < 0.1 else [])
        features = {f: rng.choice(("yes", "no", "limited")) for f in rng.sample(feats, rng.randint(0, 4))}
        name = f"{rng.choice(_PREFIX[cat])} „{rng.choice(_NAMES)}“"
        address = f"{rng.choice(_STREETS)} {rng.randint(1, 150)}"
        yield (
            f"synth-{i}", name, json.dumps(sorted(set(categories))), round(lon, 7), round(lat, 7), address,
            None, None, None, rng.choice(("public", "private", "civic", "unknown")),
            json.dumps(features, sort_keys=True), rng.choice(_HOURS), "active", "2026-01-15",
            "synth", str(i), "CC-BY-4.0", "2026-01-15T00:00:00Z", "{}", "2026-01-15T00:00:00Z",
        )


def build_store(path: Path, size: int, *, seed: int = 1, batch: int = 20_000) -> float:
    """Write a synthetic store to `path` (replacing it); returns seconds taken."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    start = time.perf_counter()
    conn = connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    cols = ("id, name, categories, lon, lat, address, municipality_code, eldership_code, operator, sector, "
            "features, opening_hours, status, last_verified, source, source_id, licence, fetched_at, extra, updated_at")
    sql = f"INSERT INTO facilities({cols}) VALUES ({', '.join('?' * 20)})"
    rows = generate_rows(size, seed=seed)
    while True:
        chunk = [r for _, r in zip(range(batch), rows)]
        if not chunk:
            break
        conn.execute("BEGIN")
        conn.executemany(sql, chunk)
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - start


def cached_store(directory: Path, size: int, *, seed: int = 1) -> Path:
    """The synthetic store for (size, seed), built once and reused by later runs."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"synth-{size}-{seed}.db"
    marker = directory / f"synth-{size}-{seed}.ok"
    if not (path.exists() and marker.exists()):
        took = build_store(path, size, seed=seed)
        marker.write_text(f"{took:.1f}s\n")
        print(f"  built {path.name} ({size:,} facilities) in {took:.1f}s")
    from directory.config import Settings
    from directory.derived import refresh_derived
    from directory.store import connect

    # a store cached by older code gets the newer migrations (they only add); then what an
    # ingest would leave: the ready feature text, the map grid (cached stores skip the work
    # when it is current)
    conn = connect(path)
    refresh_derived(conn, Settings(db=path), snapshot=False)
    conn.close()
    return path
