"""Contributions: parents suggest, editors approve or correct, and every change is one source run.

Three kinds of public suggestion (no account needed), each stored PENDING in the private store
(`directory.private_store`; the public store is published whole, so personal data never goes
there) until an editor decides:

- `add_place`: a new place (point, category, name, features, hours, note);
- `report_problem`: closed, moved, wrong hours, a feature is wrong, not accessible, with the
  proposed correction;
- `still_here`: a confirmation that the place is still there (feeds `last_verified`).

An approved suggestion and an editor's direct edit take the same path as any ingest: a run of
the source `contributions` through `directory.sync.apply_records` (full=False) on a writer
connection to the public store, then `directory.derived.refresh_derived`. Provenance, the change
log, /changes, snapshots, the map grid and the audit all follow. The run's `actor` is a role
("public suggestion, approved by editor, Vilniaus m. sav."), never a name or an email.

How a correction competes with the other sources (it wins for the fields it touched until one of
them changes its own value) is `directory.conflate.apply_corrections`; docs/contributions.md.

A contact email is optional, never published, never shown in the moderation queue (only that
one was given), and deleted `contact_retention_days` after the suggestion (`purge_contacts`,
called by every moderation action and by `atvira contributions purge`).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import clock, hours
from .accounts import User, require_edit, role_label
from .conflate import CONTRIBUTIONS, CORRECTION_KEY, Match, basis_of, field_value
from .errors import BadRequest, Conflict, NotFound
from .model import CATEGORIES, FEATURE_VALUES, FEATURES, SECTORS, Facility, check_coordinates, make_facility_id
from .store import transaction
from .sync import IngestReport, Locator, apply_records

SOURCE = CONTRIBUTIONS
# Contributions are published under the dataset's open licence (the form says so; the
# contributor must agree). The published store contains OpenStreetMap data, so ODbL.
CONTRIBUTION_LICENCE = "ODbL-1.0"

KINDS = ("add_place", "report_problem", "still_here")
PROBLEMS: dict[str, str] = {
    "closed": "Closed for good",
    "moved": "Moved elsewhere",
    "wrong_hours": "Wrong opening hours",
    "feature_wrong": "A feature is wrong",
    "not_accessible": "Not accessible",
}
# The features a parent may set on the forms (the others are editors' business).
FORM_FEATURES = ("changing_table", "feeding_room", "free", "pram_access", "play_corner", "wheelchair")
# The fields an editor edits directly (features.* and the checklist points are features).
EDIT_STATUSES = ("active", "closed", "unknown")

MAX_NAME = 200
MAX_NOTE = 2000
MAX_HOURS = 255
MAX_EMAIL = 254
MAX_REASON = 1000
MAX_OPERATOR = 300
PAGE_LIMIT = 50

_EMAIL = re.compile(r"[^@\s<>\"']{1,64}@[^@\s<>\"']+\.[^@\s<>\"']{2,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A cell a spreadsheet would run: =..., +..., @..., or -followed by a formula-ish character.
_FORMULA = re.compile(r"^\s*([=+@]|-[A-Za-z(])")
_TAG = re.compile(r"[<>]")


class InvalidSubmission(BadRequest):
    """A submission or edit with one or more problems; each names its field (nothing is stored)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems), where=problems[0][0])

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "problems": [{"field": f, "message": m} for f, m in self.problems]}


@dataclass(kw_only=True)
class Submission:
    """What a parent sent (the form and Open311 both build one); raw values, checked by `submit`."""

    kind: str
    facility_id: str | None = None
    problem: str | None = None
    name: str = ""
    category: str = ""
    lon: Any = None
    lat: Any = None
    features: Mapping[str, str] = field(default_factory=dict)
    opening_hours: str = ""
    note: str = ""
    email: str = ""
    licence_agreed: bool = False
    honeypot: str = ""
    via: str = "form"


def check_text(value: Any, *, name: str, limit: int, problems: list[tuple[str, str]],
               required: bool = False) -> str:
    """Plain text, stripped: refuses control characters, HTML (< or >), spreadsheet formulas and
    text over `limit` characters. Returns "" (and notes the problem) when it is refused."""
    text = "" if value is None else str(value).strip()
    if required and not text:
        problems.append((name, "required"))
    elif len(text) > limit:
        problems.append((name, f"{len(text):,} characters, at most {limit:,} allowed"))
    elif _CONTROL.search(text):
        problems.append((name, "contains control characters"))
    elif _TAG.search(text):
        problems.append((name, "contains < or >: plain text only, no HTML"))
    elif _FORMULA.match(text):
        problems.append((name, "starts like a spreadsheet formula (=, +, -, @): plain text only"))
    else:
        return text
    return ""


def _check_features(raw: Mapping[str, Any], *, allowed: tuple[str, ...] | None,
                    problems: list[tuple[str, str]], unknown_ok: bool = False) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, value in raw.items():
        value = (value or "").strip() if isinstance(value, str) else value
        if key not in FEATURES or (allowed is not None and key not in allowed):
            problems.append((f"features.{str(key)[:40]}", f"unknown feature; known are {', '.join(allowed or FEATURES)}"))
        elif value in ("", None, "unknown") and unknown_ok:
            out[key] = None
        elif value not in FEATURE_VALUES:
            problems.append((f"features.{key}", f"{str(value)[:40]!r} is not one of {', '.join(FEATURE_VALUES)}"))
        else:
            out[key] = value
    return out


def _check_hours(value: Any, *, problems: list[tuple[str, str]], required: bool = False) -> str:
    text = check_text(value, name="opening_hours", limit=MAX_HOURS, problems=problems, required=required)
    if text and hours.parse(text) is None:
        problems.append(("opening_hours", f"cannot read {text[:60]!r}; use the OpenStreetMap form, e.g. Mo-Fr 08:00-17:00"))
        return ""
    return text


def _check_point(lon: Any, lat: Any, *, locator: Locator, problems: list[tuple[str, str]]) -> tuple[list[float], str | None]:
    if lon in (None, "") or lat in (None, ""):
        problems.append(("position", "pick the place on the map (longitude and latitude are required)"))
        return [], None
    checked = check_coordinates(lon, lat)
    if isinstance(checked, str):
        problems.append(("position", checked))
        return [], None
    municipality, _eldership = locator.locate(*checked) if not locator.is_empty else (None, None)
    if municipality is None:
        problems.append(("position", f"({checked[0]:.5f}, {checked[1]:.5f}) is outside every loaded area"))
        return [], None
    return [round(checked[0], 7), round(checked[1], 7)], municipality


def live_facility(public: sqlite3.Connection, facility_id: Any) -> sqlite3.Row:
    """The facility a suggestion or edit is about (NotFound when there is none or it is removed)."""
    fid = "" if facility_id is None else str(facility_id)
    row = public.execute("SELECT * FROM facilities WHERE id = ? AND status != 'removed'", (fid[:200],)).fetchone()
    if row is None:
        raise NotFound(f"no facility with id {fid[:80]!r}", where="facility_id")
    return row


def validate_submission(public: sqlite3.Connection, sub: Submission, *, locator: Locator
                        ) -> tuple[str | None, str | None, dict[str, Any], str, str | None]:
    """(facility_id, municipality_code, proposed fields, note, email) of a valid submission, or
    InvalidSubmission listing every problem (NotFound for an unknown facility)."""
    problems: list[tuple[str, str]] = []
    if sub.honeypot:
        # Invisible to people (CSS and aria-hidden), filled by form robots.
        raise InvalidSubmission([("website", "this field must stay empty (it is a trap for robots)")])
    if sub.kind not in KINDS:
        raise InvalidSubmission([("kind", f"{str(sub.kind)[:40]!r} is not one of {', '.join(KINDS)}")])
    if not sub.licence_agreed:
        problems.append(("licence", f"you must agree to publish your contribution under {CONTRIBUTION_LICENCE}"))
    note = check_text(sub.note, name="note", limit=MAX_NOTE, problems=problems)
    email = check_text(sub.email, name="email", limit=MAX_EMAIL, problems=problems)
    if email and not _EMAIL.fullmatch(email):
        problems.append(("email", "not an email address (or leave it empty)"))
        email = ""
    proposed: dict[str, Any] = {}
    facility_id = municipality = None
    if sub.kind == "add_place":
        name = check_text(sub.name, name="name", limit=MAX_NAME, problems=problems, required=True)
        if sub.category not in CATEGORIES:
            problems.append(("category", f"{str(sub.category)[:40]!r} is not one of {', '.join(CATEGORIES)}"))
        position, municipality = _check_point(sub.lon, sub.lat, locator=locator, problems=problems)
        features = _check_features(sub.features, allowed=FORM_FEATURES, problems=problems)
        opening = _check_hours(sub.opening_hours, problems=problems)
        proposed = {"name": name, "categories": [sub.category], "position": position,
                    **{f"features.{k}": v for k, v in features.items()}}
        if opening:
            proposed["opening_hours"] = opening
    else:
        fac = live_facility(public, sub.facility_id)
        facility_id, municipality = fac["id"], fac["municipality_code"]
        if sub.kind == "still_here":
            proposed = {"last_verified": clock.now().date().isoformat()}
        elif sub.problem not in PROBLEMS:
            problems.append(("problem", f"{str(sub.problem)[:40]!r} is not one of {', '.join(PROBLEMS)}"))
        elif sub.problem == "closed":
            proposed = {"status": "closed"}
        elif sub.problem == "moved":
            position, _m = _check_point(sub.lon, sub.lat, locator=locator, problems=problems)
            proposed = {"position": position}
        elif sub.problem == "wrong_hours":
            proposed = {"opening_hours": _check_hours(sub.opening_hours, problems=problems, required=True)}
        else:
            features = _check_features(sub.features, allowed=FORM_FEATURES, problems=problems)
            if sub.problem == "not_accessible":
                features.setdefault("wheelchair", "no")
            if not features:
                problems.append(("features", "say which feature is wrong and what it should be"))
            proposed = {f"features.{k}": v for k, v in features.items()}
    if problems:
        raise InvalidSubmission(problems)
    return facility_id, municipality, proposed, note, email or None


def submit(private: sqlite3.Connection, public: sqlite3.Connection, sub: Submission, *, locator: Locator,
           now: datetime | None = None) -> int:
    """Check a suggestion and store it PENDING in the private store; returns its id.

    `public` is only read (the facility concerned). Nothing public changes until `approve`.
    """
    facility_id, municipality, proposed, note, email = validate_submission(public, sub, locator=locator)
    with transaction(private):
        cur = private.execute(
            "INSERT INTO contributions(kind, problem, facility_id, municipality_code, proposed, note, email, via,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sub.kind, sub.problem if sub.kind == "report_problem" else None, facility_id, municipality,
             json.dumps(proposed, ensure_ascii=False), note, email, sub.via if sub.via in ("form", "open311") else "form",
             clock.stamp(now)),
        )
    return int(cur.lastrowid)


# --- the moderation queue ------------------------------------------------------------------------

def _scope(user: User) -> tuple[str, list[Any]]:
    if user.is_admin:
        return "", []
    codes = list(user.municipalities)
    return f" AND municipality_code IN ({', '.join('?' * len(codes))})", codes


def _current(public: sqlite3.Connection, facility_id: str | None, proposed: Mapping[str, Any]) -> dict[str, Any]:
    if facility_id is None:
        return {}
    row = public.execute("SELECT * FROM facilities WHERE id = ?", (facility_id,)).fetchone()
    if row is None:
        return {}
    fac = _as_record(row)
    return {k: field_value(fac, k) for k in proposed}


def _item(row: sqlite3.Row, public: sqlite3.Connection) -> dict[str, Any]:
    proposed = json.loads(row["proposed"])
    name = None
    if row["facility_id"]:
        fac = public.execute("SELECT name FROM facilities WHERE id = ?", (row["facility_id"],)).fetchone()
        name = fac["name"] if fac else None
    return {
        "id": row["id"], "kind": row["kind"], "problem": row["problem"], "facility_id": row["facility_id"],
        "facility_name": name if row["kind"] != "add_place" else proposed.get("name"),
        "municipality_code": row["municipality_code"], "created_at": row["created_at"], "status": row["status"],
        "proposed": proposed, "current": _current(public, row["facility_id"], proposed) if row["kind"] != "add_place"
        else {}, "note": row["note"], "has_contact": row["email"] is not None, "via": row["via"],
        "decided_at": row["decided_at"], "decided_by": row["decided_by"], "reason": row["reason"],
    }


def list_pending(private: sqlite3.Connection, *, public: sqlite3.Connection, user: User, limit: int = PAGE_LIMIT,
                 after: int | None = None) -> dict[str, Any]:
    """The pending suggestions in the user's municipalities, newest first, each with the
    facility's current values beside the proposed ones. Keyset paged: `next_after` (or None)."""
    where, params = _scope(user)
    if after is not None:
        where += " AND id < ?"
        params.append(int(after))
    rows = private.execute(
        f"SELECT * FROM contributions WHERE status = 'pending'{where} ORDER BY id DESC LIMIT ?", (*params, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_item(r, public) for r in rows], "next_after": rows[-1]["id"] if more and rows else None}


def get_contribution(private: sqlite3.Connection, contribution_id: Any) -> sqlite3.Row:
    try:
        cid = int(str(contribution_id))
    except ValueError:
        raise BadRequest(f"not a contribution id: {str(contribution_id)[:40]!r}", where="id") from None
    # An id past SQLite's integer range cannot exist (and would overflow the binding).
    row = (private.execute("SELECT * FROM contributions WHERE id = ?", (cid,)).fetchone()
           if 0 < cid < 2**63 else None)
    if row is None:
        raise NotFound(f"no contribution {str(cid)[:40]}", where="id")
    return row


def show(private: sqlite3.Connection, contribution_id: Any, *, public: sqlite3.Connection, user: User) -> dict[str, Any]:
    """One contribution for the moderation page (403 outside the user's municipalities)."""
    row = get_contribution(private, contribution_id)
    require_edit(user, row["municipality_code"], what=f"contribution {row['id']}")
    return _item(row, public)


# --- applying changes: one run of the source `contributions` ----------------------------------------

def _as_record(row: sqlite3.Row) -> dict[str, Any]:
    """A facilities row as a Facility.content()-like dict (what merge and field_value read)."""
    d = {k: row[k] for k in row.keys()}
    for key in ("categories", "features", "extra"):
        if isinstance(d.get(key), str):
            d[key] = json.loads(d[key])
    return d


def _set(rec: dict[str, Any], fieldname: str, value: Any) -> None:
    if fieldname == "position":
        rec["lon"], rec["lat"] = (value or [None, None])
    elif fieldname.startswith("features."):
        feats = dict(rec.get("features") or {})
        if value is None:
            feats.pop(fieldname[9:], None)
        else:
            feats[fieldname[9:]] = value
        rec["features"] = feats
    else:
        rec[fieldname] = value


def _facility(sid: str, rec: Mapping[str, Any], *, fetched_at: str) -> Facility:
    return Facility(
        source=SOURCE, source_id=sid, name=rec.get("name") or "", categories=list(rec.get("categories") or []),
        lon=rec.get("lon"), lat=rec.get("lat"), licence=CONTRIBUTION_LICENCE, address=rec.get("address"),
        operator=rec.get("operator"), sector=rec.get("sector") or "unknown", features=dict(rec.get("features") or {}),
        opening_hours=rec.get("opening_hours"), status=rec.get("status") or "active",
        last_verified=rec.get("last_verified"), fetched_at=fetched_at, extra=dict(rec.get("extra") or {}),
    )


def correction_record(public: sqlite3.Connection, facility_id: str, fields: Mapping[str, Any], *,
                      now: str) -> Facility:
    """The `contributions` source record of a facility with `fields` corrected.

    One record per facility: the first correction creates it (source_id = the facility id), later
    ones update it. When other sources describe the place, the record carries the touched fields
    and each source's value at the time (the basis `apply_corrections` compares with); when only
    contributions describe it (a place a parent added), the record simply holds the values.
    """
    row = live_facility(public, facility_id)
    live = public.execute(
        "SELECT source, source_id, data FROM source_records WHERE facility_id = ? AND removed_at IS NULL ORDER BY rowid",
        (facility_id,),
    ).fetchall()
    mine = next((r for r in live if r["source"] == SOURCE), None)
    others = [json.loads(r["data"]) for r in live if r["source"] != SOURCE]
    sid = mine["source_id"] if mine else facility_id
    last_verified = fields.get("last_verified")
    corrected = {k: v for k, v in fields.items() if k != "last_verified"}
    if others:
        rec = _as_record(row)
        old = json.loads(mine["data"]) if mine else {}
        meta = json.loads(json.dumps((old.get("extra") or {}).get(CORRECTION_KEY) or {"touched": {}, "basis": {}}))
        for key, value in corrected.items():
            meta["touched"][key] = value
            meta["basis"][key] = basis_of(others, key)
        for key, value in meta["touched"].items():
            _set(rec, key, value)
        rec["extra"] = {CORRECTION_KEY: meta}
        rec["last_verified"] = last_verified or old.get("last_verified")
    else:
        rec = json.loads(mine["data"]) if mine else _as_record(row)
        for key, value in corrected.items():
            _set(rec, key, value)
        if last_verified:
            rec["last_verified"] = last_verified
    return _facility(sid, rec, fetched_at=now)


def apply_change(public: sqlite3.Connection, record: Facility, *, facility_id: str | None, actor: str,
                 locator: Locator | None, now: str) -> IngestReport:
    """Apply one contributions record as a run (writer connection; no derived refresh here)."""
    matcher = None
    if facility_id is not None:
        def matcher(_conn: sqlite3.Connection, _rec: Facility) -> Match:
            return Match(facility_id, {"why": "a correction of this place", "at": now})
    report = apply_records(public, [record], source=SOURCE, scope=SOURCE, locator=locator, full=False,
                           matcher=matcher, now=now, actor=actor)
    if report.rejected:
        raise InvalidSubmission([("record", r.reason) for r in report.rejected])
    return report


@dataclass
class Decision:
    id: int
    status: str
    facility_id: str | None
    actor: str | None = None
    report: IngestReport | None = None


def _decidable(private: sqlite3.Connection, contribution_id: Any, user: User) -> sqlite3.Row:
    row = get_contribution(private, contribution_id)
    require_edit(user, row["municipality_code"], what=f"contribution {row['id']}")
    if row["status"] != "pending":
        raise Conflict(f"contribution {row['id']} was already {row['status']} at {row['decided_at']}"
                       f" by {row['decided_by']}; nothing was changed", where="id")
    return row


def approve(private: sqlite3.Connection, public: sqlite3.Connection, contribution_id: Any, *, user: User,
            names: Mapping[str, str] | Callable[[str], str | None], locator: Locator | None,
            now: datetime | None = None) -> Decision:
    """Apply a pending suggestion to the public store (a `contributions` run) and mark it approved.

    The private row is locked (BEGIN IMMEDIATE) from the check to the mark, so two editors (or a
    replayed form) cannot apply one suggestion twice: the second gets Conflict, store unchanged.
    The caller refreshes the derived data afterwards (`refresh_derived`).
    """
    stamp = clock.stamp(now)
    with transaction(private):
        row = _decidable(private, contribution_id, user)
        proposed = json.loads(row["proposed"])
        role = role_label(user, names, municipality=row["municipality_code"])
        actor = f"public suggestion, approved by {role}"
        if row["kind"] == "add_place":
            rec: dict[str, Any] = {"status": "active", "last_verified": stamp[:10]}
            for key, value in proposed.items():
                _set(rec, key, value)
            record = _facility(f"c{row['id']}", rec, fetched_at=stamp)
            report = apply_change(public, record, facility_id=None, actor=actor, locator=locator, now=stamp)
            facility_id = make_facility_id(SOURCE, record.source_id)
        else:
            facility_id = row["facility_id"]
            live_facility(public, facility_id)
            fields = dict(proposed)
            fields.setdefault("last_verified", stamp[:10])  # an editor checked it now
            record = correction_record(public, facility_id, fields, now=stamp)
            report = apply_change(public, record, facility_id=facility_id, actor=actor, locator=locator, now=stamp)
        private.execute(
            "UPDATE contributions SET status = 'approved', decided_at = ?, decided_by = ?, facility_id = ?, run_id = ?"
            " WHERE id = ?", (stamp, role, facility_id, report.run_id, row["id"]))
    return Decision(row["id"], "approved", facility_id, actor, report)


def reject(private: sqlite3.Connection, contribution_id: Any, *, user: User, reason: str,
           names: Mapping[str, str] | Callable[[str], str | None], now: datetime | None = None) -> Decision:
    """Refuse a pending suggestion with a reason (shown as Open311 status_notes). Public store untouched."""
    problems: list[tuple[str, str]] = []
    text = check_text(reason, name="reason", limit=MAX_REASON, problems=problems, required=True)
    with transaction(private):
        row = _decidable(private, contribution_id, user)
        if problems:
            raise InvalidSubmission(problems)
        role = role_label(user, names, municipality=row["municipality_code"])
        private.execute("UPDATE contributions SET status = 'rejected', decided_at = ?, decided_by = ?, reason = ?"
                        " WHERE id = ?", (clock.stamp(now), role, text, row["id"]))
    return Decision(row["id"], "rejected", row["facility_id"])


def purge_contacts(private: sqlite3.Connection, *, days: int, now: datetime | None = None) -> int:
    """Delete the contact emails older than `days` days; returns how many were deleted."""
    cutoff = clock.stamp((now or clock.now()) - timedelta(days=days))
    with transaction(private):
        cur = private.execute("UPDATE contributions SET email = NULL WHERE email IS NOT NULL AND created_at < ?",
                              (cutoff,))
    return cur.rowcount


# --- editors' direct edits ----------------------------------------------------------------------

def validate_edit(row: sqlite3.Row, form: Mapping[str, Any]) -> dict[str, Any]:
    """The fields an edit changes (only those that differ from the current values), or
    InvalidSubmission. Keys: opening_hours, sector, operator, status, features.<name>."""
    problems: list[tuple[str, str]] = []
    current = _as_record(row)
    wanted: dict[str, Any] = {}
    if "opening_hours" in form:
        wanted["opening_hours"] = _check_hours(form["opening_hours"], problems=problems) or None
    if "operator" in form:
        wanted["operator"] = check_text(form["operator"], name="operator", limit=MAX_OPERATOR, problems=problems) or None
    if "sector" in form:
        if form["sector"] not in SECTORS:
            problems.append(("sector", f"{str(form['sector'])[:40]!r} is not one of {', '.join(SECTORS)}"))
        else:
            wanted["sector"] = form["sector"]
    if "status" in form:
        if form["status"] not in EDIT_STATUSES:
            problems.append(("status", f"{str(form['status'])[:40]!r} is not one of {', '.join(EDIT_STATUSES)}"))
        else:
            wanted["status"] = form["status"]
    feats = {k[9:]: v for k, v in form.items() if k.startswith("features.")}
    for key, value in _check_features(feats, allowed=None, problems=problems, unknown_ok=True).items():
        wanted[f"features.{key}"] = value
    unknown = [k for k in form if k not in ("opening_hours", "operator", "sector", "status") and not k.startswith("features.")]
    for key in unknown:
        problems.append((str(key)[:40], "not a field an editor can change here"))
    if problems:
        raise InvalidSubmission(problems)
    norm = {"sector": "unknown"}
    return {k: v for k, v in wanted.items()
            if (field_value(current, k) or norm.get(k)) != (v or norm.get(k))}


def edit_facility(public: sqlite3.Connection, facility_id: Any, form: Mapping[str, Any], *, user: User,
                  names: Mapping[str, str] | Callable[[str], str | None], locator: Locator | None,
                  now: datetime | None = None) -> Decision:
    """An editor's direct edit of a facility in their municipality, applied as a contributions run.

    403 (PermissionDenied) outside the editor's municipalities, before anything is read from the
    form; an edit that changes nothing writes nothing.
    """
    row = live_facility(public, facility_id)
    require_edit(user, row["municipality_code"], what=f"facility {row['id']}")
    fields = validate_edit(row, form)
    if not fields:
        return Decision(0, "unchanged", row["id"])
    stamp = clock.stamp(now)
    actor = role_label(user, names, municipality=row["municipality_code"])
    fields["last_verified"] = stamp[:10]
    record = correction_record(public, row["id"], fields, now=stamp)
    report = apply_change(public, record, facility_id=row["id"], actor=actor, locator=locator, now=stamp)
    return Decision(0, "edited", row["id"], actor, report)


# --- public view (Open311) ------------------------------------------------------------------------

def list_public(private: sqlite3.Connection, *, limit: int = 100, after: int | None = None,
                status: str | None = None) -> list[sqlite3.Row]:
    """Contributions newest first for the Open311 list (the caller picks the public fields)."""
    where, params = "", []
    if status == "open":
        where = " AND status = 'pending'"
    elif status == "closed":
        where = " AND status != 'pending'"
    if after is not None:
        where += " AND id < ?"
        params.append(after)
    return private.execute(f"SELECT * FROM contributions WHERE 1 = 1{where} ORDER BY id DESC LIMIT ?",
                           (*params, limit)).fetchall()
