"""The audit's pages, CSV downloads and JSON: thin shells over `directory.audit_report`.

Every figure is read from the tables `directory.audit.recompute` stored at ingest; the only
per-request work is laying out at most 60 (or one municipality's elderships) pre-simplified
shapes in a folium choropleth.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from branca.element import MacroElement
from flask import Blueprint, Response, jsonify, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from jinja2 import Template

from .. import audit_report as report
from .. import exports
from ..audit import CHECKLIST, POINTS, QUALITY_PROBLEMS
from ..config import Settings
from ..model import CATEGORIES
from ..query import parse_int
from .context import reader, settings
from .i18n import number as fmt
from .pages import base_map, map_parts

bp = Blueprint("audit", __name__)

# ColorBrewer sequential palettes: blues where more is better, reds where more is worse.
GOOD = ("#f0f9e8", "#bae4bc", "#7bccc4", "#43a2ca", "#0868ac")
BAD = ("#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000")
NO_DATA = "#d9d9d9"
GAP = "#d7301f"
COVERED = "#a6d96a"
LT_BOUNDS = [[53.89, 20.93], [56.46, 26.84]]

# The audit core's English texts that the pages show through `_()` at render time (indicator
# labels, checklist points and rules, data-quality problems, categories): marked here so that
# extraction puts them in the catalogue. Keep in step with directory/audit.py, audit_report.py and
# model.CATEGORIES; the Lithuanian-page test fails on any that drifts.
CORE_TEXTS = (
    _l("Per 10,000 residents"), _l("Count"), _l("Share of residents in elderships with none"),
    _l("Share of elderships with none"), _l("Childcare places per enrolled child"),
    _l("Institutions' checklist score (yes / known points)"), _l("Share of facilities without opening hours"),
    _l("Open to anyone during published hours"), _l("feature open_foyer: yes; limited or no counts as no"),
    _l("Opening hours published"),
    _l("yes when the record carries opening hours; otherwise unknown (a source that does not carry hours says"
       " nothing about whether the institution publishes them)"),
    _l("Free public toilet"),
    _l("features toilet and free: yes when both are yes; no when the toilet is no or limited, or the toilet is"
       " yes but not free; otherwise unknown"),
    _l("Baby changing table"), _l("feature changing_table"), _l("Feeding room"), _l("feature feeding_room"),
    _l("Play corner"), _l("feature play_corner"), _l("Place to sit or café"),
    _l("features seating and cafe: yes when either is yes; no when both are known and neither is yes;"
       " otherwise unknown"),
    _l("Wheelchair access"), _l("feature wheelchair"),
    _l("No opening hours"), _l("No feature known"), _l("Not verified in 12 months"), _l("Only one source"),
    _l("Unresolved conflict between sources"),
)




# --- formatting ------------------------------------------------------------------------------


def classes(values: Iterable[float | None], *, k: int = 5) -> list[float]:
    """Upper bounds of up to k equal-count classes (quantiles) over the known values."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return []
    uppers = []
    for i in range(1, k + 1):
        v = known[min(len(known) - 1, max(0, round(i * len(known) / k) - 1))]
        if not uppers or v > uppers[-1]:
            uppers.append(v)
    return uppers


def colour(value: float | None, uppers: list[float], palette: tuple[str, ...]) -> str:
    if value is None or not uppers:
        return NO_DATA
    for i, upper in enumerate(uppers):
        if value <= upper:
            return palette[i * len(palette) // len(uppers) if len(uppers) < len(palette) else i]
    return palette[-1]


def legend(uppers: list[float], palette: tuple[str, ...], kind: str) -> list[dict[str, str]]:
    rows, lower = [], None
    for upper in uppers:
        c = colour(upper, uppers, palette)
        label = fmt(upper, kind) if lower is None else f"{fmt(lower, kind)} – {fmt(upper, kind)}"
        rows.append({"colour": c, "label": ("≤ " + label) if lower is None else label})
        lower = upper
    rows.append({"colour": NO_DATA, "label": gettext("no data")})
    return rows


class AreaLayer(MacroElement):
    """A GeoJSON layer of stored, pre-simplified shapes, filled from each feature's `fill`.

    The shapes travel in a JSON data block beside the map (`data_id`), not inside folium's
    script: branca re-parses every element's script as a Jinja template, which costs ~25 ms for
    the 60 municipalities and would evaluate any "{{" a source wrote. folium.GeoJson would also
    parse and re-serialise every geometry on every request. Tooltips are built with
    textContent, so names are never parsed as HTML.
    """

    _template = Template("""
{% macro script(this, kwargs) %}
var {{ this.get_name() }} = L.geoJson(JSON.parse(document.getElementById({{ this.data_id|tojson }}).textContent), {
    style: function (f) {
        return {fillColor: f.properties.fill, color: "#444", weight: 1, fillOpacity: 0.75, className: "audit-area"};
    },
    onEachFeature: function (f, layer) {
        layer.bindTooltip(function () {
            var s = document.createElement("span");
            s.textContent = f.properties.name + ": " + f.properties.value;
            return s;
        }, {sticky: true});
        layer.on("mouseover", function () { layer.setStyle({weight: 3, color: "#000"}); });
        layer.on("mouseout", function () { {{ this.get_name() }}.resetStyle(layer); });
    }
}).addTo({{ this._parent.get_name() }});
{% endmacro %}
""")

    def __init__(self, data_id: str) -> None:
        super().__init__()
        self._name = "AreaLayer"
        self.data_id = data_id


def feature_collection(shapes: list[tuple[str, str, str]], properties: dict[str, dict[str, Any]]) -> str:
    """GeoJSON text from stored geometry text without parsing it; safe inside a <script> data block."""
    parts = []
    for code, _name, geometry in shapes:
        props = json.dumps(properties.get(code, {}), ensure_ascii=False)
        parts.append(f'{{"type":"Feature","id":{json.dumps(code)},"geometry":{geometry},"properties":{props}}}')
    text = '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"
    # "</script>" or "<!--" inside a string must not end the script element.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def choropleth(settings: Settings, shapes: list[tuple[str, str, str]], values: dict[str, float | None],
               *, kind: str, higher_is_better: bool, bounds: list[list[float]],
               colours: dict[str, str] | None = None) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A folium map with one shape per area, filled by class; returns (map parts, legend).

    `colours` overrides the classes (the gaps map colours by coverage, not by value).
    """
    palette = GOOD if higher_is_better else BAD
    uppers = classes(values.values())
    props = {}
    for code, name, _geometry in shapes:
        value = values.get(code)
        props[code] = {"code": code, "name": name, "value": fmt(value, kind),
                       "fill": colours.get(code, NO_DATA) if colours is not None else colour(value, uppers, palette)}
    m = base_map(settings)
    layer = AreaLayer("")
    layer.data_id = f"data-{layer.get_name()}"
    layer.add_to(m)
    m.fit_bounds(bounds)
    parts = map_parts(m)
    parts["data_id"], parts["data"] = layer.data_id, feature_collection(shapes, props)
    return parts, ([] if colours is not None else legend(uppers, palette, kind))


def _csv(rows: Iterator[list[Any]], filename: str) -> Response:
    """Stream rows as CSV through the core's one guarded writer (`exports.csv_text`)."""
    first = next(rows)  # raise NotFound before the response starts
    return Response(exports.csv_text(itertools.chain([first], rows)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _common_args() -> tuple[str, str]:
    return (report.check_category(request.args.get("category")),
            report.check_indicator(request.args.get("indicator")))


# --- pages -----------------------------------------------------------------------------------


@bp.get("/audit")
def audit_index() -> str:
    conn = reader()
    category, indicator = _common_args()
    sort, descending = report.check_sort(request.args.get("sort"))
    rows = report.municipalities(conn, category=category, sort=sort, descending=descending)
    label, kind, better = report.INDICATORS[indicator]
    parts, key = choropleth(
        settings(), report.shapes(conn, level="municipality"),
        {r["code"]: r.get(indicator) for r in rows},
        kind=kind, higher_is_better=better, bounds=LT_BOUNDS)
    for r in rows:
        r["value"] = fmt(r.get(indicator), kind)
    return render_template(
        "audit.html", rows=rows, national=report.national(conn, category=category), map=parts, legend=key,
        category=category, indicator=indicator, indicator_label=label, sort=sort, descending=descending,
        categories=CATEGORIES, indicators=report.INDICATORS, checklist=report.checklist_documentation(),
        problems=QUALITY_PROBLEMS, fmt=fmt, computed=report.status(conn), rules=report.checklist_rules())


@bp.get("/audit/<code>")
def audit_municipality(code: str) -> str:
    conn = reader()
    category, indicator = _common_args()
    data = report.municipality(conn, code, category=category)
    b = data["bbox"]
    bounds = [[b[1], b[0]], [b[3], b[2]]]
    shapes = report.shapes(conn, level="eldership", parent=code)
    label, kind, better = report.INDICATORS[indicator]
    if indicator not in ("per_10k", "count", "capacity_per_child"):  # the others are municipal only
        indicator, (label, kind, better) = "per_10k", report.INDICATORS["per_10k"]
    values = {e["code"]: e.get(indicator) for e in data["elderships"]}
    parts, key = choropleth(settings(), shapes, values, kind=kind, higher_is_better=better, bounds=bounds)
    gap_codes = {g["code"] for g in data["gaps"]}
    gap_colours = {e["code"]: GAP if e["code"] in gap_codes else (COVERED if e["count"] else NO_DATA)
                   for e in data["elderships"]}
    gaps_parts, _ = choropleth(settings(), shapes, {e["code"]: e["count"] for e in data["elderships"]},
                               kind="count", higher_is_better=True, bounds=bounds, colours=gap_colours)
    return render_template(
        "audit_municipality.html", d=data, map=parts, gaps_map=gaps_parts, legend=key,
        category=category, indicator=indicator, indicator_label=label, categories=CATEGORIES,
        indicators={k: v for k, v in report.INDICATORS.items() if k in ("per_10k", "count", "capacity_per_child")},
        checklist=report.checklist_documentation(), points=POINTS, point_labels={k: v[0] for k, v in CHECKLIST.items()},
        problems=QUALITY_PROBLEMS, fmt=fmt, colours={"gap": GAP, "covered": COVERED, "none": NO_DATA},
        rules=report.checklist_rules())


@bp.get("/audit/institutions")
def audit_meeting_all() -> str:
    conn = reader()
    rows = report.meeting_all(conn, limit=report.MEETING_ALL_ON_PAGE)
    total = conn.execute("SELECT meets_all FROM audit_checklist WHERE code = 'LT'").fetchone()
    return render_template("audit_institutions.html", rows=rows, total=total[0] if total else 0, categories=CATEGORIES,
                           checklist=report.checklist_documentation(), computed=report.status(conn),
                           rules=report.checklist_rules(), fmt=fmt)


@bp.get("/audit/institutions.csv")
def audit_meeting_all_csv() -> Response:
    return _csv(report.meeting_all_csv(reader()), "atvira-audit-institutions-meeting-every-point.csv")


@bp.get("/audit.csv")
def audit_csv() -> Response:
    return _csv(report.municipalities_csv(reader()), "atvira-audit-municipalities.csv")


@bp.get("/audit/<code>/indicators.csv")
def audit_municipality_csv(code: str) -> Response:
    return _csv(report.municipality_csv(reader(), code), f"atvira-audit-{code}.csv")


@bp.get("/audit/<code>/institutions.csv")
def audit_institutions_csv(code: str) -> Response:
    meets_all = request.args.get("meets_all") in ("1", "true", "yes")
    return _csv(report.institutions_csv(reader(), code, meets_all=meets_all),
                f"atvira-audit-{code}-institutions{'-meeting-all' if meets_all else ''}.csv")


# --- JSON ------------------------------------------------------------------------------------


@bp.get("/api/audit/municipalities")
def api_municipalities() -> Response:
    conn = reader()
    category = report.check_category(request.args.get("category"))
    sort, descending = report.check_sort(request.args.get("sort"))
    return jsonify({
        "category": category,
        "national": report.national(conn, category=category),
        "municipalities": report.municipalities(conn, category=category, sort=sort, descending=descending),
        "checklist": report.checklist_documentation(),
        "checklist_rules": report.checklist_rules(),
    })


@bp.get("/api/audit/municipalities/<code>")
def api_municipality(code: str) -> Response:
    category = report.check_category(request.args.get("category"))
    limit = request.args.get("institutions_limit")
    if limit == "all":
        n = None
    else:
        n = parse_int(request.args, "institutions_limit", report.INSTITUTIONS_ON_PAGE, low=0, high=1_000_000)
    data = report.municipality(reader(), code, category=category, institutions_limit=n)
    data["checklist_documentation"] = report.checklist_documentation()
    return jsonify(data)
