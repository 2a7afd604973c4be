// Pick a point for "add a place" / "moved": tap the map or type the coordinates (keyboard users
// type; the inputs and the marker stay in step). No inline handlers: the CSP forbids them.
(function () {
  "use strict";
  var el = document.getElementById("pick-map");
  var cfgEl = document.getElementById("pick-config");
  if (!el || !cfgEl || typeof L === "undefined") { return; }
  var cfg = JSON.parse(cfgEl.textContent);
  var lat = document.getElementById("f-lat");
  var lon = document.getElementById("f-lon");
  var status = document.getElementById("pick-status");
  var map = L.map(el, { minZoom: 2, maxZoom: 19, keyboard: true }).setView(cfg.center, cfg.zoom);
  // leaflet-i18n.js puts Leaflet's own texts (credits prefix, zoom buttons) in the page's language
  (window.atviraMaps = window.atviraMaps || []).push(map);
  if (cfg.tiles) {
    L.tileLayer(cfg.tiles, { attribution: cfg.attribution, maxZoom: 19 }).addTo(map);
  }
  var marker = null;

  function show(latlng, fromInputs) {
    if (!marker) {
      marker = L.marker(latlng, { draggable: true, keyboard: false, title: cfg.picked, alt: cfg.picked }).addTo(map);
      marker.on("dragend", function () { show(marker.getLatLng(), false); });
    } else {
      marker.setLatLng(latlng);
    }
    if (!fromInputs) {
      lat.value = latlng.lat.toFixed(6);
      lon.value = latlng.lng.toFixed(6);
    }
    el.dataset.picked = "1";
    status.textContent = cfg.hint.replace("{lat}", Number(latlng.lat).toFixed(5)).replace("{lon}", Number(latlng.lng).toFixed(5));
  }

  function fromInputs() {
    var a = parseFloat(lat.value), b = parseFloat(lon.value);
    if (isFinite(a) && isFinite(b) && Math.abs(a) <= 90 && Math.abs(b) <= 180) {
      show(L.latLng(a, b), true);
      map.panTo([a, b]);
    }
  }

  map.on("click", function (e) { show(e.latlng, false); });
  lat.addEventListener("change", fromInputs);
  lon.addEventListener("change", fromInputs);
  if (lat.value && lon.value) { fromInputs(); }
  var errors = document.getElementById("form-errors");
  if (errors) { errors.focus(); }
}());
