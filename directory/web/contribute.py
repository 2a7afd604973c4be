"""Contributions on the web: "add a place", "report a problem", "still here", the moderation
queue, editors' direct edits and the municipal upload. Thin shells over `directory.contributions`.

Every form carries the CSRF token (CSRFProtect is global); every POST that a member of the public
can send is rate-limited per client address (`submission_limit`, shared by all the forms and the
Open311 POST). Changes to the public store go through one writer connection per request, then
`refresh_derived`, exactly as an ingest run.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from .. import contributions as core
from ..accounts import User, municipality_names, require_edit, role_label
from ..areas_store import load_locator
from ..audit import CHECKLIST
from ..derived import refresh_derived
from ..errors import AtviraError, BadRequest, InputError, NotFound
from ..model import FEATURES, SECTORS
from ..store import connect, get_facility
from .auth import current_user, login_required
from .context import private_db, reader, settings
from .limits import limiter, submission_limit
from .pages import CATEGORY_LABELS, FEATURE_LABELS, FEATURE_VALUE_LABELS, SECTOR_LABELS, STATUS_LABELS

bp = Blueprint("contribute", __name__)

PROBLEM_LABELS = {
    "closed": _l("Closed for good"),
    "moved": _l("Moved elsewhere"),
    "wrong_hours": _l("Wrong opening hours"),
    "feature_wrong": _l("A feature is wrong"),
    "not_accessible": _l("Not accessible"),
}
KIND_LABELS = {"add_place": _l("New place"), "report_problem": _l("Problem report"), "still_here": _l("Still here")}
FIELD_LABELS = {
    "name": _l("Name"), "categories": _l("Category"), "position": _l("Position"), "status": _l("Status"),
    "opening_hours": _l("Opening hours"), "last_verified": _l("Last verified"), "sector": _l("Sector"),
    "operator": _l("Operator"),
}
# The openness checklist points an editor answers, each as the feature the audit reads.
CHECKLIST_FEATURE = {"open_to_anyone": "open_foyer", "changing_table": "changing_table", "feeding_room": "feeding_room",
                     "play_corner": "play_corner", "wheelchair": "wheelchair", "seating": "seating"}
CHECKLIST_LABELS = {
    "open_to_anyone": _l("Open to anyone during published hours"), "changing_table": _l("Baby changing table"),
    "feeding_room": _l("Feeding room"), "play_corner": _l("Play corner"), "wheelchair": _l("Wheelchair access"),
    "seating": _l("Place to sit"), "toilet": _l("Toilet"), "free": _l("Free of charge"),
}
EDIT_FEATURES = ("toilet", "free", *dict.fromkeys(CHECKLIST_FEATURE.values()), "pram_access", "cafe")

# The function that runs a municipal upload (ingest.runs.run_municipal_upload), given by app.py:
# directory never imports ingest.
UploadRunner = Callable[..., Any]


def field_label(key: str) -> str:
    if key.startswith("features."):
        return str(FEATURE_LABELS.get(key[9:], key[9:]))
    return str(FIELD_LABELS.get(key, key))


def value_label(key: str, value: Any) -> str:
    """A proposed or current value in words (text only; the template escapes it)."""
    if value is None or value == "":
        return gettext("unknown")
    if key.startswith("features."):
        return str(FEATURE_VALUE_LABELS.get(value, value))
    if key == "categories":
        return ", ".join(str(CATEGORY_LABELS.get(c, c)) for c in value)
    if key == "position":
        return f"{value[1]:.5f}, {value[0]:.5f}"
    if key == "status":
        return str(STATUS_LABELS.get(value, value))
    if key == "sector":
        return str(SECTOR_LABELS.get(value, value))
    return str(value)


@bp.app_context_processor
def contribution_helpers() -> dict[str, Any]:
    return {"field_label": field_label, "value_label": value_label, "problem_labels": PROBLEM_LABELS,
            "kind_labels": KIND_LABELS, "contribution_licence": core.CONTRIBUTION_LICENCE,
            "retention_days": settings().contact_retention_days}


PRIVATE_ENDPOINTS = frozenset({"contribute.moderate", "contribute.moderate_item", "contribute.edit",
                               "contribute.upload", "contribute.add_place", "contribute.report"})


@bp.after_request
def no_store(resp):
    """Moderation pages show unpublished suggestions, and forms carry a per-session token: no cache."""
    if request.endpoint in PRIVATE_ENDPOINTS:
        resp.headers["Cache-Control"] = "no-store"
    return resp


# --- connections --------------------------------------------------------------------------------

def locator_for(conn: sqlite3.Connection):
    """The areas locator, built once per process and rebuilt when the areas change."""
    cache = current_app.extensions.setdefault("atvira_locator", {})
    # derived.areas_signature reads every geometry's length (megabytes); per submission this
    # cheaper fingerprint is enough: loading areas replaces the rows (new rowids) and their boxes.
    sig = tuple(conn.execute(
        "SELECT count(*), total(population), total(min_lon), total(max_lat), max(rowid) FROM areas").fetchone())
    if cache.get("sig") != sig:
        cache["locator"], cache["sig"] = load_locator(conn), sig
    return cache["locator"]


@contextmanager
def writer() -> Iterator[sqlite3.Connection]:
    """A writer connection to the public store for one change (closed afterwards)."""
    conn = connect(settings().db)
    try:
        yield conn
    finally:
        conn.close()


def _purge() -> None:
    core.purge_contacts(private_db(), days=settings().contact_retention_days)


# --- public forms ---------------------------------------------------------------------------------

def _features_from_checkboxes() -> dict[str, str]:
    return {k: "yes" for k in request.form.getlist("features")}


def _features_from_selects() -> dict[str, str]:
    return {k[8:]: v for k, v in request.form.items() if k.startswith("feature.") and v}


def _submission(kind: str, *, facility_id: str | None = None, features: dict[str, str] | None = None) -> core.Submission:
    f = request.form
    return core.Submission(
        kind=kind, facility_id=facility_id, problem=f.get("problem"), name=f.get("name", ""),
        category=f.get("category", ""), lon=f.get("lon"), lat=f.get("lat"), features=features or {},
        opening_hours=f.get("opening_hours", ""), note=f.get("note", ""), email=f.get("email", ""),
        licence_agreed=f.get("licence") == "yes", honeypot=f.get("website", ""),
    )


def _submit(sub: core.Submission) -> int:
    public = reader()
    return core.submit(private_db(), public, sub, locator=locator_for(public))


@bp.route("/contribute", methods=["GET", "POST"])
@limiter.shared_limit(submission_limit, scope="submissions", methods=["POST"])
def add_place():
    """Add a place: pick a point on the map (or type it), category, name, features, hours, note."""
    errors: list[tuple[str, str]] = []
    status = 200
    if request.method == "POST":
        try:
            cid = _submit(_submission("add_place", features=_features_from_checkboxes()))
        except core.InvalidSubmission as exc:
            errors, status = exc.problems, 400
        else:
            return redirect(url_for("contribute.thanks", id=cid), code=303)
    return render_template(
        "contribute.html", errors=errors, form=request.form, categories=CATEGORY_LABELS,
        features={k: FEATURE_LABELS[k] for k in core.FORM_FEATURES}, config=_map_config(),
    ), status


def _map_config() -> dict[str, Any]:
    s = settings()
    center = [54.6872, 25.2797]
    zoom = 12
    ll = request.args.get("ll", "")
    try:
        lat, lon = (float(x) for x in ll.split(","))
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            center = [lat, lon]
            zoom = int(request.args.get("z", 16))
    except ValueError:
        pass
    return {"tiles": s.tile_url, "attribution": s.tile_attribution, "center": center, "zoom": max(2, min(zoom, 19)),
            "picked": gettext("Chosen place"), "hint": gettext("Position chosen: %(lat)s, %(lon)s", lat="{lat}",
                                                                  lon="{lon}")}


@bp.get("/contribute/thanks")
def thanks() -> str:
    return render_template("contribute_thanks.html", id=request.args.get("id", "")[:12])


@bp.route("/facility/<facility_id>/report", methods=["GET", "POST"])
@limiter.shared_limit(submission_limit, scope="submissions", methods=["POST"])
def report(facility_id: str):
    """Report a problem with a facility, with the proposed correction."""
    fac = get_facility(reader(), facility_id)
    if fac is None or fac["status"] == "removed":
        raise NotFound(gettext("No facility with id %(id)s", id=facility_id[:80]), where="facility_id")
    errors: list[tuple[str, str]] = []
    status = 200
    if request.method == "POST":
        try:
            cid = _submit(_submission("report_problem", facility_id=facility_id, features=_features_from_selects()))
        except core.InvalidSubmission as exc:
            errors, status = exc.problems, 400
        else:
            return redirect(url_for("contribute.thanks", id=cid), code=303)
    return render_template(
        "report.html", fac=fac, errors=errors, form=request.form, problems=PROBLEM_LABELS,
        features={k: FEATURE_LABELS[k] for k in core.FORM_FEATURES}, value_labels=FEATURE_VALUE_LABELS,
        config=_map_config_at(fac),
    ), status


def _map_config_at(fac: dict[str, Any]) -> dict[str, Any]:
    config = _map_config()
    if fac.get("lat") is not None:
        config["center"], config["zoom"] = [fac["lat"], fac["lon"]], 17
    return config


@bp.post("/facility/<facility_id>/still-here")
@limiter.shared_limit(submission_limit, scope="submissions", methods=["POST"])
def still_here(facility_id: str):
    """One tap: the place is still there (an editor confirms; it then counts as verified today)."""
    sub = core.Submission(kind="still_here", facility_id=facility_id, licence_agreed=True,
                          honeypot=request.form.get("website", ""))
    cid = _submit(sub)
    return redirect(url_for("contribute.thanks", id=cid, kind="still_here"), code=303)


# --- moderation -------------------------------------------------------------------------------------

def _user() -> User:
    user = current_user()
    if user is None:  # login_required lets nobody through; this keeps type checkers and readers sure
        raise NotFound("no user", where="session")
    return user


def _after() -> int | None:
    raw = request.args.get("after")
    if raw in (None, ""):
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise BadRequest(gettext("expected a whole number"), where="after")
    return int(raw)


def _with_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's (field, now, proposed) in words, and its heading: translated once per distinct
    string (a queue page of 50 items would otherwise make hundreds of gettext calls)."""
    memo: dict[tuple, str] = {}

    def once(key: tuple, make: Callable[[], str]) -> str:
        if key not in memo:
            memo[key] = make()
        return memo[key]

    for item in items:
        rows = []
        for key, value in item["proposed"].items():
            now = "—" if item["kind"] == "add_place" else once(
                ("v", key, repr(item["current"].get(key))), lambda k=key, c=item["current"]: value_label(k, c.get(k)))
            rows.append((once(("f", key), lambda k=key: field_label(k)),
                         now, once(("v", key, repr(value)), lambda k=key, v=value: value_label(k, v))))
        item["rows"] = rows
        item["title"] = once(("t", item["kind"], item["problem"]), lambda i=item: str(KIND_LABELS[i["kind"]]) + (
            f": {PROBLEM_LABELS.get(i['problem'], i['problem'])}" if i["problem"] else ""))
    return items


def _strings() -> dict[str, str]:
    return {"field": gettext("Field"), "now": gettext("Now"), "proposed": gettext("Proposed"),
            "values": gettext("Current and proposed values"), "note": gettext("Note:"), "approve": gettext("Approve"),
            "reject": gettext("Reject"), "reason": gettext("Reason for rejecting"),
            "contact": gettext("contact given")}


@bp.get("/moderate")
@login_required
def moderate() -> str:
    """The pending suggestions in the editor's area, newest first, current beside proposed."""
    user = _user()
    page = core.list_pending(private_db(), public=reader(), user=user, limit=core.PAGE_LIMIT, after=_after())
    _with_rows(page["items"])
    names = municipality_names(reader())
    nxt = url_for("contribute.moderate", after=page["next_after"]) if page["next_after"] else None
    return render_template("moderate.html", page=page, names=names, next_url=nxt, user=user, t=_strings(),
                           done=request.args.get("done", "")[:20], outcome=request.args.get("outcome", "")[:20])


@bp.get("/moderate/<contribution_id>")
@login_required
def moderate_item(contribution_id: str) -> str:
    item = core.show(private_db(), contribution_id, public=reader(), user=_user())
    _with_rows([item])
    return render_template("moderate_item.html", item=item, names=municipality_names(reader()), t=_strings())


@bp.post("/moderate/<contribution_id>/approve")
@login_required
def approve(contribution_id: str):
    user = _user()
    with writer() as public:
        decision = core.approve(private_db(), public, contribution_id, user=user, names=municipality_names(public),
                                locator=locator_for(public))
        refresh_derived(public, settings())
    _purge()
    return redirect(url_for("contribute.moderate", done=decision.id, outcome="approved"), code=303)


@bp.post("/moderate/<contribution_id>/reject")
@login_required
def reject(contribution_id: str):
    decision = core.reject(private_db(), contribution_id, user=_user(), reason=request.form.get("reason", ""),
                           names=municipality_names(reader()))
    _purge()
    return redirect(url_for("contribute.moderate", done=decision.id, outcome="rejected"), code=303)


# --- editors' direct edits -------------------------------------------------------------------------

def _edit_form() -> dict[str, Any]:
    """The submitted edit fields (a select left at "unchanged" is not sent as a change)."""
    f = request.form
    out: dict[str, Any] = {}
    for key in ("opening_hours", "operator", "sector", "status"):
        if key in f:
            out[key] = f[key]
    for key, value in f.items():
        if key.startswith("features.") and value != "keep":
            out[key] = value
    return out


@bp.route("/facility/<facility_id>/edit", methods=["GET", "POST"])
@login_required
def edit(facility_id: str):
    """An editor edits hours, features, sector, operator, status and the checklist answers."""
    user = _user()
    fac = get_facility(reader(), facility_id)
    if fac is None or fac["status"] == "removed":
        raise NotFound(gettext("No facility with id %(id)s", id=facility_id[:80]), where="facility_id")
    require_edit(user, fac["municipality_code"], what=f"facility {fac['id']}")
    errors: list[tuple[str, str]] = []
    status = 200
    if request.method == "POST":
        try:
            with writer() as public:
                decision = core.edit_facility(public, facility_id, _edit_form(), user=user,
                                              names=municipality_names(public), locator=locator_for(public))
                if decision.report is not None:
                    refresh_derived(public, settings())
        except core.InvalidSubmission as exc:
            errors, status = exc.problems, 400
        else:
            return redirect(url_for("pages.facility", facility_id=facility_id, edited=decision.status), code=303)
    return render_template(
        "edit.html", fac=fac, errors=errors, sectors=SECTORS, sector_labels=SECTOR_LABELS, statuses=core.EDIT_STATUSES,
        status_labels=STATUS_LABELS, features={k: FEATURE_LABELS[k] for k in EDIT_FEATURES if k in FEATURES},
        value_labels=FEATURE_VALUE_LABELS, checklist={k: CHECKLIST_LABELS[k] for k in CHECKLIST_FEATURE},
        checklist_feature=CHECKLIST_FEATURE, checklist_docs={k: CHECKLIST[k][1] for k in CHECKLIST_FEATURE},
    ), status


# --- the municipal upload ---------------------------------------------------------------------------

@bp.route("/moderate/upload", methods=["GET", "POST"])
@login_required
def upload():
    """An editor uploads the municipal template (docs/templates/) for one of their municipalities."""
    user = _user()
    names = municipality_names(reader())
    codes = sorted(names) if user.is_admin else list(user.municipalities)
    problems: list[str] = []
    summary = None
    status = 200
    if request.method == "POST":
        code = request.form.get("municipality", "")
        file = request.files.get("file")
        runner: UploadRunner | None = current_app.extensions.get("atvira_upload_runner")
        try:
            require_edit(user, code or None, what=f"municipality {code[:20]}")
            if file is None or not file.filename:
                raise BadRequest(gettext("choose a file to upload"), where="file")
            if runner is None:
                raise BadRequest(gettext("uploads are not enabled on this server"), where="file")
            suffix = Path(file.filename).suffix.lower()
            if suffix not in (".csv", ".geojson", ".json"):
                raise BadRequest(gettext("upload the template as .csv or .geojson"), where="file")
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"upload{suffix}"
                file.save(path)
                with writer() as public:
                    actor = role_label(user, names, municipality=code)
                    result = runner(public, path, settings=settings(), municipality=code, actor=actor)
            summary = "; ".join(r.summary() for r in result.reports)
        except InputError as exc:
            problems = [str(p) for p in getattr(exc, "problems", [])] or [exc.message]
            status = 400
        except BadRequest as exc:
            problems, status = [exc.message], exc.status
    return render_template("upload.html", codes=codes, names=names, problems=problems, summary=summary), status


def init_contribute(app, *, upload_runner: UploadRunner | None = None) -> None:
    """Register the blueprint; `upload_runner` comes from the composition root (app.py)."""
    if upload_runner is not None:
        app.extensions["atvira_upload_runner"] = upload_runner
    app.register_blueprint(bp)


__all__ = ["AtviraError", "bp", "init_contribute"]
