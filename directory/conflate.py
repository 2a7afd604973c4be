"""Conflation: decide when two sources describe the same place, and merge them into one facility.

Two records are the same place when all of these hold (thresholds are Settings fields):
  * they come from different sources (two rows of one register are two places by definition)
    and the candidate facility holds no live record of the new record's source yet;
  * their categories share a family (kindergarten ~ childcare; playground ~ indoor_play ...);
  * they are at most `conflate_distance_m` metres apart;
  * their names, normalised (diacritics folded, quotes, brackets and generic words such as
    "lopšelis-darželis", "l/d", "VšĮ", "Vilniaus" removed), score at least `conflate_name_score`;
  * they agree on school words: "X gimnazija" and "X" are a school and a kindergarten in one
    building, never one place.
Among the candidates the best (name score, then distance) wins. Records without a position are
not conflated (nothing to compare but a name; documented in docs/mappings.md).

Merge policy (one value per field, from the live source records of a facility):
  * registry first (official registers and municipal uploads: every source but "osm") for
    name, address, operator, sector, status and extra (capacity, waiting list ...): the owner of
    the register is the authority on what the institution is called and how big it is;
  * OpenStreetMap first for position, features and opening_hours: mapped on the ground, per
    building entrance, and richer in accessibility and hours than any register;
  * categories are the union; last_verified the latest; licence lists every licence.
Where two live sources give different values for a field, the conflict is stored with every
source's value and the one chosen, and shown in the facility's detail JSON.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from .model import Facility

OSM = "osm"

# Categories that may describe the same place in two sources.
FAMILIES: dict[str, str] = {
    "kindergarten": "childcare", "childcare": "childcare",
    "playground": "play", "indoor_play": "play",
    "community_centre": "civic", "townhall": "civic", "culture": "civic",
}

# Words that name the kind of institution, not the institution: dropped before comparing.
GENERIC = {
    "lopselis", "darzelis", "lopselis-darzelis", "ld", "l-d", "vsi", "viesoji", "istaiga", "uab", "mb",
    "vilniaus", "kauno", "klaipedos", "siauliu", "panevezio", "miesto", "savivaldybes", "rajono",
    "mokykla-darzelis", "darzelis-mokykla", "ikimokyklinio", "ugdymo", "ikimokyklinis", "privatus",
    "vaiku", "kindergarten", "nursery", "biblioteka", "filialas", "centras", "dienos",
}
# Words that make a school: "X gimnazija" is not the kindergarten "X" in the same building.
SCHOOL = {"mokykla", "gimnazija", "progimnazija", "pradine", "licejus", "pagrindine", "school"}

_QUOTES = re.compile(r"[\"'„“”«»‘’`]")
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_PUNCT = re.compile(r"[^\w/-]+")


def fold(text: str) -> str:
    """Lower-case and strip diacritics: "Lopšelis-darželis" -> "lopselis-darzelis"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def name_tokens(name: str | None) -> tuple[list[str], set[str]]:
    """(distinguishing tokens, school words) of a name, generic words and addresses removed."""
    text = _BRACKETS.sub(" ", _QUOTES.sub(" ", fold(name or "")))
    text = text.replace("l/d", " ld ").replace("l. d.", " ld ")
    tokens = [t.strip("-/") for t in _PUNCT.sub(" ", text).split()]
    school = {t for t in tokens if t in SCHOOL}
    return [t for t in tokens if t and t not in GENERIC and t not in SCHOOL and t != "/"], school


def name_score(a: str | None, b: str | None) -> float:
    """Similarity 0..1 of two names after normalisation (1.0: the same distinguishing words).

    Word order is ignored and Lithuanian case endings are tolerated ("Aušrelės darželis" vs
    "Aušrelė"): each token is matched to its most similar token on the other side.
    """
    ta, _ = name_tokens(a)
    tb, _ = name_tokens(b)
    if not ta or not tb:
        return 0.0
    joined = SequenceMatcher(None, " ".join(sorted(ta)), " ".join(sorted(tb))).ratio()

    def cover(xs: list[str], ys: list[str]) -> float:
        return sum(max(SequenceMatcher(None, x, y).ratio() for y in ys) for x in xs) / len(xs)

    return round(max(joined, min(cover(ta, tb), cover(tb, ta))), 3)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine; plenty for tens of metres)."""
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(h)))


def families(categories: list[str]) -> set[str]:
    return {FAMILIES.get(c, c) for c in categories}


@dataclass(frozen=True, slots=True)
class Thresholds:
    distance_m: float = 150.0
    name_score: float = 0.8


@dataclass(frozen=True, slots=True)
class Decision:
    same: bool
    reason: dict[str, Any]


def decide(a: Facility | Mapping[str, Any], b: Facility | Mapping[str, Any], th: Thresholds) -> Decision:
    """Are records `a` and `b` (from two sources) the same place? With the reason either way."""
    ga = a.__getitem__ if isinstance(a, Mapping) else lambda k: getattr(a, k)
    gb = b.__getitem__ if isinstance(b, Mapping) else lambda k: getattr(b, k)
    reason: dict[str, Any] = {}
    if ga("lon") is None or gb("lon") is None:
        return Decision(False, {"why": "no position"})
    if not families(ga("categories")) & families(gb("categories")):
        return Decision(False, {"why": "different category family"})
    dist = distance_m(ga("lon"), ga("lat"), gb("lon"), gb("lat"))
    score = name_score(ga("name"), gb("name"))
    reason = {"distance_m": round(dist, 1), "name_score": score}
    if dist > th.distance_m:
        return Decision(False, {**reason, "why": f"farther than {th.distance_m:g} m"})
    if name_tokens(ga("name"))[1] != name_tokens(gb("name"))[1]:
        return Decision(False, {**reason, "why": "one name is a school, the other is not"})
    if score < th.name_score:
        return Decision(False, {**reason, "why": f"name score below {th.name_score:g}"})
    return Decision(True, {**reason, "why": "same category family, near, similar name"})


@dataclass(frozen=True, slots=True)
class Match:
    """What a matcher returns: the facility to link to and why (stored on the source record)."""

    facility_id: str
    reason: dict[str, Any]


def _box(rec: Facility, th: Thresholds) -> tuple[float, float, float, float]:
    """(min_lon, max_lon, min_lat, max_lat) around a record: every place within th.distance_m."""
    dlat = th.distance_m / 111_000.0
    dlon = dlat / max(0.1, math.cos(math.radians(rec.lat)))
    return rec.lon - dlon, rec.lon + dlon, rec.lat - dlat, rec.lat + dlat


def _best(rec: Facility, candidates: list[tuple[str, set[str], dict[str, Any]]], th: Thresholds) -> Match | None:
    """The best of a record's candidates (name score, then distance; the first on a tie), each
    (facility id, the names to compare with, its categories and position)."""
    best: tuple[float, float, str, dict[str, Any]] | None = None
    for facility_id, names, cand in candidates:
        for name in names:
            d = decide(rec, {**cand, "name": name}, th)
            if d.same:
                key = (d.reason["name_score"], -d.reason["distance_m"])
                if best is None or key > best[:2]:
                    best = (*key, facility_id, {**d.reason, "matched_name": name})
    if best is None:
        return None
    return Match(best[2], best[3])


class Matcher:
    """A `directory.sync.Matcher` that links a new record to the best existing facility.

    Called with one record it probes the R*Tree for that record (the reference); `batch` finds
    the candidates of a whole batch of new records in one R*Tree join and gives the same
    answers record by record (tests/test_ingest_write.py compares the two on real data).
    """

    def __init__(self, th: Thresholds) -> None:
        self.th = th

    def __call__(self, conn: sqlite3.Connection, rec: Facility) -> Match | None:
        if rec.lon is None or rec.lat is None:
            return None
        min_lon, max_lon, min_lat, max_lat = _box(rec, self.th)
        rows = conn.execute(
            "SELECT f.id, f.name, f.categories, f.lon, f.lat FROM facilities_rtree r"
            " JOIN facilities f ON f.rid = r.rid"
            " WHERE r.min_lon <= ? AND r.max_lon >= ? AND r.min_lat <= ? AND r.max_lat >= ?"
            " AND f.status != 'removed'",
            (max_lon, min_lon, max_lat, min_lat),
        ).fetchall()
        candidates = []
        for row in rows:
            taken = conn.execute(
                "SELECT 1 FROM source_records WHERE facility_id = ? AND source = ? AND removed_at IS NULL",
                (row["id"], rec.source),
            ).fetchone()
            if taken:
                continue
            # Compare with each live record's own name too: the merged name is only one of them.
            names = {row["name"]} | {
                json.loads(r["data"]).get("name") or ""
                for r in conn.execute(
                    "SELECT data FROM source_records WHERE facility_id = ? AND removed_at IS NULL", (row["id"],)
                )
            }
            candidates.append((row["id"], names, {"lon": row["lon"], "lat": row["lat"],
                                                  "categories": json.loads(row["categories"])}))
        return _best(rec, candidates, self.th)

    def batch(self, conn: sqlite3.Connection, recs: list[Facility]) -> BatchMatch:
        """The candidates of every record in `recs` (new records of one source), found at once.

        Valid while the batch is applied in order, provided the caller reports with
        `BatchMatch.took` each facility a record of this source is linked to as it goes: a
        facility that gains a live record of the source is no longer a candidate, and nothing
        else the batch writes can change a candidate (new facilities are the source's own).
        """
        placed = [(i, *_box(rec, self.th)) for i, rec in enumerate(recs) if rec.lon is not None and rec.lat is not None]
        found: dict[int, list[tuple[str, str, str, float, float]]] = {}
        if placed:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS match_boxes"
                         " (i INTEGER PRIMARY KEY, min_lon REAL, max_lon REAL, min_lat REAL, max_lat REAL)")
            conn.execute("DELETE FROM temp.match_boxes")
            conn.executemany("INSERT INTO temp.match_boxes VALUES (?, ?, ?, ?, ?)", placed)
            # Candidates decide() would turn down whatever their names (no shared category
            # family, farther than the distance) are dropped here, before anything is looked up
            # for them: in a dense store most boxes hold a dozen places of other kinds.
            kinds: dict[str, tuple[list[str], set[str]]] = {}  # categories text -> (parsed, families)
            wanted: dict[int, set[str]] = {}  # record -> its families
            for i, fid, name, cats, lon, lat in conn.execute(
                "SELECT b.i, f.id, f.name, f.categories, f.lon, f.lat FROM temp.match_boxes b"
                " JOIN facilities_rtree r ON r.min_lon <= b.max_lon AND r.max_lon >= b.min_lon"
                " AND r.min_lat <= b.max_lat AND r.max_lat >= b.min_lat"
                " JOIN facilities f ON f.rid = r.rid WHERE f.status != 'removed' ORDER BY b.i"):
                if cats not in kinds:
                    parsed = json.loads(cats)
                    kinds[cats] = (parsed, families(parsed))
                rec = recs[i]
                if i not in wanted:
                    wanted[i] = families(rec.categories)
                if not kinds[cats][1] & wanted[i]:
                    continue
                if distance_m(rec.lon, rec.lat, lon, lat) > self.th.distance_m:
                    continue
                found.setdefault(i, []).append((fid, name, cats, lon, lat))
            conn.execute("DELETE FROM temp.match_boxes")
        names: dict[str, list[str]] = {}
        ids = sorted({c[0] for cands in found.values() for c in cands})
        if ids:
            # Places another live record of this source already holds are no candidates.
            taken = {r[0] for r in conn.execute(
                "SELECT DISTINCT facility_id FROM source_records WHERE source = ? AND removed_at IS NULL"
                " AND facility_id IN (SELECT value FROM json_each(?))", (recs[0].source, json.dumps(ids)))}
            if taken:
                found = {i: kept for i, cands in found.items() if (kept := [c for c in cands if c[0] not in taken])}
                ids = [fid for fid in ids if fid not in taken]
            for fid, data in conn.execute(
                "SELECT facility_id, data FROM source_records WHERE removed_at IS NULL"
                " AND facility_id IN (SELECT value FROM json_each(?)) ORDER BY facility_id, rowid",
                (json.dumps(ids),),
            ):
                names.setdefault(fid, []).append(json.loads(data).get("name") or "")
        return BatchMatch(self.th, recs, found, names)


class BatchMatch:
    """The answers of Matcher.batch, record by record (see there)."""

    def __init__(self, th: Thresholds, recs: list[Facility], found: dict[int, list[tuple]],
                 names: dict[str, list[str]]) -> None:
        self.th, self.found, self.names = th, found, names
        self.index = {id(rec): i for i, rec in enumerate(recs)}
        self.taken: set[str] = set()

    def took(self, facility_id: str) -> None:
        self.taken.add(facility_id)

    def __call__(self, rec: Facility) -> Match | None:
        rows = self.found.get(self.index[id(rec)])
        if not rows:
            return None
        candidates = [
            (fid, {name} | set(self.names.get(fid, ())), {"lon": lon, "lat": lat, "categories": json.loads(cats)})
            for fid, name, cats, lon, lat in rows if fid not in self.taken
        ]
        return _best(rec, candidates, self.th)


def make_matcher(th: Thresholds) -> Matcher:
    """The conflation matcher for `directory.sync.apply_records` (see Matcher)."""
    return Matcher(th)


# --- merging -------------------------------------------------------------------------------

REGISTRY_FIRST = ("name", "address", "operator", "sector", "status")
# extra keys that describe the sector (directory/sectors.py): taken from the sector's record.
SECTOR_EXTRA = ("sector_detail", "sector_source", "sector_evidence")
OSM_FIRST = ("position", "opening_hours")


def _is_osm(rec: Mapping[str, Any]) -> bool:
    return rec["source"] == OSM


def merge(records: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge the live records of one facility (each a Facility.content() dict, oldest link
    first) into one set of facility values, and list the fields on which the sources disagree.

    A record of the source `contributions` that carries corrections (approved suggestions and
    editors' edits, see `CORRECTION_KEY`) is not merged like a source: the other records are
    merged first, then each corrected field is decided by `apply_corrections`. A contributions
    record without corrections (a place a parent added) is a source like any register.
    """
    corrections = [r for r in records if r["source"] == CONTRIBUTIONS and (r.get("extra") or {}).get(CORRECTION_KEY)]
    base = [r for r in records if not (r["source"] == CONTRIBUTIONS and (r.get("extra") or {}).get(CORRECTION_KEY))]
    if not base:  # every other source is gone: the corrected record describes the place alone
        base = [{**r, "extra": {k: v for k, v in (r.get("extra") or {}).items() if k != CORRECTION_KEY}}
                for r in corrections]
        corrections = []
    out, conflicts = _merge_sources(base)
    for rec in corrections:
        apply_corrections(out, conflicts, rec, base)
        if rec.get("last_verified") and (out["last_verified"] is None or rec["last_verified"] > out["last_verified"]):
            out["last_verified"] = rec["last_verified"]
        if rec.get("licence") and rec["licence"] not in out["licence"].split("; "):
            out["licence"] = "; ".join(x for x in (out["licence"], rec["licence"]) if x)
    return out, conflicts


# --- corrections (issue 11) ----------------------------------------------------------------
#
# An approved correction wins over every other source for the fields it touched, until one of
# those sources changes its own value for that field; from then on that source's new value is
# shown and the correction is kept beside it as a conflict. While the correction wins, a source
# that disagrees is listed as a conflict too (a place reported closed that OpenStreetMap still
# says is open shows both). docs/contributions.md explains it with examples.

CONTRIBUTIONS = "contributions"
CORRECTION_KEY = "_corrections"  # in a contributions record's extra: {"touched": {...}, "basis": {...}}


def field_value(rec: Mapping[str, Any], fieldname: str) -> Any:
    """A record's value for a conflict-style field name ("position", "features.wheelchair", "status")."""
    if fieldname == "position":
        return None if rec.get("lon") is None else [rec["lon"], rec["lat"]]
    if fieldname.startswith("features."):
        return (rec.get("features") or {}).get(fieldname.split(".", 1)[1])
    value = rec.get(fieldname)
    return None if value in ("", "unknown") and fieldname in ("sector", "status", "opening_hours", "operator") else value


def basis_of(records: list[Mapping[str, Any]], fieldname: str) -> dict[str, Any]:
    """Each source's value for a field as a correction is made: what "changed again" compares with."""
    return {f"{r['source']}:{r['source_id']}": field_value(r, fieldname) for r in records if r["source"] != CONTRIBUTIONS}


def apply_corrections(out: dict[str, Any], conflicts: list[dict[str, Any]], rec: Mapping[str, Any],
                      base: list[dict[str, Any]]) -> None:
    """Decide each field the correction `rec` touched (in place on `out` and `conflicts`)."""
    meta = rec["extra"][CORRECTION_KEY]
    mine = f"{rec['source']}:{rec['source_id']}"
    for fieldname, value in meta.get("touched", {}).items():
        basis = meta.get("basis", {}).get(fieldname, {})
        current = {f"{r['source']}:{r['source_id']}": field_value(r, fieldname) for r in base}
        changed = sorted(k for k, v in current.items() if v != basis.get(k))
        conflicts[:] = [c for c in conflicts if c["field"] != fieldname]
        if changed:  # a source said something new since: it is shown, the correction kept beside it
            chosen = out["features"].get(fieldname[9:]) if fieldname.startswith("features.") else (
                [out["lon"], out["lat"]] if fieldname == "position" else out.get(fieldname))
        else:
            chosen = value
            if fieldname == "position":
                out["lon"], out["lat"] = value
                out["_position_from"] = mine
            elif fieldname.startswith("features."):
                if value is None:
                    out["features"].pop(fieldname[9:], None)
                else:
                    out["features"][fieldname[9:]] = value
            else:
                out[fieldname] = value
        values = {k: v for k, v in current.items() if v is not None}
        values[mine] = value
        if len({json.dumps(v, sort_keys=True, ensure_ascii=False) for v in values.values()}) > 1:
            conflicts.append({"field": fieldname, "values": values, "chosen": chosen,
                              "correction": "superseded" if changed else "kept",
                              **({"changed_by": changed} if changed else {})})


def _merge_sources(records: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    registry = [r for r in records if not _is_osm(r)]
    osm = [r for r in records if _is_osm(r)]
    reg_first, osm_first = registry + osm, osm + registry
    out: dict[str, Any] = {}
    conflicts: list[dict[str, Any]] = []

    def label(r: Mapping[str, Any]) -> str:
        return f"{r['source']}:{r['source_id']}"

    def pick(fieldname: str, order: list[dict[str, Any]], get, empty=(None, "")) -> Any:
        values = [(label(r), get(r)) for r in order]
        present = [(k, v) for k, v in values if v not in empty]
        chosen = present[0][1] if present else get(order[0])
        distinct = {json.dumps(v, sort_keys=True, ensure_ascii=False) for _, v in present}
        if len(distinct) > 1:
            conflicts.append({"field": fieldname, "values": dict(present), "chosen": chosen})
        return chosen

    for f in REGISTRY_FIRST:
        empty = (None, "", "unknown") if f in ("sector", "status") else (None, "")
        out[f] = pick(f, reg_first, lambda r, f=f: r.get(f), empty)
    out["opening_hours"] = pick("opening_hours", osm_first, lambda r: r.get("opening_hours"))
    positioned = [r for r in osm_first if r.get("lon") is not None]
    src = positioned[0] if positioned else osm_first[0]
    out["lon"], out["lat"] = src.get("lon"), src.get("lat")
    out["_position_from"] = label(src)
    if len(positioned) > 1:
        far = max(distance_m(src["lon"], src["lat"], r["lon"], r["lat"]) for r in positioned[1:])
        if far > 1.0:
            conflicts.append({
                "field": "position", "values": {label(r): [r["lon"], r["lat"]] for r in positioned},
                "chosen": [src["lon"], src["lat"]], "distance_m": round(far, 1),
            })
    features: dict[str, str] = {}
    for name in sorted({k for r in records for k in (r.get("features") or {})}):
        features[name] = pick(f"features.{name}", osm_first, lambda r, n=name: (r.get("features") or {}).get(n))
    out["features"] = features
    out["categories"] = sorted({c for r in records for c in r.get("categories") or []})
    verified = [r.get("last_verified") for r in records if r.get("last_verified")]
    out["last_verified"] = max(verified) if verified else None
    licences: list[str] = []
    for r in reg_first:
        if r.get("licence") and r["licence"] not in licences:
            licences.append(r["licence"])
    out["licence"] = "; ".join(licences)
    extra: dict[str, Any] = {}
    for r in reversed(reg_first):  # registry keys win: applied last
        extra.update(r.get("extra") or {})
    # The sector's finer value and provenance travel with the sector: from the record whose
    # sector was chosen (an OSM operator:type when the register says nothing), never mixed.
    for key in SECTOR_EXTRA:
        extra.pop(key, None)
    decided = next((r for r in reg_first if r.get("sector") not in (None, "", "unknown")), None)
    if decided is not None:
        extra.update({k: v for k, v in (decided.get("extra") or {}).items() if k in SECTOR_EXTRA})
    out["extra"] = extra
    return out, conflicts


def thresholds_from(settings: Any) -> Thresholds:
    """The conflation thresholds of a directory.config.Settings."""
    return Thresholds(distance_m=settings.conflate_distance_m, name_score=settings.conflate_name_score)
