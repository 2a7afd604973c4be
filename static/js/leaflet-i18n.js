// Leaflet's own control texts (zoom buttons, the attribution prefix) in the page's language:
// folium builds the maps with Leaflet's English defaults, so they are replaced once the maps exist.
(function () {
  "use strict";
  const data = document.getElementById("leaflet-strings");
  if (!data || !window.L) return;
  const S = JSON.parse(data.textContent);
  for (const [cls, text] of [["leaflet-control-zoom-in", S.zoom_in], ["leaflet-control-zoom-out", S.zoom_out]]) {
    for (const el of document.getElementsByClassName(cls)) {
      el.title = text;
      el.setAttribute("aria-label", text);
    }
  }
  for (const div of document.querySelectorAll(".folium-map")) {
    const map = window[div.id];
    if (map && map.attributionControl) {
      const a = document.createElement("a");
      a.href = "https://leafletjs.com";
      a.title = S.leaflet;
      a.textContent = "Leaflet";
      map.attributionControl.setPrefix(a.outerHTML);
    }
  }
})();
