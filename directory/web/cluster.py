"""The social-cluster pages, JSON and CSV: thin shells over `directory.social_cluster`.

Figures come from the tables `social_cluster.recompute` stored in `refresh_derived`; the area
page adds its partner suggestions (a bounded R*Tree search). The maps never pass text a source
wrote through folium's templates: the choropleth's shapes travel in a JSON data block (as on the
audit pages), and the actors' map asks the store's API for its points in the browser and builds
its tooltips with textContent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from branca.element import MacroElement
from flask import Blueprint, Response, jsonify, render_template, request, url_for
from jinja2 import Template

from .. import social_cluster as sc
from ..audit_report import shapes
from ..exports import guard_text
from .audit import LT_BOUNDS, choropleth
from .context import reader, settings
from .i18n import number as fmt  # Babel: the page's decimal mark, and 'n/d' in Lithuanian
from .pages import CATEGORY_LABELS, CATEGORY_STYLE, SECTOR_LABELS, base_map, map_parts

bp = Blueprint("cluster", __name__)

# Okabe-Ito colours (told apart with colour-blindness); each marker also carries a letter-free
# shape-independent legend entry with the sector's name, so colour is never the only cue.
SECTOR_COLOURS = {"public": "#0072B2", "private": "#D55E00", "civic": "#009E73", "unknown": "#8c8c8c"}


class ActorLayer(MacroElement):
    """Circle markers for an area's facilities, fetched from /api/facilities in the browser and
    coloured by sector. Only the URL (tojson) and the colours go through the template."""

    _template = Template("""
{% macro script(this, kwargs) %}
(function () {
    var map = {{ this._parent.get_name() }}, colours = {{ this.colours|tojson }};
    var group = L.featureGroup().addTo(map), pages = 0;
    function load(url) {
        fetch(url, {headers: {"Accept": "application/geo+json"}}).then(function (r) { return r.json(); })
        .then(function (fc) {
            (fc.features || []).forEach(function (f) {
                if (!f.geometry) { return; }
                var p = f.properties, c = f.geometry.coordinates;
                var m = L.circleMarker([c[1], c[0]], {radius: 7, weight: 1, color: "#222",
                    fillColor: colours[p.sector] || colours.unknown, fillOpacity: 0.9,
                    className: "actor actor-" + p.sector});
                m.bindTooltip(function () {
                    var s = document.createElement("span");
                    s.textContent = (p.name || p.id) + (p.operator ? " — " + p.operator : "");
                    return s;
                });
                m.on("click", function () { window.location.href = "/facility/" + encodeURIComponent(p.id); });
                m.addTo(group);
            });
            pages += 1;
            if (fc.next && pages < {{ this.max_pages }}) { load(fc.next); }
        });
    }
    load({{ this.url|tojson }});
})();
{% endmacro %}
""")

    def __init__(self, url: str, *, max_pages: int = 4) -> None:
        super().__init__()
        self._name = "ActorLayer"
        self.url = url
        self.colours = SECTOR_COLOURS
        self.max_pages = max_pages


def _labels() -> dict[str, object]:
    return {"categories": CATEGORY_LABELS, "styles": CATEGORY_STYLE, "sectors": sc.ALL_SECTORS,
            "colours": SECTOR_COLOURS, "sector_labels": SECTOR_LABELS, "fmt": fmt}


@bp.get("/cluster")
def cluster_index() -> str:
    """The overview; `?category=` narrows the municipality table and the map to one kind."""
    conn = reader()
    category = request.args.get("category") or None
    data = sc.national(conn, per_kind=False, category=category)
    rows = [m["selected"] if category else m for m in data["municipalities"]]
    values = {m["code"]: r["share_outside_public"] for m, r in zip(data["municipalities"], rows)}
    parts, key = choropleth(settings(), shapes(conn, level="municipality"), values, kind="share",
                            higher_is_better=True, bounds=LT_BOUNDS)
    return render_template("cluster.html", d=data, map=parts, legend=key, category=category, **_labels())


@bp.get("/cluster/<code>")
def cluster_area(code: str) -> str:
    conn = reader()
    data = sc.area_report(conn, code)
    area = conn.execute("SELECT level, min_lon, min_lat, max_lon, max_lat FROM areas WHERE code = ?",
                        (code,)).fetchone()
    parts = None
    if area is not None and area["min_lon"] is not None:
        m = base_map(settings())
        param = "municipality" if area["level"] == "municipality" else "eldership"
        ActorLayer(url_for("api.facilities", **{param: code}, limit=1000)).add_to(m)
        m.fit_bounds([[area["min_lat"], area["min_lon"]], [area["max_lat"], area["max_lon"]]])
        parts = map_parts(m)
    return render_template("cluster_area.html", d=data, map=parts, **_labels())


@bp.get("/api/cluster")
def api_cluster_index() -> Response:
    return jsonify(sc.national(reader(), category=request.args.get("category") or None))


@bp.get("/api/cluster/<code>")
def api_cluster_area(code: str) -> Response:
    return jsonify(sc.area_report(reader(), code))


@bp.get("/cluster/<code>.csv")
def cluster_area_csv(code: str) -> Response:
    """The same figures as the page, as CSV (UTF-8 with BOM), every text cell guarded against
    spreadsheet formulas the way the exports are (`exports.guard_text`)."""
    rows = sc.report_rows(sc.area_report(reader(), code))

    def generate() -> Iterator[str]:
        buf = io.StringIO()
        buf.write("\ufeff")
        writer = csv.writer(buf, lineterminator="\r\n")
        for row in rows:
            writer.writerow(["" if v is None else guard_text(v) for v in row])
        yield buf.getvalue()

    return Response(generate(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="atvira-cluster-{code}.csv"'})
