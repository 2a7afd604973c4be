"""The municipal openness audit, computed once per ingest and stored.

`recompute(conn)` aggregates the facilities with SQL (GROUP BY on the municipality and
eldership codes given at ingest) into small tables, keeping what each facility counted for
(`audit_facts`); `update(conn, ids)` moves those tables by the difference of the given
facilities' rows only. `directory.derived.refresh_derived` calls one or the other after every
run (the whole recompute after `atvira areas load`, on `atvira audit --recompute`, or past
INCREMENTAL_MAX changed facilities). Pages, the API and the CLI only read the tables (see
`directory.audit_report`), so a request never scans the facilities.

Three parts:

- indicators per country, county, municipality and eldership, per category: count, count per
  10,000 residents (2021 census), share of elderships with none and share of the population
  living in them, rank among the municipalities and the national median, childcare capacity;
- the openness checklist for public institutions (`CHECKLIST`): each point yes / no / unknown
  per institution; unknown is never counted as yes nor as no;
- data quality per municipality, with the worst records listed.

Unknown is its own value throughout: a feature absent from a facility is unknown, never "no".

The five honesty rules (issue 12; each has a test in tests/test_audit_honesty.py):

1. Ranks are competition ranks ("1, 2, 2, 4") among the municipalities that have at least one
   facility of the category; a municipality with none is not ranked (its rank is empty, shown
   as "—"), so a count of 0 is never ranked above a count above 0.
2. A checklist score (an institution's or a municipality's) is given only when at least
   `MIN_KNOWN_SHARE` of the applicable points are known; otherwise the score is empty and the
   pages say "too few known points". The yes and known counts are kept either way.
3. The checklist applies to the open public institutions only: `CHECKLIST_CATEGORIES` (town
   halls and eldership offices, libraries, community centres, culture centres) of the public or
   an unknown sector. Kindergartens, childcare and day centres serve enrolled children or
   clients, so "open to anyone during published hours" does not apply to them.
4. "Verified" is defined per source (`verified_at_sql`): a register's run lists the record on
   its fetch date, so a register record counts as verified when its run was; an OpenStreetMap
   record only by its `check_date` / `survey:date` (carried into last_verified); a confirmation
   (later: contributions) sets last_verified, the hook every source shares.
5. A record without a position counts for the municipality its source states (a mapping's
   `municipality`), so a register's unplaced records are not lost from its municipality.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import time
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import shapely

from . import clock
from .areas import geometry_to_geojson_text
from .model import CATEGORIES
from .store import get_meta, set_meta, transaction

# Facilities that count: removed and closed places are not there for a citizen.
LIVE = "f.status IN ('active', 'unknown')"

# The open public institutions the checklist applies to (rule 3): places anyone may walk into
# during published hours. A facility of one of these categories whose sector is public or not
# known is scored; a private one is not; other categories are never scored, whatever their sector
# (a municipal kindergarten is public but not open to anyone).
# (issue 15) state institutions (ministries, agencies, courts, tax and social-insurance offices)
# take part; schools do not: a school is open to its pupils, not to anyone walking in.
CHECKLIST_CATEGORIES = ("townhall", "library", "community_centre", "culture", "state_institution")
INSTITUTION_CATEGORIES = CHECKLIST_CATEGORIES  # the older name, kept for callers
CHILDCARE_CATEGORIES = ("kindergarten", "childcare")

# Rule 2: a score is shown only when at least this share of the applicable points is known
# (an institution: 4 of its 8 points; a municipality: half of its institutions' points).
MIN_KNOWN_SHARE = 0.5

# Rule 4: sources whose fetch is not a check of the facts. OpenStreetMap keeps an object until
# someone deletes it, so downloading it says nothing about whether the place is still as
# described; its check_date / survey:date does. Every other source is a register or a
# municipality's own list: the record is listed on the run's date, and that is a verification.
FETCH_DOES_NOT_VERIFY = ("osm",)


# The features the checklist reads; each is extracted from the JSON once per institution
# (a materialised CTE), and the points are decided on those columns.
CHECKLIST_FEATURES = ("open_foyer", "toilet", "free", "changing_table", "feeding_room", "play_corner",
                      "seating", "cafe", "wheelchair")


def _feature(name: str) -> str:
    return f"v_{name}"


def _plain(name: str) -> str:
    """yes -> yes; no or limited -> no (not met for everyone); absent -> unknown."""
    return (f"CASE {_feature(name)} WHEN 'yes' THEN 'yes' WHEN 'no' THEN 'no'"
            f" WHEN 'limited' THEN 'no' ELSE 'unknown' END")


# The checklist: point key -> (label, how it is decided, SQL giving 'yes'|'no'|'unknown').
# The labels and rules are shown on the audit pages, so they are the documentation.
CHECKLIST: dict[str, tuple[str, str, str]] = {
    "open_to_anyone": (
        "Open to anyone during published hours",
        "feature open_foyer: yes; limited or no counts as no",
        _plain("open_foyer"),
    ),
    "hours_published": (
        "Opening hours published",
        "yes when the record carries opening hours; otherwise unknown (a source that does not"
        " carry hours says nothing about whether the institution publishes them)",
        "CASE WHEN opening_hours IS NOT NULL AND trim(opening_hours) NOT IN ('', 'unknown')"
        " THEN 'yes' ELSE 'unknown' END",
    ),
    "free_toilet": (
        "Free public toilet",
        "features toilet and free: yes when both are yes; no when the toilet is no or limited, or"
        " the toilet is yes but not free; otherwise unknown",
        f"CASE WHEN {_feature('toilet')} IN ('no', 'limited') THEN 'no'"
        f" WHEN {_feature('toilet')} = 'yes' AND {_feature('free')} = 'yes' THEN 'yes'"
        f" WHEN {_feature('toilet')} = 'yes' AND {_feature('free')} IN ('no', 'limited') THEN 'no'"
        " ELSE 'unknown' END",
    ),
    "changing_table": ("Baby changing table", "feature changing_table", _plain("changing_table")),
    "feeding_room": ("Feeding room", "feature feeding_room", _plain("feeding_room")),
    "play_corner": ("Play corner", "feature play_corner", _plain("play_corner")),
    "seating": (
        "Place to sit or café",
        "features seating and cafe: yes when either is yes; no when both are known and neither is"
        " yes; otherwise unknown",
        f"CASE WHEN {_feature('seating')} = 'yes' OR {_feature('cafe')} = 'yes' THEN 'yes'"
        f" WHEN {_feature('seating')} IN ('no', 'limited') AND {_feature('cafe')} IN ('no', 'limited') THEN 'no'"
        " ELSE 'unknown' END",
    ),
    "wheelchair": ("Wheelchair access", "feature wheelchair", _plain("wheelchair")),
}
POINTS = tuple(CHECKLIST)

# Data-quality problems a record can have, in the order the worst-records list shows them.
QUALITY_PROBLEMS: dict[str, str] = {
    "missing_hours": "No opening hours",
    "no_features": "No feature known",
    "stale": "Not verified in 12 months",  # see verified_at_sql for what counts per source
    "single_source": "Only one source",
    "conflicts": "Unresolved conflict between sources",
}
WORST_RECORDS = 20
STALE_DAYS = 365

SHAPE_TOLERANCE = {"municipality": 0.002, "eldership": 0.0008}  # degrees (~130 m / ~50 m)
SHAPE_DECIMALS = 4  # ~10 m: finer than the simplification, half the text of 6 decimals


def institution_predicate(alias: str = "f") -> str:
    """SQL: the facility is an open public institution (rule 3): one of CHECKLIST_CATEGORIES, of
    the public or an unknown sector (a private theatre is not; a public kindergarten is not)."""
    cats = ", ".join(f"'{c}'" for c in CHECKLIST_CATEGORIES)
    return (f"({alias}.sector IN ('public', 'unknown') AND EXISTS"
            f" (SELECT 1 FROM json_each({alias}.categories) WHERE value IN ({cats})))")


def min_known_points(applicable: int) -> int:
    """How many of `applicable` points must be known before a score is given (rule 2)."""
    return max(1, math.ceil(MIN_KNOWN_SHARE * applicable))


def listed_sql(restrict: str = "") -> str:
    """SQL giving (facility_id, at): when a source whose fetch verifies (rule 4) last listed each
    facility. Per live record: the start of the latest successful run of its source and scope
    (the run listed it, or its removal sweep would have removed it), or its own fetch time.
    `restrict`: an SQL condition on `s.facility_id` (the incremental update's few facilities)."""
    skip = ", ".join(f"'{s}'" for s in FETCH_DOES_NOT_VERIFY)
    return f"""
        SELECT s.facility_id, max(max(coalesce(s.fetched_at, ''), coalesce(r.at, ''))) AS at
        FROM source_records s
        LEFT JOIN (SELECT source, scope, max(started_at) AS at FROM ingest_runs WHERE status = 'ok'
                   GROUP BY source, scope) r ON r.source = s.source AND r.scope = s.scope
        WHERE s.removed_at IS NULL AND s.source NOT IN ({skip}) {f"AND {restrict}" if restrict else ""}
        GROUP BY s.facility_id"""


def verified_at_sql(alias: str = "f", listed: str = "v") -> str:
    """SQL: when the facts of facility `alias` were last verified, or NULL (rule 4), given the
    row `listed` of `listed_sql()` LEFT JOINed on the facility.

    The latest of: its last_verified (an OSM check_date / survey:date, or a confirmation) and
    the date a verifying source last listed it. A store filled without source records (a
    synthetic one) falls back to the facility's own source and fetch time.
    """
    skip = ", ".join(f"'{s}'" for s in FETCH_DOES_NOT_VERIFY)
    own = (f"iif({listed}.facility_id IS NULL AND {alias}.source NOT IN ({skip}) AND NOT EXISTS"
           f" (SELECT 1 FROM source_records s0 WHERE s0.facility_id = {alias}.id), {alias}.fetched_at, NULL)")
    return (f"nullif(max(coalesce({alias}.last_verified, ''), coalesce({listed}.at, ''),"
            f" coalesce({own}, '')), '')")


def unresolved_conflicts_sql(conn: sqlite3.Connection) -> str | None:
    """SQL giving (facility_id, n) for facilities whose sources disagree on some field.

    Conflation keeps every disagreement in facilities.conflicts (a JSON list; nothing resolves
    one but a source changing), so each listed conflict is unresolved. Returns None only for a
    store without that column (then every count is 0, and pages say conflicts are not tracked).
    """
    columns = {r[1] for r in conn.execute("PRAGMA table_info(facilities)")}
    if "conflicts" not in columns:
        return None
    return (
        "SELECT id AS facility_id, json_array_length(conflicts) AS n FROM facilities"
        " WHERE conflicts IS NOT NULL AND conflicts != '[]'"
    )


# --- the recompute -------------------------------------------------------------------------

# The version of what audit_facts, audit_counts and the cluster facts hold: a store whose rows were
# written by another version gets the whole recompute before any incremental update.
FACTS_VERSION = 1
# The incremental update's facilities, as one bound JSON list (:ids).
IDS = "(SELECT value FROM json_each(:ids))"


def _flag_sql(conn: sqlite3.Connection) -> dict[str, str]:
    """Each data-quality problem (QUALITY_PROBLEMS) as SQL on facility `f`, given the live source
    records `s` and the verification `v`; `stale` is decided on the stored verified_at."""
    tracked = unresolved_conflicts_sql(conn) is not None
    return {
        "missing_hours": "(f.opening_hours IS NULL OR trim(f.opening_hours) IN ('', 'unknown'))",
        "no_features": "(f.features IN ('{}', '') OR f.features IS NULL)",
        "single_source": "(coalesce(s.n, 0) <= 1)",
        # unresolved_conflicts_sql's count, read on the row itself
        "conflicts": ("(coalesce(CASE WHEN f.conflicts IS NOT NULL AND f.conflicts != '[]'"
                      " THEN json_array_length(f.conflicts) END, 0) > 0)") if tracked else "0",
    }


def _facts_sql(conn: sqlite3.Connection, *, only: bool) -> str:
    """SELECT giving audit_facts' columns for every live placed facility (or only those in :ids):
    what each counts for in the indicators and the data quality (:cutoff: the 12-month cut-off)."""
    flags = _flag_sql(conn)
    cap = "CAST(json_extract(f.extra, '$.capacity') AS INTEGER)"
    kids = "CAST(json_extract(f.extra, '$.children') AS INTEGER)"
    # MATERIALIZED: verified_at is read twice (stored, and decided into `stale`)
    return f"""
        WITH raw AS MATERIALIZED (
            SELECT f.id AS facility_id, f.municipality_code AS m, f.eldership_code AS e, f.name, f.categories,
                   {cap} AS capacity, {kids} AS children, {verified_at_sql('f', 'v')} AS verified_at,
                   {flags['missing_hours']} AS missing_hours, {flags['no_features']} AS no_features,
                   {flags['single_source']} AS single_source, {flags['conflicts']} AS conflicts
            FROM facilities f
            LEFT JOIN (SELECT facility_id, count(*) AS n FROM source_records
                       WHERE removed_at IS NULL {f"AND facility_id IN {IDS}" if only else ""}
                       GROUP BY facility_id) s ON s.facility_id = f.id
            LEFT JOIN ({listed_sql(f"s.facility_id IN {IDS}" if only else "")}) v ON v.facility_id = f.id
            WHERE {LIVE} AND f.municipality_code IS NOT NULL {f"AND f.id IN {IDS}" if only else ""}),
        flagged AS MATERIALIZED (
            SELECT *, (coalesce(verified_at, '') < :cutoff) AS stale FROM raw)
        SELECT facility_id, m, e, name, categories, capacity, children, verified_at, missing_hours,
               no_features, stale, single_source, conflicts,
               missing_hours + no_features + stale + single_source + conflicts AS problems
        FROM flagged"""


def recompute(conn: sqlite3.Connection, *, today: date | None = None) -> dict[str, Any]:
    """Recompute every stored audit figure in one transaction; returns a summary (with timings).

    `today` fixes the 12-month staleness cut-off (tests pass it; default: the current date).
    Without areas the tables are emptied: there is nothing to divide by.
    """
    today = today or clock.now().date()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    with transaction(conn):
        t = time.perf_counter()
        shapes = _refresh_shapes(conn)
        timings["shapes"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("DELETE FROM audit_facts")
        conn.execute(f"INSERT INTO audit_facts {_facts_sql(conn, only=False)}", {"cutoff": _cutoff(today)})
        timings["facts"] = time.perf_counter() - t
        t = time.perf_counter()
        _counts(conn)
        _indicators(conn)
        timings["indicators"] = time.perf_counter() - t
        t = time.perf_counter()
        _checklist(conn)
        timings["checklist"] = time.perf_counter() - t
        t = time.perf_counter()
        tracked = _quality(conn)
        timings["quality"] = time.perf_counter() - t
        summary = {
            "computed_at": clock.stamp(),
            "today": today.isoformat(),
            "municipalities": conn.execute(
                "SELECT count(*) FROM areas WHERE level = 'municipality'").fetchone()[0],
            "institutions": conn.execute("SELECT count(*) FROM audit_institutions").fetchone()[0],
            "conflicts_tracked": tracked,
            "shapes_refreshed": shapes,
            "seconds": round(time.perf_counter() - started, 3),
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        set_meta(conn, "audit", summary)
    return summary


def _cutoff(today: date) -> str:
    """The 12-month staleness cut-off: verified before it is stale."""
    return (today - timedelta(days=STALE_DAYS)).isoformat()


def window_ids(conn: sqlite3.Connection, *, was: date, now: date, limit: int) -> list[str]:
    """The facilities whose 'stale' flag may differ between the cut-offs of two days: those
    verified between them (the incremental update re-derives only these when the day moves)."""
    low, high = sorted((_cutoff(was), _cutoff(now)))
    return [r[0] for r in conn.execute(
        "SELECT facility_id FROM audit_facts WHERE verified_at >= ? AND verified_at < ? LIMIT ?", (low, high, limit))]


# --- the incremental update ----------------------------------------------------------------

FACT_COLUMNS = ("facility_id", "m", "e", "name", "categories", "capacity", "children", "verified_at",
                *QUALITY_PROBLEMS, "problems")
_QUALITY_AT = [FACT_COLUMNS.index(k) for k in QUALITY_PROBLEMS]


def update(conn: sqlite3.Connection, ids: list[str], *, today: date | None = None) -> dict[str, Any]:
    """Bring the stored audit up to date for the facilities `ids` only (every facility whose
    figures may have moved: changed, re-listed by a run, or crossing the 12-month cut-off).

    Each facility's stored row in audit_facts (what it counted for) is compared with the row
    it gives now; the per-area sums move by the difference, the municipalities and kinds it
    touches (old and new place) get their worst-records lists and indicator rows again, and
    what is national (ranks, medians, county and country sums) is computed from the stored
    per-area rows. Equal to `recompute` (tests/test_derived_incremental.py).
    """
    today = today or clock.now().date()
    started = time.perf_counter()
    params = {"ids": json.dumps(ids), "cutoff": _cutoff(today)}
    with transaction(conn):
        old = {r[0]: tuple(r) for r in conn.execute(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM audit_facts WHERE facility_id IN {IDS}", params)}
        new = {r[0]: tuple(r) for r in conn.execute(_facts_sql(conn, only=True), params)}
        changed = [i for i in ids if old.get(i) != new.get(i)]
        counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * 6)
        quality: dict[str, list[int]] = defaultdict(lambda: [0] * (1 + len(QUALITY_PROBLEMS)))
        worst: set[str] = set()
        for fid in changed:
            for row, sign in ((old.get(fid), -1), (new.get(fid), 1)):
                if row is None:
                    continue
                for key, part in _count_parts(row):
                    acc = counts[key]
                    for i, v in enumerate(part):
                        acc[i] += sign * v
                flags = [1] + [row[i] for i in _QUALITY_AT]
                for code in (row[1], "LT"):
                    acc = quality[code]
                    for i, v in enumerate(flags):
                        acc[i] += sign * v
                worst.add(row[1])  # its worst-records list (old and new place)
        if changed:
            conn.execute(f"DELETE FROM audit_facts WHERE facility_id IN {IDS}", {"ids": json.dumps(changed)})
            rows = [new[i] for i in changed if i in new]
            conn.executemany(f"INSERT INTO audit_facts({', '.join(FACT_COLUMNS)})"
                             f" VALUES ({', '.join('?' * len(FACT_COLUMNS))})", rows)
        counts = {k: v for k, v in counts.items() if any(v)}
        _apply_counts(conn, counts)
        kinds = sorted({k[2] for k in counts})
        if kinds:
            _indicators(conn, touched={(e, cat) for _m, e, cat in counts})
        _apply_quality(conn, {k: v for k, v in quality.items() if any(v)})
        for code in sorted(worst):
            _worst_records(conn, code)
        _update_checklist(conn, params)
        summary = dict(get_meta(conn, "audit") or {})
        summary.update({
            "computed_at": clock.stamp(), "today": today.isoformat(),
            "institutions": (conn.execute("SELECT institutions FROM audit_checklist WHERE code = 'LT'").fetchone()
                             or [0])[0],
            "shapes_refreshed": False, "seconds": round(time.perf_counter() - started, 3),
            "incremental": {"facilities": len(ids), "changed": len(changed), "kinds": len(kinds),
                            "municipalities": len(worst)},
        })
        summary.pop("timings", None)
        set_meta(conn, "audit", summary)
    return summary


def _count_parts(row: tuple) -> list[tuple[tuple[str, str, str], tuple[int, ...]]]:
    """What one audit_facts row adds to audit_counts: per kind, (n, capacity, capacity_n,
    enrolled, capacity_enrolled, enrolled_n), the same sums `_counts` takes in SQL."""
    m, e, cats, cap, kids = row[1], row[2] or "", json.loads(row[4]), row[5], row[6]
    out = []
    for cat in cats:
        has_cap = cat in CHILDCARE_CATEGORIES and cap is not None
        both = has_cap and kids is not None
        out.append(((m, e, cat), (1, cap if has_cap else 0, int(has_cap), kids if both else 0,
                                  cap if both else 0, int(both))))
    return out


def _apply_counts(conn: sqlite3.Connection, deltas: dict[tuple[str, str, str], list[int]]) -> None:
    conn.executemany(
        "INSERT INTO audit_counts(m, e, cat, n, capacity, capacity_n, enrolled, capacity_enrolled, enrolled_n)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (m, e, cat) DO UPDATE SET n = n + excluded.n,"
        " capacity = capacity + excluded.capacity, capacity_n = capacity_n + excluded.capacity_n,"
        " enrolled = enrolled + excluded.enrolled, capacity_enrolled = capacity_enrolled + excluded.capacity_enrolled,"
        " enrolled_n = enrolled_n + excluded.enrolled_n",
        [(*k, *v) for k, v in deltas.items()])
    # a kind no longer present in an area has no row (the recompute's GROUP BY has none)
    conn.executemany("DELETE FROM audit_counts WHERE m = ? AND e = ? AND cat = ? AND n <= 0", list(deltas))


def _apply_quality(conn: sqlite3.Connection, deltas: dict[str, list[int]]) -> None:
    """Move the stored per-municipality (and country) counts; a code without a row (a stated
    municipality outside the areas) counts in the country's row only, as in the recompute."""
    sets = ", ".join(f"{k} = {k} + ?" for k in ("facilities", *QUALITY_PROBLEMS))
    conn.executemany(f"UPDATE audit_quality SET {sets} WHERE code = ?",
                     [(*v, code) for code, v in deltas.items()])


def _counts(conn: sqlite3.Connection) -> None:
    """audit_counts from audit_facts: per (municipality, eldership, kind) the count and the
    childcare sums, with how many rows each sum has (none: the indicator's sum is NULL)."""
    conn.execute("DELETE FROM audit_counts")
    care = f"j.value IN ({', '.join(repr(c) for c in CHILDCARE_CATEGORIES)})"
    has_cap = f"({care} AND capacity IS NOT NULL)"
    both = f"({has_cap} AND children IS NOT NULL)"
    conn.execute(f"""
        INSERT INTO audit_counts(m, e, cat, n, capacity, capacity_n, enrolled, capacity_enrolled, enrolled_n)
        SELECT m, coalesce(e, ''), j.value, count(*), coalesce(sum(iif({has_cap}, capacity, 0)), 0), sum({has_cap}),
               coalesce(sum(iif({both}, children, 0)), 0), coalesce(sum(iif({both}, capacity, 0)), 0), sum({both})
        FROM audit_facts, json_each(audit_facts.categories) j
        GROUP BY 1, 2, 3""")


def computed(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The summary of the last recompute, or None if the audit was never computed."""
    return get_meta(conn, "audit")


def _refresh_shapes(conn: sqlite3.Connection) -> bool:
    """Simplify the area outlines for the maps, only when the areas changed (cheap signature)."""
    sig = list(conn.execute("SELECT count(*), total(length(geometry)), total(min_lon), total(max_lat),"
                            " total(length(code)) FROM areas").fetchone())
    if get_meta(conn, "audit_shapes_signature") == sig and (
            conn.execute("SELECT count(*) FROM audit_shapes").fetchone()[0] == sig[0]):
        return False
    conn.execute("DELETE FROM audit_shapes")
    rows = []
    for r in conn.execute("SELECT level, code, geometry FROM areas"):
        geom = shapely.from_geojson(r["geometry"])
        simple = shapely.simplify(geom, SHAPE_TOLERANCE.get(r["level"], 0.001), preserve_topology=True)
        rows.append((r["level"], r["code"], geometry_to_geojson_text(simple, decimals=SHAPE_DECIMALS)))
    conn.executemany("INSERT INTO audit_shapes(level, code, geometry) VALUES (?, ?, ?)", rows)
    set_meta(conn, "audit_shapes_signature", sig)
    return True


def _indicators(conn: sqlite3.Connection, *, touched: set[tuple[str, str]] | None = None) -> None:
    """The indicator rows from the stored counts (audit_counts: one row per municipality,
    eldership and kind), for every kind, or (an incremental update) for the kinds in `touched`
    ((eldership code or '', kind) pairs whose counts moved).

    Everything here works on a few thousand aggregated rows (60 municipalities and 554
    elderships times the kinds): ranks, medians, county and country sums are national, so
    they are computed again for each kind touched, never from the facilities; of the
    elderships' rows only the touched ones are written again (nothing else about them moved).
    """
    categories = None if touched is None else sorted({cat for _e, cat in touched})
    kinds = [c for c in CATEGORIES if categories is None or c in categories]
    if categories is None:
        conn.execute("DELETE FROM audit_indicators")
        where, args = "", ()
    else:
        marks = ", ".join("?" * len(categories))
        conn.execute(f"DELETE FROM audit_indicators WHERE category IN ({marks}) AND level != 'eldership'",
                     categories)
        conn.executemany("DELETE FROM audit_indicators WHERE level = 'eldership' AND code = ? AND category = ?",
                         [pair for pair in touched if pair[0]])
        where, args = f" WHERE cat IN ({marks})", tuple(categories)
    # the sums' NULL (SQL's sum over no row) is kept as a count of the rows each sum has
    counts = [{"m": r[0], "e": r[1] or None, "cat": r[2], "n": r[3],
               "capacity": r[4] if r[5] else None, "capacity_n": r[5],
               "enrolled": r[6] if r[8] else None, "capacity_enrolled": r[7] if r[8] else None}
              for r in conn.execute("SELECT m, e, cat, n, capacity, capacity_n, enrolled, capacity_enrolled,"
                                    f" enrolled_n FROM audit_counts{where}", args)]
    areas = conn.execute("SELECT code, level, parent_code, county, population FROM areas").fetchall()
    munis = {a["code"]: a for a in areas if a["level"] == "municipality"}
    elds = {a["code"]: a for a in areas if a["level"] == "eldership"}
    if not munis:
        return
    empty = {"n": 0, "capacity": None, "capacity_n": 0, "enrolled": None, "capacity_enrolled": None}
    by_eld: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: dict(empty))
    by_mun: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: dict(empty))
    for r in counts:
        if r["cat"] not in CATEGORIES:
            continue
        targets = [by_mun[(r["m"], r["cat"])]]
        if r["e"] is not None and r["e"] in elds:
            targets.append(by_eld[(r["e"], r["cat"])])
        for acc in targets:
            _add(acc, r)
    elds_of: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for e in elds.values():
        elds_of[e["parent_code"]].append(e)

    rows: list[dict[str, Any]] = []
    for cat in kinds:
        mun_rows = []
        for code, m in munis.items():
            acc = by_mun[(code, cat)] if (code, cat) in by_mun else dict(empty)
            children = elds_of.get(code, [])
            none = [e for e in children if (e["code"], cat) not in by_eld]
            row = _row("municipality", code, cat, acc, m["population"], children, none)
            mun_rows.append(row)
        _rank(mun_rows)
        median = _median([r["per_10k"] for r in mun_rows])
        for r in mun_rows:
            r["median_per_10k"] = median
        rows.extend(mun_rows)
        for code, e in elds.items():
            if touched is not None and (code, cat) not in touched:
                continue
            acc = by_eld[(code, cat)] if (code, cat) in by_eld else dict(empty)
            rows.append(_row("eldership", code, cat, acc, e["population"], [e],
                             [] if acc["n"] else [e]))
        # Counties and the country: sums over their municipalities.
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in mun_rows:
            m = munis[r["code"]]
            groups[("county", m["parent_code"] or "")].append(r)
            groups[("country", "LT")].append(r)
        for (level, code), members in groups.items():
            agg = _sum_rows(level, code, cat, members)
            agg["median_per_10k"] = median
            rows.append(agg)
    if not rows:
        return
    columns = [c for c in rows[0] if not c.startswith("_")]
    conn.executemany(
        f"INSERT INTO audit_indicators({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [tuple(r[c] for c in columns) for r in rows],
    )


def _add(acc: dict[str, Any], r: dict[str, Any]) -> None:
    acc["n"] += r["n"]
    acc["capacity_n"] += r["capacity_n"] or 0
    for key in ("capacity", "enrolled", "capacity_enrolled"):
        if r[key] is not None:
            acc[key] = (acc[key] or 0) + r[key]


def _ratio(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def _row(level: str, code: str, cat: str, acc: dict[str, Any], population: int | None,
         elderships: list[sqlite3.Row], none: list[sqlite3.Row]) -> dict[str, Any]:
    pops = [e["population"] for e in none]
    uncovered = None if any(p is None for p in pops) else sum(pops)
    return {
        "level": level, "code": code, "category": cat, "count": acc["n"], "population": population,
        "per_10k": None if not population else acc["n"] * 10_000 / population,
        "elderships": len(elderships), "elderships_none": len(none),
        "share_elderships_none": _ratio(len(none), len(elderships)),
        "population_uncovered": uncovered,
        "share_population_uncovered": _ratio(uncovered, population),
        "rank": None, "median_per_10k": None,
        "capacity": acc["capacity"], "capacity_facilities": acc["capacity_n"],
        "enrolled": acc["enrolled"],
        "capacity_per_child": _ratio(acc["capacity_enrolled"], acc["enrolled"]),
        "_capacity_enrolled": acc["capacity_enrolled"],  # for the county/country sums; not stored
    }


def _sum_rows(level: str, code: str, cat: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    def total(key: str) -> int | None:
        values = [m[key] for m in members if m[key] is not None]
        return sum(values) if values else None

    population = None if any(m["population"] is None for m in members) else sum(m["population"] for m in members)
    count = sum(m["count"] for m in members)
    elderships, none = total("elderships") or 0, total("elderships_none") or 0
    uncovered = total("population_uncovered")
    return {
        "level": level, "code": code, "category": cat, "count": count, "population": population,
        "per_10k": None if not population else count * 10_000 / population,
        "elderships": elderships, "elderships_none": none,
        "share_elderships_none": _ratio(none, elderships),
        "population_uncovered": uncovered, "share_population_uncovered": _ratio(uncovered, population),
        "rank": None, "median_per_10k": None,
        "capacity": total("capacity"), "capacity_facilities": total("capacity_facilities") or 0,
        "enrolled": total("enrolled"),
        "capacity_per_child": _ratio(total("_capacity_enrolled"), total("enrolled")),
    }


def _rank(rows: list[dict[str, Any]]) -> None:
    """Competition ranking by per_10k, highest first ("1, 2, 2, 4": ties share a rank and the
    next rank skips), among the municipalities with at least one facility (rule 1). None for a
    count of 0 (nothing to rank: an empty municipality is not "first" when all are empty) and
    for an unknown population."""
    ranked = sorted((r for r in rows if r["per_10k"] is not None and r["count"] > 0), key=lambda r: -r["per_10k"])
    for i, r in enumerate(ranked):
        r["rank"] = ranked[i - 1]["rank"] if i and r["per_10k"] == ranked[i - 1]["per_10k"] else i + 1


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _institutions_sql(*, only: bool) -> str:
    """INSERT of every public institution's points (or only those in :ids)."""
    point_sql = ",\n".join(f"{sql} AS {key}" for key, (_, _, sql) in CHECKLIST.items())
    yes = " + ".join(f"({k} = 'yes')" for k in POINTS)
    known = " + ".join(f"({k} != 'unknown')" for k in POINTS)
    extracted = ", ".join(f"json_extract(f.features, '$.{n}') AS v_{n}" for n in CHECKLIST_FEATURES)
    # MATERIALIZED: without it SQLite flattens the subqueries and evaluates every point's CASE
    # (and every json_extract) again for each use in yes/known/score (~6x the work).
    return f"""
        INSERT INTO audit_institutions(facility_id, municipality_code, eldership_code, name, categories,
            sector, {', '.join(POINTS)}, yes, known, score, meets_all)
        WITH raw AS MATERIALIZED (
            SELECT f.id, f.municipality_code, f.eldership_code, f.name, f.categories, f.sector,
                   f.opening_hours, {extracted}
            FROM facilities f
            WHERE {LIVE} AND f.municipality_code IS NOT NULL AND {institution_predicate('f')}
                  {f"AND f.id IN {IDS}" if only else ""}),
        points AS MATERIALIZED (
            SELECT id, municipality_code, eldership_code, name, categories, sector, {point_sql} FROM raw),
        counted AS MATERIALIZED (
            SELECT *, {yes} AS yes, {known} AS known FROM points)
        SELECT id, municipality_code, eldership_code, name, categories, sector, {', '.join(POINTS)},
               yes, known, CASE WHEN known >= {min_known_points(len(POINTS))} THEN 1.0 * yes / known END,
               yes = {len(POINTS)}
        FROM counted
    """


def _checklist_row(code: str, n: int, yes_points: int, known_points: int, meets: int,
                   points: dict[str, dict[str, int]]) -> tuple:
    """One audit_checklist row from its sums (rule 2: a score only with enough known points)."""
    applicable = n * len(POINTS)
    score = _ratio(yes_points, known_points) if n and known_points >= min_known_points(applicable) else None
    return (code, n, yes_points, known_points, score, _ratio(known_points, applicable), meets, json.dumps(points))


def _checklist(conn: sqlite3.Connection) -> None:
    """Every public institution's points (one INSERT ... SELECT), then per-municipality sums."""
    conn.execute("DELETE FROM audit_institutions")
    conn.execute("DELETE FROM audit_checklist")
    conn.execute(_institutions_sql(only=False))
    per_point = ", ".join(
        f"sum({k} = 'yes'), sum({k} = 'no'), sum({k} = 'unknown')" for k in POINTS)
    sql = (f"SELECT {{group}} AS code, count(*), total(yes), total(known), total(meets_all), {per_point}"
           f" FROM audit_institutions {{tail}}")
    munis = [r[0] for r in conn.execute("SELECT code FROM areas WHERE level = 'municipality'")]
    found = {r[0]: r for r in conn.execute(sql.format(group="municipality_code", tail="GROUP BY municipality_code"))}
    country = conn.execute(sql.format(group="'LT'", tail="")).fetchone()
    rows = []
    for code in [*munis, "LT"]:
        r = country if code == "LT" else found.get(code)
        n = r[1] if r else 0
        yes_points, known_points, meets = (int(r[2]), int(r[3]), int(r[4])) if r and n else (0, 0, 0)
        points = {}
        for i, key in enumerate(POINTS):
            base = 5 + 3 * i
            points[key] = {"yes": (r[base] or 0) if r else 0, "no": (r[base + 1] or 0) if r else 0,
                           "unknown": (r[base + 2] or 0) if r else 0}
        rows.append(_checklist_row(code, n, yes_points, known_points, points=points, meets=meets))
    conn.executemany("INSERT INTO audit_checklist VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _update_checklist(conn: sqlite3.Connection, params: dict[str, Any]) -> None:
    """The institutions in :ids again, and their municipalities' and the country's sums moved by
    the difference (a municipality outside the areas counts in the country's row only)."""
    read = (f"SELECT municipality_code, {', '.join(POINTS)}, yes, known, meets_all FROM audit_institutions"
            f" WHERE facility_id IN {IDS}")
    before = conn.execute(read, params).fetchall()
    conn.execute(f"DELETE FROM audit_institutions WHERE facility_id IN {IDS}", params)
    conn.execute(_institutions_sql(only=True), params)
    after = conn.execute(read, params).fetchall()
    if sorted(map(tuple, before)) == sorted(map(tuple, after)):
        return
    deltas: dict[str, dict[str, Any]] = {}
    for rows, sign in ((before, -1), (after, 1)):
        for r in rows:
            for code in (r[0], "LT"):
                d = deltas.setdefault(code, {"n": 0, "yes": 0, "known": 0, "meets": 0,
                                             "points": {k: {"yes": 0, "no": 0, "unknown": 0} for k in POINTS}})
                d["n"] += sign
                d["yes"] += sign * r["yes"]
                d["known"] += sign * r["known"]
                d["meets"] += sign * r["meets_all"]
                for k in POINTS:
                    d["points"][k][r[k]] += sign
    for code, d in deltas.items():
        row = conn.execute("SELECT institutions, yes_points, known_points, meets_all, points FROM audit_checklist"
                           " WHERE code = ?", (code,)).fetchone()
        if row is None:
            continue
        points = json.loads(row["points"])
        for k in POINTS:
            for v in ("yes", "no", "unknown"):
                points[k][v] += d["points"][k][v]
        conn.execute("DELETE FROM audit_checklist WHERE code = ?", (code,))
        conn.execute("INSERT INTO audit_checklist VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _checklist_row(
            code, row["institutions"] + d["n"], row["yes_points"] + d["yes"], row["known_points"] + d["known"],
            points=points, meets=row["meets_all"] + d["meets"]))


def _labels() -> str:
    return " || ".join(f"CASE WHEN {k} THEN '{k},' ELSE '' END" for k in QUALITY_PROBLEMS)


def _quality(conn: sqlite3.Connection) -> bool:
    """Per-municipality data-quality counts and the worst records, from audit_facts; True if
    conflicts are tracked."""
    conn.execute("DELETE FROM audit_quality")
    conn.execute("DELETE FROM audit_quality_records")
    tracked = 1 if unresolved_conflicts_sql(conn) is not None else 0
    sums = ", ".join(f"total({k})" for k in QUALITY_PROBLEMS)
    munis = [r[0] for r in conn.execute("SELECT code FROM areas WHERE level = 'municipality'")]
    found = {r[0]: r for r in conn.execute(f"SELECT m, count(*), {sums} FROM audit_facts GROUP BY m")}
    country = conn.execute(f"SELECT 'LT', count(*), {sums} FROM audit_facts").fetchone()
    rows = []
    for code in [*munis, "LT"]:
        r = country if code == "LT" else found.get(code)
        values = [int(v or 0) for v in r[1:]] if r else [0] * (1 + len(QUALITY_PROBLEMS))
        rows.append((code, *values, tracked))
    conn.executemany(f"INSERT INTO audit_quality VALUES ({', '.join('?' * (len(QUALITY_PROBLEMS) + 3))})", rows)
    conn.execute(f"""
        INSERT INTO audit_quality_records(municipality_code, position, facility_id, name, problems)
        SELECT m, pos, facility_id, name, rtrim(labels, ',') FROM (
            SELECT m, facility_id, name, {_labels()} AS labels,
                   row_number() OVER (PARTITION BY m ORDER BY problems DESC, name, facility_id) AS pos
            FROM audit_facts WHERE problems > 0)
        WHERE pos <= {WORST_RECORDS}
    """)
    return bool(tracked)


def _worst_records(conn: sqlite3.Connection, code: str) -> None:
    """One municipality's worst-records list again (the first few on audit_facts_worst)."""
    conn.execute("DELETE FROM audit_quality_records WHERE municipality_code = ?", (code,))
    conn.execute(f"""
        INSERT INTO audit_quality_records(municipality_code, position, facility_id, name, problems)
        SELECT m, row_number() OVER (ORDER BY problems DESC, name, facility_id), facility_id, name,
               rtrim({_labels()}, ',')
        FROM (SELECT * FROM audit_facts WHERE m = ? AND problems > 0
              ORDER BY problems DESC, name, facility_id LIMIT {WORST_RECORDS})
    """, (code,))
