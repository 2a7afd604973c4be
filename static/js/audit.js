// Progressive enhancement for the audit table: sort in place on a header click (the header
// links still sort on the server without JavaScript), and apply the form on change.
(function () {
  "use strict";
  var table = document.getElementById("municipalities");
  if (table) {
    table.querySelectorAll("thead th[data-key]").forEach(function (th, col) {  // col = cell index
      var link = th.querySelector("a");
      if (!link) { return; }
      link.addEventListener("click", function (ev) {
        ev.preventDefault();
        var desc = th.getAttribute("aria-sort") !== "descending" && (th.getAttribute("aria-sort") === "ascending" || th.getAttribute("data-first") !== "asc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var ca = a.cells[col], cb = b.cells[col];
          var va = ca.getAttribute("data-v"), vb = cb.getAttribute("data-v");
          if (va === null) { va = ca.textContent.trim(); vb = cb.textContent.trim(); }
          var empty = (va === "") - (vb === "");
          if (empty) { return empty; }  // unknown last in either direction
          var na = parseFloat(va), nb = parseFloat(vb);
          var cmp = (!isNaN(na) && !isNaN(nb)) ? na - nb : va.localeCompare(vb, "lt");
          return desc ? -cmp : cmp;
        });
        rows.forEach(function (r) { body.appendChild(r); });
        table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var url = new URL(link.href);
        url.searchParams.set("sort", (desc ? "-" : "") + th.getAttribute("data-key"));
        history.replaceState(null, "", url.pathname + url.search);
      });
    });
  }
  document.querySelectorAll("form.controls select").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });
})();
