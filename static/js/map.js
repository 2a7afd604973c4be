// The parents' map: loads only what is in view as the user pans and zooms.
// A view with few places shows them as markers (clustered in the browser) and lists them; a view
// with too many shows the server's grid counts instead, so 1M places never reach the browser.
// Filters, the view and "near" live in the URL, so a view can be shared.
// Everything a source wrote is placed with textContent, never innerHTML.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("atvira-config").textContent);
  const S = cfg.strings;
  const map = window[cfg.map];
  const POINT_LIMIT = 400; // draw points (and list them) up to this many in view
  const LIST_LIMIT = 100; // near-me list length when the view is clustered
  const numbers = new Intl.NumberFormat(cfg.lang);
  const form = document.getElementById("filters");
  const list = document.getElementById("results");
  const status = document.getElementById("status");
  const nearBtn = document.getElementById("near-me");
  const nearClear = document.getElementById("near-clear");
  const placeInput = document.getElementById("place");
  const placeGo = document.getElementById("place-go");
  const placeOptions = document.getElementById("place-options");
  const understoodEl = document.getElementById("q-understood");
  let suggested = new Map(); // option text -> the /api/places suggestion it stands for
  let lastPlace = ""; // the place the search text was last understood as (fit the map once; null: keep the URL's view)
  let near = null; // {lon, lat, label}
  let youMarker = null;
  let pending = null;

  if (cfg.attribution) map.attributionControl.addAttribution(cfg.attribution); // built and escaped server-side
  const points = (cfg.markercluster && L.markerClusterGroup)
    ? L.markerClusterGroup({ disableClusteringAtZoom: 16, maxClusterRadius: 40, showCoverageOnHover: false, chunkedLoading: true })
    : L.layerGroup();
  const bubbles = L.layerGroup();
  const legend = document.querySelector(".legend");
  if (legend && window.matchMedia("(max-width: 700px)").matches) legend.open = false; // room for the map on a phone
  points.addTo(map);
  bubbles.addTo(map);

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, k) => (k in values ? String(values[k]) : ""));
  }

  // --- state <-> URL ---------------------------------------------------------------------
  function filterParams() {
    const p = new URLSearchParams();
    const q = form.q.value.trim();
    if (q) p.set("q", q);
    if (form.category.value) p.set("category", form.category.value);
    const feats = Array.from(form.querySelectorAll("input[name=features]:checked")).map((i) => i.value);
    if (feats.length) p.set("features", feats.join(","));
    if (form.open.value) p.set("open", form.open.value);
    return p;
  }

  function nearParam() {
    return near.lon.toFixed(6) + "," + near.lat.toFixed(6);
  }

  function writeUrl() {
    const p = filterParams();
    if (near) p.set("near", nearParam());
    const c = map.getCenter();
    p.set("ll", c.lat.toFixed(5) + "," + c.lng.toFixed(5));
    p.set("z", String(map.getZoom()));
    history.replaceState(null, "", "?" + p.toString());
    for (const a of document.querySelectorAll("nav.langs a[hreflang]")) {
      const lp = new URLSearchParams(p);
      lp.set("lang", a.getAttribute("hreflang"));
      a.setAttribute("href", "?" + lp.toString());
    }
  }

  function readUrl() {
    const u = new URLSearchParams(location.search);
    form.q.value = u.get("q") || "";
    form.category.value = u.get("category") || "";
    form.open.value = u.get("open") || "";
    const feats = (u.get("features") || "").split(",");
    for (const i of form.querySelectorAll("input[name=features]")) i.checked = feats.includes(i.value);
    const n = (u.get("near") || "").split(",").map(Number);
    if (n.length === 2 && n.every(Number.isFinite)) setNearPoint(n[0], n[1], S.your_location);
    const ll = (u.get("ll") || "").split(",").map(Number);
    const z = Number(u.get("z"));
    if (ll.length === 2 && ll.every(Number.isFinite) && Number.isInteger(z)) {
      map.setView([ll[0], ll[1]], z, { animate: false });
      return true;
    }
    return false;
  }

  // --- drawing -----------------------------------------------------------------------------
  function category(props) {
    const slug = props.categories && props.categories[0];
    return cfg.categories[slug] || { label: slug || "", color: "#333", glyph: "?" };
  }

  function badge(cat) {
    const el = document.createElement("span");
    el.className = "badge";
    el.style.background = cat.color;
    el.textContent = cat.glyph;
    return el;
  }

  function distanceText(m) {
    if (m == null) return "";
    if (m < 1000) return fmt(S.m, { d: numbers.format(Math.round(m / 10) * 10) });
    return fmt(S.km, { d: new Intl.NumberFormat(cfg.lang, { maximumFractionDigits: 1 }).format(m / 1000) });
  }

  function detailUrl(id) {
    return cfg.detail.replace("__ID__", encodeURIComponent(id));
  }

  function describe(f) {
    const p = f.properties;
    const frag = document.createDocumentFragment();
    const a = document.createElement("a");
    a.href = detailUrl(f.id);
    a.className = "name";
    a.textContent = p.name || category(p).label;
    frag.appendChild(a);
    const meta = document.createElement("span");
    meta.className = "meta";
    const cats = document.createElement("span");
    cats.textContent = (p.categories || []).map((c) => (cfg.categories[c] || { label: c }).label).join(", ");
    meta.appendChild(cats);
    const st = document.createElement("span");
    st.className = "state state-" + (p.open_state || "unknown");
    st.textContent = S[p.open_state || "unknown"];
    meta.appendChild(st);
    if (p.distance_m != null) {
      const d = document.createElement("span");
      d.className = "distance";
      d.textContent = distanceText(p.distance_m);
      meta.appendChild(d);
    }
    frag.appendChild(meta);
    return frag;
  }

  function drawPoints(data) {
    bubbles.clearLayers();
    points.clearLayers();
    const markers = [];
    for (const f of data.features) {
      if (!f.geometry) continue;
      const [lon, lat] = f.geometry.coordinates;
      const cat = category(f.properties);
      const icon = L.divIcon({ className: "atvira-marker", html: badge(cat), iconSize: [26, 26], iconAnchor: [13, 13] });
      const name = f.properties.name || cat.label;
      const popup = document.createElement("div");
      popup.className = "popup";
      popup.appendChild(describe(f));
      markers.push(L.marker([lat, lon], { icon, title: name, alt: name, keyboard: true }).bindPopup(popup));
    }
    if (points.addLayers) points.addLayers(markers);
    else markers.forEach((m) => points.addLayer(m));
  }

  function drawBubbles(cl) {
    points.clearLayers();
    bubbles.clearLayers();
    for (const [lon, lat, n] of cl.clusters) {
      const size = n < 100 ? 34 : n < 10000 ? 42 : 52;
      const el = document.createElement("span");
      el.textContent = numbers.format(n);
      const icon = L.divIcon({ className: "atvira-cluster", html: el, iconSize: [size, size], iconAnchor: [size / 2, size / 2] });
      const title = fmt(S.zoom_to, { n: numbers.format(n) });
      L.marker([lat, lon], { icon, title, alt: title, keyboard: true })
        .on("click", () => map.setView([lat, lon], Math.min(map.getZoom() + 3, 18)))
        .addTo(bubbles);
    }
  }

  function listFeatures(features) {
    list.replaceChildren();
    for (const f of features) {
      const li = document.createElement("li");
      li.dataset.id = f.id;
      li.appendChild(badge(category(f.properties)));
      li.appendChild(describe(f));
      list.appendChild(li);
    }
  }

  function listClusters(cl) {
    list.replaceChildren();
    const top = cl.clusters.slice().sort((a, b) => b[2] - a[2]).slice(0, 10);
    for (const [lon, lat, n] of top) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "linklike";
      b.textContent = fmt(S.zoom_to, { n: numbers.format(n) });
      b.addEventListener("click", () => map.setView([lat, lon], Math.min(map.getZoom() + 3, 18)));
      li.appendChild(b);
      list.appendChild(li);
    }
  }

  // --- loading -----------------------------------------------------------------------------
  async function getJSON(url, signal) {
    const resp = await fetch(url, { signal, headers: { Accept: "application/json" } });
    const data = await resp.json();
    if (!resp.ok) throw new Error((data.where ? data.where + ": " : "") + (data.message || resp.statusText));
    return data;
  }

  function bboxParam() {
    const b = map.getBounds();
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)]
      .map((v) => v.toFixed(6)).join(",");
  }

  async function load() {
    if (pending) pending.abort();
    const ctl = (pending = new AbortController());
    writeUrl();
    status.textContent = S.loading;
    const base = filterParams();
    base.set("bbox", bboxParam());
    try {
      const cp = new URLSearchParams(base);
      cp.set("zoom", String(map.getZoom()));
      const cl = await getJSON(cfg.clusters + "?" + cp.toString(), ctl.signal);
      showUnderstood(cl.interpreted);
      const prefix = near ? fmt(S.nearest, { place: near.label }) + ". " : "";
      if (cl.total <= POINT_LIMIT || map.getZoom() >= 17) {
        const pp = new URLSearchParams(base);
        pp.set("limit", String(POINT_LIMIT));
        if (near) pp.set("near", nearParam());
        const data = await getJSON(cfg.api + "?" + pp.toString(), ctl.signal);
        drawPoints(data);
        listFeatures(data.features);
        status.textContent = prefix + (data.features.length === 0 ? S.none
          : data.truncated ? fmt(S.in_view_more, { n: numbers.format(data.numberReturned), shown: numbers.format(data.numberReturned) })
            : fmt(S.in_view, { n: numbers.format(data.numberReturned) }));
      } else {
        drawBubbles(cl);
        if (near) {
          const np = new URLSearchParams(base);
          np.set("limit", String(LIST_LIMIT));
          np.set("near", nearParam());
          const data = await getJSON(cfg.api + "?" + np.toString(), ctl.signal);
          listFeatures(data.features);
          status.textContent = prefix + fmt(S.in_view_more, { n: numbers.format(cl.total), shown: numbers.format(data.numberReturned) });
        } else {
          listClusters(cl);
          status.textContent = fmt(S.clustered, { n: numbers.format(cl.total) });
        }
      }
    } catch (err) {
      if (err.name === "AbortError") return;
      status.textContent = S.error + " " + err.message;
    }
  }

  // --- how the search text was understood ------------------------------------------------------
  // The API says which need words, place and name words it read from `q`; say so under the box,
  // and the first time a place is understood, show that place (the view might be elsewhere).
  function showUnderstood(it) {
    if (!it || (!it.categories.length && !it.features.length && !it.place)) {
      understoodEl.textContent = "";
      return;
    }
    const parts = [];
    for (const c of it.categories) parts.push((cfg.categories[c] || { label: c }).label);
    for (const f of it.features) parts.push(cfg.features[f] || f);
    if (it.place) parts.push(placeLabel(it.place));
    if (it.words) parts.push(fmt(S.name_words, { w: it.words }));
    understoodEl.textContent = fmt(S.understood, { what: parts.join(" · ") });
    const key = it.place ? it.place.name + "|" + it.place.kind : "";
    if (key && key !== lastPlace) {
      const shared = lastPlace === null; // a shared link's own view wins over the place's
      lastPlace = key;
      if (shared) return;
      const b = it.place.bbox;
      if (b) map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { animate: false });
      else map.setView([it.place.lat, it.place.lon], 12, { animate: false });
    }
    if (!key) lastPlace = "";
  }

  function placeLabel(p) {
    const kind = S.kinds[p.kind] || p.kind;
    const where = p.municipality && p.municipality !== p.name ? ", " + p.municipality : "";
    return p.name + " (" + kind + where + ")";
  }

  // --- place suggestions as the user types -----------------------------------------------------
  let suggestTimer = null;
  let suggestCtl = null;
  async function suggestPlaces() {
    const text = placeInput.value.trim();
    if (suggested.has(placeInput.value) || text.length < 2) return; // a chosen option, or too short
    if (suggestCtl) suggestCtl.abort();
    const ctl = (suggestCtl = new AbortController());
    try {
      const found = await getJSON(cfg.places + "?" + new URLSearchParams({ q: text, limit: "8" }).toString(), ctl.signal);
      suggested = new Map();
      placeOptions.replaceChildren();
      for (const p of found.suggestions) {
        const label = placeLabel(p);
        if (suggested.has(label)) continue;
        suggested.set(label, p);
        const o = document.createElement("option");
        o.value = label;
        placeOptions.appendChild(o);
      }
    } catch (err) {
      if (err.name !== "AbortError") placeOptions.replaceChildren();
    }
  }
  placeInput.addEventListener("input", () => {
    if (suggested.has(placeInput.value)) { goPlace(); return; } // an option was picked from the list
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(suggestPlaces, 200);
  });

  // --- near me -------------------------------------------------------------------------------
  function setNearPoint(lon, lat, label) {
    near = { lon, lat, label };
    if (youMarker) youMarker.remove();
    youMarker = L.circleMarker([lat, lon], { radius: 8, color: "#0b4f6c", weight: 3, fillColor: "#fff", fillOpacity: 1 })
      .bindTooltip(S.you_are_here).addTo(map);
    nearClear.hidden = false;
  }

  async function goNear(lon, lat, label) {
    setNearPoint(lon, lat, label);
    const p = filterParams();
    p.set("near", nearParam());
    p.set("limit", "20");
    try {
      const data = await getJSON(cfg.api + "?" + p.toString());
      const pts = data.features.filter((f) => f.geometry).map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]);
      pts.push([lat, lon]);
      if (pts.length > 1) map.fitBounds(pts, { padding: [30, 30], maxZoom: 16, animate: false });
      else map.setView([lat, lon], 15, { animate: false });
    } catch (err) {
      map.setView([lat, lon], 15, { animate: false });
    }
    load();
  }

  nearBtn.addEventListener("click", () => {
    if (!navigator.geolocation) {
      status.textContent = S.geo_unsupported;
      placeInput.focus();
      return;
    }
    status.textContent = S.loading;
    navigator.geolocation.getCurrentPosition(
      (pos) => goNear(pos.coords.longitude, pos.coords.latitude, S.your_location),
      () => { status.textContent = S.geo_denied; placeInput.focus(); },
      { timeout: 15000, maximumAge: 60000 },
    );
  });

  async function goPlace() {
    const text = placeInput.value.trim();
    if (!text) return;
    const chosen = suggested.get(placeInput.value);
    if (chosen) {
      goNear(chosen.lon, chosen.lat, chosen.name);
      return;
    }
    try {
      const found = await getJSON(cfg.places + "?" + new URLSearchParams({ q: text }).toString());
      goNear(found.lon, found.lat, found.name);
    } catch (err) {
      status.textContent = S.place_not_found;
    }
  }
  placeGo.addEventListener("click", goPlace);
  placeInput.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); goPlace(); } });
  nearClear.addEventListener("click", () => {
    near = null;
    if (youMarker) youMarker.remove();
    youMarker = null;
    nearClear.hidden = true;
    load();
  });

  // --- wiring --------------------------------------------------------------------------------
  let typing = null;
  form.addEventListener("change", (e) => { if (e.target !== placeInput) load(); });
  form.q.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(load, 300); });
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  const hadView = readUrl();
  if (hadView && form.q.value) lastPlace = null; // see showUnderstood
  if (!hadView && cfg.extent) {
    const e = cfg.extent.map(Number);
    map.fitBounds([[e[1], e[0]], [e[3], e[2]]], { animate: false });
  }
  map.on("moveend", load);
  load();
})();
