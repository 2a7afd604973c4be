// Loads what is in view from /api/facilities as the user pans and zooms.
// Everything a source wrote is placed with textContent, never innerHTML.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("atvira-config").textContent);
  const map = window[cfg.map];
  const layer = L.layerGroup().addTo(map);
  const list = document.getElementById("results");
  const status = document.getElementById("status");
  const form = document.getElementById("filters");
  let pending = null;

  function params() {
    const b = map.getBounds();
    const p = new URLSearchParams();
    p.set("bbox", [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(","));
    const cat = form.category.value;
    if (cat) p.set("category", cat);
    const q = form.q.value.trim();
    if (q) p.set("q", q);
    p.set("limit", "500");
    return p;
  }

  function label(props) {
    return props.name || props.categories.join(", ");
  }

  async function load() {
    if (pending) pending.abort();
    pending = new AbortController();
    let data;
    try {
      const resp = await fetch(cfg.api + "?" + params().toString(), { signal: pending.signal });
      data = await resp.json();
      if (!resp.ok) throw new Error(data.message || resp.statusText);
    } catch (err) {
      if (err.name === "AbortError") return;
      status.textContent = "Could not load facilities: " + err.message;
      return;
    }
    layer.clearLayers();
    list.replaceChildren();
    for (const f of data.features) {
      if (!f.geometry) continue;
      const [lon, lat] = f.geometry.coordinates;
      const popup = document.createElement("div");
      const strong = document.createElement("strong");
      strong.textContent = label(f.properties);
      popup.appendChild(strong);
      const cats = document.createElement("div");
      cats.textContent = f.properties.categories.join(", ");
      popup.appendChild(cats);
      L.circleMarker([lat, lon], { radius: 6, weight: 1, fillOpacity: 0.8 }).bindPopup(popup).addTo(layer);
      const li = document.createElement("li");
      li.textContent = label(f.properties);
      li.dataset.id = f.id;
      list.appendChild(li);
    }
    status.textContent = data.numberReturned + (data.next ? "+" : "") + " facilities in view";
  }

  map.on("moveend", load);
  form.addEventListener("change", load);
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
})();
