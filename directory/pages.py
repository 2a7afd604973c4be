"""HTML pages. The map page never embeds facilities: its script asks the API for what is in view,
so the page weighs the same with ten facilities or a million."""

from __future__ import annotations

import folium
from flask import Blueprint, current_app, render_template, url_for

from .config import Settings
from .security import add_nonces
from .store import get_meta
from .model import CATEGORIES, FEATURES

bp = Blueprint("pages", __name__)

# Lithuania's extent, for the first view.
LT_CENTER = (55.17, 23.88)


def local_leaflet(m: folium.Map) -> folium.Map:
    """Serve Leaflet from this app instead of folium's CDN defaults (the page must work offline)."""
    m.default_js = [("leaflet", url_for("static", filename="vendor/leaflet/leaflet.js"))]
    m.default_css = [("leaflet_css", url_for("static", filename="vendor/leaflet/leaflet.css"))]
    return m


def base_map(settings: Settings, *, location: tuple[float, float] = LT_CENTER, zoom: int = 7) -> folium.Map:
    """A folium map with the configured tiles (or none) and only local assets."""
    m = folium.Map(location=location, zoom_start=zoom, tiles=None, control_scale=True)
    if settings.tile_url:
        folium.TileLayer(tiles=settings.tile_url, attr=settings.tile_attribution, name="base", max_zoom=19).add_to(m)
    return local_leaflet(m)


def map_parts(m: folium.Map) -> dict[str, str]:
    """folium's header (assets), body (the map div) and script, to place in our own template."""
    root = m.get_root()
    root.render()
    return {
        "head": add_nonces(root.header.render()),
        "body": add_nonces(root.html.render()),
        "script": root.script.render(),
        "name": m.get_name(),
    }


@bp.get("/")
def index() -> str:
    settings: Settings = current_app.config["ATVIRA"]
    m = base_map(settings)
    extent = get_meta(current_app.extensions["atvira_readers"].get(), "extent")
    if extent:  # open on the data (a Helsinki-only store opens on Helsinki)
        m.fit_bounds([[extent[1], extent[0]], [extent[3], extent[2]]])
    parts = map_parts(m)
    return render_template("map.html", map=parts, categories=CATEGORIES, features=FEATURES)
