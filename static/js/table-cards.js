/* Tables as stacked cards on a phone. Below 600 px every table in a .table-wrap shows each row
   as a card (static/css/portal.css, "Tables as cards"); this labels each cell with its
   column's header (data-label), so a card reads "Status  Confirmed" rather than a bare value.
   Rows added later by live updates are labelled as they arrive. Without this script the cells
   still stack, unlabelled, and fit the screen. */
(function () {
  "use strict";
  var SELECTOR = ".table-wrap > table";

  /* A header's visible words: text that is only for screen readers labels nothing. */
  function visibleText(th) {
    var copy = th.cloneNode(true);
    Array.prototype.forEach.call(copy.querySelectorAll(".sr-only"), function (hidden) {
      hidden.remove();
    });
    return copy.textContent.replace(/\s+/g, " ").trim();
  }

  function headers(table) {
    var row = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    var names = [];
    if (!row) return names;
    Array.prototype.forEach.call(row.cells, function (th) {
      var text = visibleText(th);
      for (var i = 0; i < (th.colSpan || 1); i += 1) names.push(text);
    });
    return names;
  }

  function label(table) {
    var names = headers(table);
    if (!names.length) return;
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var name = (cell.colSpan || 1) === 1 ? names[column] : "";  // a spanning cell is a note
          if (name && cell.getAttribute("data-label") !== name) cell.setAttribute("data-label", name);
          if (!name && cell.hasAttribute("data-label")) cell.removeAttribute("data-label");
          column += cell.colSpan || 1;
        });
      });
    });
  }

  function watch(table) {
    label(table);
    if (!window.MutationObserver) return;
    new MutationObserver(function () { label(table); }).observe(table, { childList: true, subtree: true });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll(SELECTOR), watch);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
