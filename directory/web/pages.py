"""HTML pages. The map page never embeds facilities: its script asks the API for what is in view,
so the page weighs the same with ten facilities or a million."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import folium
from flask import Blueprint, Response, current_app, render_template, send_file, url_for
from flask_babel import format_date, format_datetime, format_decimal, get_locale, gettext
from flask_babel import lazy_gettext as _l
from markupsafe import escape

from .. import hours as hours_mod
from ..accounts import can_edit
from ..config import DEFAULT_TILE_ATTRIBUTION, Settings
from ..errors import NotFound
from ..store import get_facility, get_meta
from .auth import current_user
from .context import external_url, reader
from .i18n import plural_forms, translated_or_marked
from .security import add_nonces

bp = Blueprint("pages", __name__)

# Lithuania's extent, for the first view.
LT_CENTER = (55.17, 23.88)

# UI labels (translatable; the slugs stay the API's). Keep in step with model.CATEGORIES/FEATURES.
CATEGORY_LABELS = {
    "day_centre": _l("Day centre"),
    "kindergarten": _l("Kindergarten"),
    "childcare": _l("Childcare"),
    "playground": _l("Playground"),
    "indoor_play": _l("Indoor play"),
    "baby_room": _l("Baby room"),
    "toilet": _l("Toilet"),
    "library": _l("Library"),
    "community_centre": _l("Community centre"),
    "townhall": _l("Town hall"),
    "culture": _l("Culture"),
    "school": _l("School"),
    "state_institution": _l("State institution"),
}
FEATURE_LABELS = {
    "changing_table": _l("Changing table"),
    "feeding_room": _l("Feeding room"),
    "wheelchair": _l("Wheelchair access"),
    "free": _l("Free of charge"),
    "play_corner": _l("Play corner"),
    "toilet": _l("Toilet"),
    "seating": _l("Place to sit"),
    "cafe": _l("Café"),
    "open_foyer": _l("Open to anyone"),
    "pram_access": _l("Pram access"),
}
# The features a parent filters by (the rest show on the detail page).
PARENT_FEATURES = ("changing_table", "feeding_room", "free", "wheelchair", "play_corner")
FEATURE_VALUE_LABELS = {"yes": _l("yes"), "limited": _l("limited"), "no": _l("no")}
SECTOR_LABELS = {"public": _l("public"), "private": _l("private"), "civic": _l("civic (NGO)"), "unknown": _l("unknown")}
STATUS_LABELS = {
    "active": _l("active"), "closed": _l("closed for good"), "unknown": _l("status unknown"), "removed": _l("removed"),
}

# Marker badge colour and glyph per category; colours keep 4.5:1 contrast with white text.
CATEGORY_STYLE = {
    "day_centre": ("#8a3b12", "D"),
    "kindergarten": ("#1d6b2f", "K"),
    "childcare": ("#5a3d8a", "C"),
    "playground": ("#0b5e7a", "P"),
    "indoor_play": ("#9c2a5c", "I"),
    "baby_room": ("#a12622", "B"),
    "toilet": ("#35495e", "T"),
    "library": ("#6b4f12", "L"),
    "community_centre": ("#2f5d1e", "H"),
    "townhall": ("#3b3b3b", "M"),
    "culture": ("#7a1f7a", "A"),
    "school": ("#1f4e99", "S"),
    "state_institution": ("#704214", "V"),
}

OSM_COPYRIGHT = "https://www.openstreetmap.org/copyright"


def osm_credit() -> str:
    """The one OpenStreetMap credit (data and, with the default tiles, the tiles), translated."""
    return gettext('© <a href="%(url)s">OpenStreetMap</a> contributors (ODbL)', url=OSM_COPYRIGHT)


def tile_attribution(settings: Settings, *, osm_data: bool) -> str:
    """The tiles' credit: none when it is the default OpenStreetMap one and the data credit
    already names OpenStreetMap (say it once), the translated default, or the configured text."""
    if settings.tile_attribution == DEFAULT_TILE_ATTRIBUTION:
        return "" if osm_data else gettext('© <a href="%(url)s">OpenStreetMap</a> contributors', url=OSM_COPYRIGHT)
    return settings.tile_attribution


def local_leaflet(m: folium.Map) -> folium.Map:
    """Serve Leaflet from this app instead of folium's CDN defaults (the page must work offline)."""
    m.default_js = [("leaflet", url_for("static", filename="vendor/leaflet/leaflet.js"))]
    m.default_css = [("leaflet_css", url_for("static", filename="vendor/leaflet/leaflet.css"))]
    return m


def base_map(settings: Settings, *, location: tuple[float, float] = LT_CENTER, zoom: int = 7,
             osm_data: bool = False) -> folium.Map:
    """A folium map with the configured tiles (or none) and only local assets. `osm_data`: the
    page credits OpenStreetMap for its data, so the default tiles need no second credit."""
    m = folium.Map(location=location, zoom_start=zoom, tiles=None, control_scale=True)
    # folium puts zoom limits on tile layers only; a map without tiles needs its own maxZoom
    m.options.update(minZoom=2, maxZoom=19)
    if settings.tile_url:
        credit = tile_attribution(settings, osm_data=osm_data)
        layer = folium.TileLayer(tiles=settings.tile_url, attr=credit or "-", name="base", max_zoom=19)
        if not credit:  # folium insists on one; the data credit already says it
            layer.options.pop("attribution", None)
        layer.add_to(m)
    return local_leaflet(m)


# folium's page header sets maximum-scale=1 and user-scalable=no, which blocks pinch zoom (WCAG
# 1.4.4); base.html has its own viewport meta, so folium's is dropped.
_FOLIUM_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>\s*', re.IGNORECASE)


def map_parts(m: folium.Map) -> dict[str, str]:
    """folium's header (assets), body (the map div) and script, to place in our own template."""
    root = m.get_root()
    root.render()
    return {
        "head": add_nonces(_FOLIUM_VIEWPORT.sub("", root.header.render())),
        "body": add_nonces(root.html.render()),
        "script": root.script.render(),
        "name": m.get_name(),
    }


def data_attribution(conn) -> str:
    """The data sources' credits for the map's attribution control (HTML we write ourselves)."""
    parts = []
    for source, licence in data_sources(conn):
        text = osm_credit() if source == "osm" else f"{escape(source)} ({translated_or_marked(licence)})"
        if text not in parts:
            parts.append(text)
    return " · ".join(parts)


def data_sources(conn) -> list[list[str]]:
    """(source, licence) pairs of the facilities on the map."""
    sources = get_meta(conn, "map_sources")
    if sources is None:  # a store from before the map data hook: ask the rows (small stores)
        sources = [list(r) for r in conn.execute("SELECT DISTINCT source, licence FROM facilities LIMIT 20")]
    return sources


def credits_osm(conn) -> bool:
    return any(source == "osm" for source, _licence in data_sources(conn))



def _js_strings() -> dict[str, Any]:
    """The map script's UI text, translated server-side (the script has no gettext)."""
    return {
        "loading": gettext("Loading…"),
        "error": gettext("Could not load facilities:"),
        "in_view": plural_forms("%(n)s place in view", "%(n)s places in view", n="{n}"),
        "in_view_more": gettext(
            "%(n)s+ places in view; the list shows the first %(shown)s — zoom in to see all", n="{n}", shown="{shown}"),
        "clustered": gettext("%(n)s places in view — too many to list; zoom in, filter or use Near me", n="{n}"),
        "zoom_to": gettext("Zoom to %(n)s places here", n="{n}"),
        "nearest": gettext("Nearest first from %(place)s", place="{place}"),
        "your_location": gettext("your location"),
        "none": gettext("No places match here. Zoom out or change the filters."),
        "open": gettext("Open now"),
        "closed": gettext("Closed now"),
        "unknown": gettext("Hours unknown"),
        "km": gettext("%(d)s km", d="{d}"),
        "m": gettext("%(d)s m", d="{d}"),
        "geo_denied": gettext("Your browser did not share a location. Type a place or address instead."),
        "geo_unsupported": gettext("This browser cannot share a location. Type a place or address instead."),
        "place_not_found": gettext("No place or address matches that."),
        "details": gettext("Details"),
        "you_are_here": gettext("You are here"),
        "understood": gettext("Understood as: %(what)s", what="{what}"),
        "name_words": gettext("name “%(w)s”", w="{w}"),
        "kinds": {
            "municipality": gettext("municipality"), "eldership": gettext("eldership"), "city": gettext("city"),
            "town": gettext("town"), "suburb": gettext("suburb"), "quarter": gettext("quarter"),
            "neighbourhood": gettext("neighbourhood"), "village": gettext("village"), "hamlet": gettext("hamlet"),
            "locality": gettext("locality"), "isolated_dwelling": gettext("isolated dwelling"),
            "island": gettext("island"), "address": gettext("address"),
        },
        "base_unavailable": gettext(
            "The base map is unavailable: showing municipality and eldership outlines instead."),
    }


@bp.get("/")
def index() -> str:
    settings: Settings = current_app.config["ATVIRA"]
    conn = reader()
    m = base_map(settings, osm_data=credits_osm(conn))
    extent = get_meta(conn, "extent")
    parts = map_parts(m)
    config = {
        "map": parts["name"],
        "api": url_for("api.facilities"),
        "clusters": url_for("api.facility_clusters"),
        "version": url_for("api.version"),
        "places": url_for("api.place"),
        "outlines": url_for("api.outlines"),
        "detail": url_for("pages.facility", facility_id="__ID__"),
        "markercluster": True,
        # fixed-width so the page's bytes do not depend on where the data lies
        "extent": [f"{v:.4f}" for v in extent] if extent else None,
        "attribution": data_attribution(conn),
        "lang": str(get_locale() or "lt"),
        "categories": {
            slug: {"label": str(CATEGORY_LABELS[slug]), "color": c, "glyph": g} for slug, (c, g) in CATEGORY_STYLE.items()
        },
        "features": {slug: str(label) for slug, label in FEATURE_LABELS.items()},
        "strings": _js_strings(),
    }
    return render_template(
        "map.html", map=parts, config=config, categories=CATEGORY_LABELS, styles=CATEGORY_STYLE,
        features={k: FEATURE_LABELS[k] for k in PARENT_FEATURES},
    )


# --- the detail page -------------------------------------------------------------------------

def _until(start: datetime, end: datetime) -> str:
    """An interval's end as a clock time; midnight after the start is 24:00."""
    return "24:00" if end.time() == end.time().min and end.date() > start.date() else end.strftime("%H:%M")


def hours_view(opening_hours: str | None, *, now: datetime | None = None) -> dict:
    """Open now / closes at, and the coming week in words, in the page's locale."""
    now = now or datetime.now(UTC)
    state = hours_mod.HoursEvaluator(now).state(opening_hours)
    days = hours_mod.week(opening_hours, start=now)
    when = None
    if state.next_change is not None:
        fmt = "HH:mm" if state.next_change.date() == now.astimezone(hours_mod.TIMEZONE).date() else "EEEE HH:mm"
        when = format_datetime(state.next_change, fmt)
    if state.state == "open":
        headline = gettext("Open now") + (" · " + gettext("closes %(when)s", when=when) if when else "")
    elif state.state == "closed":
        headline = gettext("Closed now") + (" · " + gettext("opens %(when)s", when=when) if when else "")
    else:
        headline = gettext("Hours unknown")
    week = []
    for d in days or []:
        if d.intervals:
            text = ", ".join(f"{a.strftime('%H:%M')}–{_until(a, b)}" for a, b in d.intervals)
        elif d.unknown:
            text = gettext("hours unknown")
        else:
            text = gettext("closed")
        week.append({"day": format_date(d.day, "EEEE, MMMM d"), "text": text})
    return {"state": state.state, "headline": headline, "week": week}


# The closest schema.org type per category (Place when none fits).
SCHEMA_TYPES = {
    "kindergarten": "ChildCare", "childcare": "ChildCare", "playground": "Playground", "library": "Library",
    "townhall": "CityHall", "toilet": "PublicToilet", "community_centre": "CivicStructure",
    "culture": "CivicStructure", "day_centre": "CivicStructure", "school": "School",
    "state_institution": "GovernmentBuilding",
}


def json_ld(fac: dict, url: str) -> str:
    """schema.org data as JSON, safe inside <script>: <, > and & are escaped as \\u sequences."""
    kind = next((SCHEMA_TYPES[c] for c in fac.get("categories", []) if c in SCHEMA_TYPES), "Place")
    data: dict = {"@context": "https://schema.org", "@type": kind, "@id": url, "url": url, "name": fac["name"]}
    if fac.get("address"):
        data["address"] = fac["address"]
    if fac.get("lat") is not None:
        data["geo"] = {"@type": "GeoCoordinates", "latitude": fac["lat"], "longitude": fac["lon"]}
    if fac.get("opening_hours"):
        data["openingHours"] = fac["opening_hours"]
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@bp.get("/facility/<facility_id>")
def facility(facility_id: str) -> str:
    settings: Settings = current_app.config["ATVIRA"]
    fac = get_facility(reader(), facility_id)
    if fac is None:
        raise NotFound(gettext("No facility with id %(id)s", id=facility_id[:80]), where="id")
    small = None
    directions = None
    if fac.get("lat") is not None:
        m = base_map(settings, location=(fac["lat"], fac["lon"]), zoom=16, osm_data=credits_osm(reader()))
        folium.CircleMarker((fac["lat"], fac["lon"]), radius=9, color="#a12622", fill=True, fill_opacity=0.9).add_to(m)
        small = map_parts(m)
        directions = (f"https://www.openstreetmap.org/directions?to={fac['lat']:.6f}%2C{fac['lon']:.6f}")
    lang = str(get_locale() or "lt")
    sources = [
        dict(s, fetched=format_datetime(datetime.fromisoformat(s["fetched_at"].replace("Z", "+00:00")), "medium")
             if s.get("fetched_at") else None)
        for s in fac.get("sources", [])
    ]
    fetched = None
    if fac.get("fetched_at"):
        fetched = format_datetime(datetime.fromisoformat(fac["fetched_at"].replace("Z", "+00:00")), "medium")
    verified = None
    if fac.get("last_verified"):
        verified = format_date(datetime.fromisoformat(fac["last_verified"][:10]).date(), "long")
    capacity = (fac.get("extra") or {}).get("capacity")
    url = external_url("pages.facility", facility_id=fac["id"])
    return render_template(
        "facility.html", fac=fac, small=small, directions=directions, hours=hours_view(fac.get("opening_hours")),
        sources=sources, fetched=fetched, verified=verified, json_ld=json_ld(fac, url), lang=lang,
        categories=CATEGORY_LABELS, feature_labels=FEATURE_LABELS, value_labels=FEATURE_VALUE_LABELS,
        sector_labels=SECTOR_LABELS, status_labels=STATUS_LABELS,
        capacity=format_decimal(capacity) if isinstance(capacity, (int, float)) else None,
        attribution=data_attribution(reader()), canonical=url,
        editable=can_edit(current_user(), fac.get("municipality_code")),
    )


# --- the icon ---------------------------------------------------------------------------------

FAVICON = Path(__file__).resolve().parents[2] / "static" / "favicon.ico"


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page says: answer it instead of a 404."""
    return send_file(FAVICON, mimetype="image/vnd.microsoft.icon", max_age=7 * 86400)
