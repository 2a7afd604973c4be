// Leaflet's own control texts (zoom buttons, the attribution prefix) in the page's language:
// folium builds the maps with Leaflet's English defaults, so they are replaced once the maps exist.
// And on a phone every map's credits fold behind a "©" button (OpenStreetMap's guidelines allow
// this), so the attribution covers neither the scale bar nor the legend.
(function () {
  "use strict";
  const data = document.getElementById("leaflet-strings");
  if (!data || !window.L) return;
  const S = JSON.parse(data.textContent);

  function credits(map) {
    const Credits = L.Control.extend({
      options: { position: "bottomright" },
      onAdd() {
        const b = L.DomUtil.create("button", "credits-toggle");
        b.type = "button";
        b.textContent = "©";
        b.title = S.credits;
        b.setAttribute("aria-label", S.credits);
        b.setAttribute("aria-expanded", "false");
        L.DomEvent.disableClickPropagation(b);
        b.addEventListener("click", () => {
          const open = map.getContainer().classList.toggle("credits-open");
          b.setAttribute("aria-expanded", String(open));
        });
        return b;
      },
    });
    new Credits().addTo(map);
  }
  for (const [cls, text] of [["leaflet-control-zoom-in", S.zoom_in], ["leaflet-control-zoom-out", S.zoom_out]]) {
    for (const el of document.getElementsByClassName(cls)) {
      el.title = text;
      el.setAttribute("aria-label", text);
    }
  }
  // folium's maps are globals named after their div; our own scripts' maps register themselves
  const maps = [...document.querySelectorAll(".folium-map")].map((div) => window[div.id]);
  for (const map of [...maps, ...(window.atviraMaps || [])]) {
    if (map && map.attributionControl) {
      const a = document.createElement("a");
      a.href = "https://leafletjs.com";
      a.title = S.leaflet;
      a.textContent = "Leaflet";
      map.attributionControl.setPrefix(a.outerHTML);
      credits(map);
    }
  }
})();
