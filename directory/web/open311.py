"""Open311 GeoReport v2, so municipal systems and Open311 clients can read and send suggestions.

- GET  /open311/v2/services.json, /open311/v2/services/<code>.json (the attributes a service needs)
- GET  /open311/v2/requests.json (filters: service_request_id, service_code, status, start_date,
       end_date) and /open311/v2/requests/<id>.json: public fields only, never an email;
- POST /open311/v2/requests.json (form-encoded, as the spec says) creates a PENDING contribution,
       rate-limited with the forms (`submission_limit`); exempt from CSRF (machine clients carry
       no browser session; the rate limit and the same validation guard it).

Errors are answered in the spec's shape: [{"code": 400, "description": "..."}].
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request

from .. import contributions as core
from ..accounts import municipality_names
from ..errors import AtviraError, BadRequest
from ..model import CATEGORIES
from .context import private_db, reader
from .contribute import locator_for
from .limits import limiter, submission_limit

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

# service_code -> (kind, problem, name, description)
SERVICES: dict[str, tuple[str, str | None, str, str]] = {
    "add_place": ("add_place", None, "Add a place",
                  "A place for families missing from the map (needs lat, long, attribute[category], attribute[name])."),
    "closed": ("report_problem", "closed", "Closed for good", "The place has closed (needs attribute[facility_id])."),
    "moved": ("report_problem", "moved", "Moved elsewhere",
              "The place moved: lat and long give where it is now (needs attribute[facility_id])."),
    "wrong_hours": ("report_problem", "wrong_hours", "Wrong opening hours",
                    "attribute[opening_hours] gives the right hours (OpenStreetMap syntax)."),
    "feature_wrong": ("report_problem", "feature_wrong", "A feature is wrong",
                      "attribute[feature.<name>] = yes|limited|no for each wrong feature."),
    "not_accessible": ("report_problem", "not_accessible", "Not accessible",
                       "Not accessible by wheelchair (or pram: attribute[feature.pram_access] = no)."),
    "still_here": ("still_here", None, "Still here", "The place is still there as described."),
}
GROUP = "Atvira"
LICENCE_NOTE = (f"Submissions are published under {core.CONTRIBUTION_LICENCE} once an editor approves them;"
                " attribute[licence]=yes says you agree. An email, if given, is never published.")


class Open311Error(AtviraError):
    """Carried through to the spec's error shape."""


@bp.errorhandler(AtviraError)
def spec_error(exc: AtviraError):
    named = exc.where is None or exc.message.startswith(f"{exc.where}:")
    description = exc.message if named else f"{exc.where}: {exc.message}"
    return jsonify([{"code": exc.status, "description": description}]), exc.status


def _service_json(code: str) -> dict[str, Any]:
    kind, _problem, name, description = SERVICES[code]
    return {"service_code": code, "service_name": name, "description": f"{description} {LICENCE_NOTE}",
            "metadata": True, "type": "batch", "keywords": kind, "group": GROUP}


def _attribute(code: str, name: str, description: str, *, required: bool, datatype: str = "string",
               values: list[str] | None = None, order: int = 1) -> dict[str, Any]:
    attr: dict[str, Any] = {"variable": True, "code": code, "datatype": datatype, "required": required,
                            "datatype_description": description, "order": order, "description": name}
    if values is not None:
        attr["values"] = [{"key": v, "name": v} for v in values]
    return attr


def _attributes(code: str) -> list[dict[str, Any]]:
    kind = SERVICES[code][0]
    attrs = [_attribute("licence", "Licence agreement", LICENCE_NOTE, required=True, datatype="singlevaluelist",
                        values=["yes"], order=1)]
    if kind == "add_place":
        attrs += [_attribute("category", "Category", "a category slug", required=True, datatype="singlevaluelist",
                             values=list(CATEGORIES), order=2),
                  _attribute("name", "Name", "the place's name", required=True, order=3),
                  _attribute("opening_hours", "Opening hours", "OpenStreetMap syntax", required=False, order=4)]
    else:
        attrs.append(_attribute("facility_id", "Facility", "the Atvira facility id (see /api/facilities)",
                                required=True, order=2))
        if code == "wrong_hours":
            attrs.append(_attribute("opening_hours", "Opening hours", "OpenStreetMap syntax", required=True, order=3))
    if code in ("add_place", "feature_wrong", "not_accessible"):
        attrs += [_attribute(f"feature.{f}", f"Feature {f}", "yes, limited or no", required=False,
                             datatype="singlevaluelist", values=["yes", "limited", "no"], order=10 + i)
                  for i, f in enumerate(core.FORM_FEATURES)]
    return attrs


@bp.get("/services.json")
def services():
    return jsonify([_service_json(code) for code in SERVICES])


@bp.get("/services/<service_code>.json")
def service_definition(service_code: str):
    code = service_code
    if code not in SERVICES:
        raise BadRequest(f"unknown service_code {code[:40]!r}; see services.json", where="service_code")
    return jsonify({"service_code": code, "attributes": _attributes(code)})


# --- requests -----------------------------------------------------------------------------------

def _service_code(row: sqlite3.Row) -> str:
    return row["problem"] if row["kind"] == "report_problem" else row["kind"]


def _request_json(row: sqlite3.Row, public: sqlite3.Connection, names: dict[str, str]) -> dict[str, Any]:
    """The public fields of one contribution (never the email)."""
    proposed = json.loads(row["proposed"])
    fac = None
    if row["facility_id"]:
        fac = public.execute("SELECT name, address, lon, lat FROM facilities WHERE id = ?",
                             (row["facility_id"],)).fetchone()
    position = proposed.get("position") or ([fac["lon"], fac["lat"]] if fac and fac["lon"] is not None else None)
    code = _service_code(row)
    notes = None
    if row["status"] == "rejected":
        notes = f"rejected: {row['reason']}"
    elif row["status"] == "approved":
        notes = "approved and published"
    return {
        "service_request_id": str(row["id"]),
        "status": "open" if row["status"] == "pending" else "closed",
        "status_notes": notes,
        "service_name": SERVICES.get(code, (None, None, code))[2],
        "service_code": code,
        "description": row["note"] or None,
        "agency_responsible": names.get(row["municipality_code"] or "", None),
        "service_notice": None,
        "requested_datetime": row["created_at"],
        "updated_datetime": row["decided_at"] or row["created_at"],
        "expected_datetime": None,
        "address": fac["address"] if fac else None,
        "address_id": row["facility_id"],
        "zipcode": None,
        "lat": position[1] if position else None,
        "long": position[0] if position else None,
        "media_url": None,
    }


def _date(value: str | None, *, param: str) -> str | None:
    """An ISO 8601 date or date-time as the private store writes created_at (UTC, 'Z')."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"not an ISO 8601 date: {value[:40]!r}", where=param) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


MAX_REQUESTS = 1000


@bp.get("/requests.json")
def requests_list():
    """Requests newest first; filters as the spec: service_request_id (comma-separated),
    service_code, status (open|closed), start_date, end_date; at most 1000 (default 100)."""
    args = request.args
    where, params = [], []
    ids = args.get("service_request_id")
    if ids:
        parts = [p.strip() for p in ids.split(",") if p.strip()]
        if not parts or len(parts) > 100 or not all(p.isdigit() and len(p) <= 12 for p in parts):
            raise BadRequest("expected up to 100 comma-separated request ids", where="service_request_id")
        where.append(f"id IN ({', '.join('?' * len(parts))})")
        params += [int(p) for p in parts]
    code = args.get("service_code")
    if code:
        if code not in SERVICES:
            raise BadRequest(f"unknown service_code {code[:40]!r}; see services.json", where="service_code")
        kind, problem = SERVICES[code][0], SERVICES[code][1]
        where.append("kind = ? AND coalesce(problem, '') = ?")
        params += [kind, problem or ""]
    status = args.get("status")
    if status:
        wanted = {s.strip() for s in status.split(",")}
        if not wanted <= {"open", "closed"}:
            raise BadRequest("status is open, closed or both (open,closed)", where="status")
        if wanted == {"open"}:
            where.append("status = 'pending'")
        elif wanted == {"closed"}:
            where.append("status != 'pending'")
    start, end = _date(args.get("start_date"), param="start_date"), _date(args.get("end_date"), param="end_date")
    if start:
        where.append("created_at >= ?")
        params.append(start)
    if end:
        where.append("created_at <= ?")
        params.append(end)
    limit_raw = args.get("limit", "100")
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_REQUESTS:
        raise BadRequest(f"limit is a whole number 1..{MAX_REQUESTS}", where="limit")
    sql = "SELECT * FROM contributions" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    rows = private_db().execute(sql, (*params, int(limit_raw))).fetchall()
    public = reader()
    names = municipality_names(public)
    return jsonify([_request_json(r, public, names) for r in rows])


@bp.get("/requests/<service_request_id>.json")
def request_one(service_request_id: str):
    row = core.get_contribution(private_db(), service_request_id)
    public = reader()
    return jsonify([_request_json(row, public, municipality_names(public))])


@bp.post("/requests.json")
@limiter.shared_limit(submission_limit, scope="submissions")
def create_request():
    """Create a pending contribution from a form-encoded GeoReport v2 POST."""
    f = request.form
    code = f.get("service_code", "")
    if code not in SERVICES:
        raise BadRequest(f"unknown service_code {code[:40]!r}; see services.json", where="service_code")
    kind, problem, _name, _desc = SERVICES[code]

    def attr(name: str) -> str:
        return f.get(f"attribute[{name}]", "")

    features = {k[len("attribute[feature."):-1]: v for k, v in f.items()
                if k.startswith("attribute[feature.") and k.endswith("]") and v}
    sub = core.Submission(
        kind=kind, problem=problem, facility_id=attr("facility_id") or f.get("address_id") or None,
        name=attr("name"), category=attr("category"), lon=f.get("long"), lat=f.get("lat"), features=features,
        opening_hours=attr("opening_hours"), note=f.get("description", ""), email=f.get("email", ""),
        licence_agreed=attr("licence") == "yes", honeypot="", via="open311",
    )
    public = reader()
    cid = core.submit(private_db(), public, sub, locator=locator_for(public))
    return jsonify([{"service_request_id": str(cid), "service_notice":
                     "Waiting for an editor of the municipality; nothing is published until approved.",
                     "account_id": None}]), 201
