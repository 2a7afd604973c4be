"""Reading the stored audit: the one set of queries the pages, the API, the CSVs and the CLI share.

Everything here reads the small tables `directory.audit.recompute` wrote; nothing scans the
facilities, so a request costs the same with a thousand facilities or a million.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from .audit import (
    CHECKLIST,
    CHECKLIST_CATEGORIES,
    MIN_KNOWN_SHARE,
    POINTS,
    QUALITY_PROBLEMS,
    computed,
    min_known_points,
)
from .errors import BadRequest, NotFound
from .model import CATEGORIES

# Indicator key -> (label, kind, higher is better). kind: count | rate | share | ratio | score.
INDICATORS: dict[str, tuple[str, str, bool]] = {
    "per_10k": ("Per 10,000 residents", "rate", True),
    "count": ("Count", "count", True),
    "share_population_uncovered": ("Share of residents in elderships with none", "share", False),
    "share_elderships_none": ("Share of elderships with none", "share", False),
    "capacity_per_child": ("Childcare places per enrolled child", "ratio", True),
    "checklist_score": ("Institutions' checklist score (yes / known points)", "score", True),
    "missing_hours_share": ("Share of facilities without opening hours", "share", False),
}

# Columns the municipality table can be sorted by (also the CSV/JSON keys).
SORT_KEYS = (
    "name", "county", "population", "count", "per_10k", "rank", "share_elderships_none",
    "share_population_uncovered", "capacity_per_child", "institutions", "checklist_score",
    "meets_all", "facilities", "missing_hours_share",
)
INSTITUTIONS_ON_PAGE = 50
MEETING_ALL_ON_PAGE = 500

_IND_COLUMNS = (
    "count", "population", "per_10k", "elderships", "elderships_none", "share_elderships_none",
    "population_uncovered", "share_population_uncovered", "rank", "median_per_10k", "capacity",
    "capacity_facilities", "enrolled", "capacity_per_child",
)
_QUALITY_COLUMNS = tuple(QUALITY_PROBLEMS)


def check_category(category: str | None, *, param: str = "category") -> str:
    category = category or "kindergarten"
    if category not in CATEGORIES:
        raise BadRequest(f"unknown category {category!r}; one of {', '.join(CATEGORIES)}", where=param)
    return category


def check_indicator(indicator: str | None, *, param: str = "indicator") -> str:
    indicator = indicator or "per_10k"
    if indicator not in INDICATORS:
        raise BadRequest(f"unknown indicator {indicator!r}; one of {', '.join(INDICATORS)}", where=param)
    return indicator


def check_sort(sort: str | None, *, param: str = "sort") -> tuple[str, bool]:
    """'per_10k' (ascending) or '-per_10k' (descending) -> (key, descending)."""
    sort = sort or "name"
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        raise BadRequest(f"cannot sort by {key!r}; one of {', '.join(SORT_KEYS)}", where=param)
    return key, descending


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    """When the audit was computed; a page without it says how to compute it."""
    return computed(conn) or {}


def _quality_dict(r: sqlite3.Row | None) -> dict[str, Any]:
    if r is None:
        return {"facilities": 0, **{k: 0 for k in _QUALITY_COLUMNS},
                **{f"{k}_share": None for k in _QUALITY_COLUMNS}, "conflicts_tracked": False}
    n = r["facilities"]
    out: dict[str, Any] = {"facilities": n}
    for k in _QUALITY_COLUMNS:
        out[k] = r[k]
        out[f"{k}_share"] = r[k] / n if n else None
    out["conflicts_tracked"] = bool(r["conflicts_tracked"])
    return out


def score_status(institutions: int, score: float | None) -> str:
    """Why a checklist score is or is not there: "scored"; "too_few_known" (fewer than
    MIN_KNOWN_SHARE of the applicable points known: the pages say "too few known points");
    "no_institutions"."""
    if not institutions:
        return "no_institutions"
    return "too_few_known" if score is None else "scored"


def _checklist_dict(r: sqlite3.Row | None) -> dict[str, Any]:
    if r is None:
        return {"institutions": 0, "yes_points": 0, "known_points": 0, "score": None, "coverage": None,
                "meets_all": 0, "points": {k: {"yes": 0, "no": 0, "unknown": 0} for k in POINTS},
                "score_status": "no_institutions", "points_needed": 0}
    return {"institutions": r["institutions"], "yes_points": r["yes_points"], "known_points": r["known_points"],
            "score": r["score"], "coverage": r["coverage"], "meets_all": r["meets_all"],
            "points": json.loads(r["points"]), "score_status": score_status(r["institutions"], r["score"]),
            "points_needed": min_known_points(r["institutions"] * len(POINTS)) if r["institutions"] else 0}


def ranked_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """category -> how many municipalities are ranked (those with at least one facility): the
    "of N" beside a rank."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT category, count(rank) FROM audit_indicators WHERE level = 'municipality' GROUP BY category")}


def checklist_rules() -> dict[str, Any]:
    """The checklist's scope and threshold, for the pages, the API and the CLI."""
    return {"categories": list(CHECKLIST_CATEGORIES), "min_known_share": MIN_KNOWN_SHARE,
            "institution_min_known": min_known_points(len(POINTS)), "points": len(POINTS)}


def municipalities(conn: sqlite3.Connection, *, category: str, sort: str = "name",
                   descending: bool = False) -> list[dict[str, Any]]:
    """The 60 municipalities with one category's indicators, checklist and quality summaries."""
    ranked = ranked_counts(conn).get(category, 0)
    rows = conn.execute(f"""
        SELECT a.code, a.name, a.county, a.population AS area_population,
               {', '.join(f'i.{c}' for c in _IND_COLUMNS)},
               c.institutions, c.score AS checklist_score, c.coverage AS checklist_coverage,
               c.meets_all, q.facilities, q.missing_hours, q.no_features, q.stale, q.single_source,
               q.conflicts, q.conflicts_tracked
        FROM areas a
        LEFT JOIN audit_indicators i ON i.level = 'municipality' AND i.code = a.code AND i.category = ?
        LEFT JOIN audit_checklist c ON c.code = a.code
        LEFT JOIN audit_quality q ON q.code = a.code
        WHERE a.level = 'municipality'
    """, (category,)).fetchall()
    out = []
    for r in rows:
        d = {k: r[k] for k in r.keys() if k != "area_population"}
        d["population"] = r["population"] if r["population"] is not None else r["area_population"]
        d["count"] = d["count"] or 0
        d["institutions"] = d["institutions"] or 0
        d["meets_all"] = d["meets_all"] or 0
        d["facilities"] = d["facilities"] or 0
        d["conflicts_tracked"] = bool(d["conflicts_tracked"])
        for k in _QUALITY_COLUMNS:
            d[k] = d[k] or 0
            d[f"{k}_share"] = d[k] / d["facilities"] if d["facilities"] else None
        d["category"] = category
        d["ranked_of"] = ranked
        d["checklist_status"] = score_status(d["institutions"], d["checklist_score"])
        out.append(d)
    return sort_rows(out, sort, descending)


def sort_rows(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """Sort with missing values last in either direction; names compare without case."""
    def k(r: dict[str, Any]):
        v = r.get(key)
        return (v is None, (v.casefold() if isinstance(v, str) else v) if v is not None else 0)
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=k, reverse=descending)
    missing.sort(key=lambda r: r["name"].casefold())
    return present + missing


def national(conn: sqlite3.Connection, *, category: str) -> dict[str, Any]:
    """The country's totals for a category, its checklist and quality sums."""
    ind = conn.execute(f"SELECT {', '.join(_IND_COLUMNS)} FROM audit_indicators"
                       " WHERE level = 'country' AND code = 'LT' AND category = ?", (category,)).fetchone()
    totals = conn.execute("SELECT category, count, per_10k, share_population_uncovered FROM audit_indicators"
                          " WHERE level = 'country' AND code = 'LT'").fetchall()
    return {
        "category": category,
        "indicators": dict(ind) if ind else None,
        "categories": {r["category"]: {"count": r["count"], "per_10k": r["per_10k"],
                                       "share_population_uncovered": r["share_population_uncovered"]}
                       for r in totals},
        "checklist": _checklist_dict(conn.execute("SELECT * FROM audit_checklist WHERE code = 'LT'").fetchone()),
        "checklist_rules": checklist_rules(),
        "quality": _quality_dict(conn.execute("SELECT * FROM audit_quality WHERE code = 'LT'").fetchone()),
        "computed": status(conn),
    }


def municipality(conn: sqlite3.Connection, code: str, *, category: str,
                 institutions_limit: int | None = INSTITUTIONS_ON_PAGE) -> dict[str, Any]:
    """One municipality: every category against the median, its county and the country; its
    elderships for `category`; the gaps; its institutions' checklist; its data quality."""
    area = conn.execute("SELECT code, name, county, parent_code, population, min_lon, min_lat, max_lon, max_lat"
                        " FROM areas WHERE level = 'municipality' AND code = ?", (code,)).fetchone()
    if area is None:
        raise NotFound(f"no municipality with code {code[:40]!r}", where="code")
    by_level: dict[tuple[str, str], dict[str, Any]] = {}
    for r in conn.execute(f"SELECT level, category, {', '.join(_IND_COLUMNS)} FROM audit_indicators"
                          " WHERE (level = 'municipality' AND code = ?) OR (level = 'county' AND code = ?)"
                          " OR level = 'country'", (code, area["parent_code"] or "")):
        by_level[(r["level"], r["category"])] = {k: r[k] for k in _IND_COLUMNS}
    indicators = []
    ranked = ranked_counts(conn)
    for cat, label in CATEGORIES.items():
        mine = by_level.get(("municipality", cat))
        county = by_level.get(("county", cat))
        country = by_level.get(("country", cat))
        indicators.append({"category": cat, "label": label, "municipality": mine, "ranked_of": ranked.get(cat, 0),
                           "median_per_10k": mine["median_per_10k"] if mine else None,
                           "county_per_10k": county["per_10k"] if county else None,
                           "country_per_10k": country["per_10k"] if country else None})
    elderships = [dict(r) for r in conn.execute("""
        SELECT a.code, a.name, a.population, i.count, i.per_10k, i.capacity, i.capacity_per_child
        FROM areas a LEFT JOIN audit_indicators i
             ON i.level = 'eldership' AND i.code = a.code AND i.category = ?
        WHERE a.level = 'eldership' AND a.parent_code = ? ORDER BY a.name""", (category, code))]
    for e in elderships:
        e["count"] = e["count"] or 0
    gaps = [e for e in elderships if (e["population"] or 0) > 0 and e["count"] == 0]
    checklist = _checklist_dict(conn.execute("SELECT * FROM audit_checklist WHERE code = ?", (code,)).fetchone())
    limit = "" if institutions_limit is None else f"LIMIT {int(institutions_limit)}"
    institutions = [_institution(r) for r in conn.execute(
        "SELECT * FROM audit_institutions WHERE municipality_code = ?"
        f" ORDER BY meets_all DESC, score DESC, name {limit}", (code,))]
    meeting_all = [_institution(r) for r in conn.execute(
        "SELECT * FROM audit_institutions WHERE municipality_code = ? AND meets_all = 1"
        f" ORDER BY meets_all DESC, score DESC, name {limit}", (code,))]
    quality = _quality_dict(conn.execute("SELECT * FROM audit_quality WHERE code = ?", (code,)).fetchone())
    worst = [{"facility_id": r["facility_id"], "name": r["name"],
              "problems": [p for p in r["problems"].split(",") if p]}
             for r in conn.execute("SELECT * FROM audit_quality_records WHERE municipality_code = ?"
                                   " ORDER BY position", (code,))]
    return {
        "code": area["code"], "name": area["name"], "county": area["county"], "population": area["population"],
        "bbox": [area["min_lon"], area["min_lat"], area["max_lon"], area["max_lat"]],
        "category": category, "indicators": indicators, "elderships": elderships, "gaps": gaps,
        "checklist": checklist, "checklist_rules": checklist_rules(), "institutions": institutions,
        "meeting_all": meeting_all,
        "quality": quality, "worst_records": worst, "computed": status(conn),
    }


def _institution(r: sqlite3.Row) -> dict[str, Any]:
    return {"facility_id": r["facility_id"], "name": r["name"], "categories": json.loads(r["categories"]),
            "sector": r["sector"], "eldership_code": r["eldership_code"],
            "points": {k: r[k] for k in POINTS}, "yes": r["yes"], "known": r["known"],
            "score": r["score"], "score_status": score_status(1, r["score"]), "meets_all": bool(r["meets_all"])}


def meeting_all(conn: sqlite3.Connection, *, limit: int | None = 500) -> list[dict[str, Any]]:
    """The public list: institutions meeting every checklist point, by municipality and name."""
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    return [{**_institution(r), "municipality_code": r["municipality_code"], "municipality": r["municipality"]}
            for r in conn.execute(
                "SELECT i.*, a.name AS municipality FROM audit_institutions i"
                " JOIN areas a ON a.level = 'municipality' AND a.code = i.municipality_code"
                " WHERE i.meets_all = 1 ORDER BY i.municipality_code, i.name" + tail)]


def meeting_all_csv(conn: sqlite3.Connection) -> Iterator[list[Any]]:
    columns = ("municipality_code", "municipality", "facility_id", "name", "categories", "sector")
    yield list(columns)
    for r in meeting_all(conn, limit=None):
        yield [";".join(r[c]) if c == "categories" else r[c] for c in columns]


def shapes(conn: sqlite3.Connection, *, level: str, parent: str | None = None) -> list[tuple[str, str, str]]:
    """(code, name, simplified GeoJSON geometry text) of the areas of a level (and parent)."""
    sql = ("SELECT a.code, a.name, s.geometry FROM areas a JOIN audit_shapes s ON s.level = a.level AND s.code = a.code"
           " WHERE a.level = ?")
    params: list[Any] = [level]
    if parent is not None:
        sql += " AND a.parent_code = ?"
        params.append(parent)
    return [(r[0], r[1], r[2]) for r in conn.execute(sql + " ORDER BY a.code", params)]


def checklist_documentation() -> list[dict[str, str]]:
    return [{"key": k, "label": label, "rule": rule} for k, (label, rule, _) in CHECKLIST.items()]


# --- CSV rows (streamed by the web layer) ---------------------------------------------------

MUNICIPALITY_CSV = ("code", "name", "county", "category", "population", *[c for c in _IND_COLUMNS if c != "population"],
                    "ranked_of", "institutions", "checklist_score", "checklist_status", "checklist_coverage",
                    "meets_all", "facilities",
                    *[f"{k}_share" for k in _QUALITY_COLUMNS], "conflicts_tracked")


def municipalities_csv(conn: sqlite3.Connection) -> Iterator[list[Any]]:
    """Every municipality × category (the whole /audit table in long form)."""
    yield list(MUNICIPALITY_CSV)
    for cat in CATEGORIES:
        for r in municipalities(conn, category=cat, sort="code"):
            yield [r.get(c) for c in MUNICIPALITY_CSV]


AREA_CSV = ("level", "code", "name", "category", *_IND_COLUMNS)


def municipality_csv(conn: sqlite3.Connection, code: str) -> Iterator[list[Any]]:
    """The municipality, its county, the country and its elderships × every category."""
    area = conn.execute("SELECT parent_code FROM areas WHERE level = 'municipality' AND code = ?", (code,)).fetchone()
    if area is None:
        raise NotFound(f"no municipality with code {code[:40]!r}", where="code")
    yield list(AREA_CSV)
    for r in conn.execute(f"""
        SELECT i.level, i.code, coalesce(a.name, i.code) AS name, i.category, {', '.join(f'i.{c}' for c in _IND_COLUMNS)}
        FROM audit_indicators i
        LEFT JOIN areas a ON a.code = i.code AND a.level = i.level
        WHERE (i.level = 'municipality' AND i.code = ?) OR (i.level = 'county' AND i.code = ?)
           OR i.level = 'country'
           OR (i.level = 'eldership' AND i.code IN (SELECT code FROM areas WHERE level = 'eldership' AND parent_code = ?))
        ORDER BY CASE i.level WHEN 'municipality' THEN 0 WHEN 'county' THEN 1 WHEN 'country' THEN 2 ELSE 3 END,
                 name, i.category""", (code, area["parent_code"] or "", code)):
        yield list(r)


INSTITUTION_CSV = ("facility_id", "name", "categories", "sector", "eldership_code", *POINTS, "yes", "known",
                   "score", "meets_all")


def institutions_csv(conn: sqlite3.Connection, code: str, *, meets_all: bool = False) -> Iterator[list[Any]]:
    if conn.execute("SELECT 1 FROM areas WHERE level = 'municipality' AND code = ?", (code,)).fetchone() is None:
        raise NotFound(f"no municipality with code {code[:40]!r}", where="code")
    yield list(INSTITUTION_CSV)
    extra = " AND meets_all = 1" if meets_all else ""
    for r in conn.execute(f"SELECT * FROM audit_institutions WHERE municipality_code = ?{extra}"
                          " ORDER BY meets_all DESC, score DESC, name", (code,)):
        row = [r[c] for c in INSTITUTION_CSV]
        row[2] = ";".join(json.loads(r["categories"]))
        yield row


def fmt(value: Any, kind: str) -> str:
    """A figure as the pages print it; None is 'n/a' (unknown), never 0."""
    if value is None:
        return "n/a"

    if kind == "count":
        return f"{int(value):,}".replace(",", "\u202f")
    if kind in ("share", "score"):
        return f"{100 * value:.1f}%"
    if kind == "ratio":
        return f"{value:.2f}"
    return f"{value:.2f}"
