/* Payout statuses follow the provider and the statements live: rows of the payouts list, the
   counts above it, and the payout page's badge. The server picks the rooms (topic "payouts"). */
(function () {
  "use strict";
  if (!window.Portal) return;
  var table = document.getElementById("payouts-table");
  var detail = document.getElementById("payout-detail");
  if (!table && !detail) return;

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge--" + status;
    span.dataset.status = status;
    span.textContent = status;
    return span;
  }

  function count(status, delta) {
    var cell = document.querySelector('[data-count="' + status + '"]');
    if (cell) cell.textContent = String(Math.max(0, Number(cell.textContent || 0) + delta));
  }

  function paint(root, payout) {
    var was = root.dataset.status;
    if (was && was !== payout.status && table) { count(was, -1); count(payout.status, 1); }
    root.dataset.status = payout.status;
    var status = root.querySelector('[data-field="status"]');
    if (status) { status.textContent = ""; status.appendChild(badge(payout.status)); }
    var reason = root.querySelector('[data-field="reason"]');
    if (reason) reason.textContent = payout.failure_reason || "";
    var books = root.querySelector('[data-field="books"]');
    if (books && payout.books) books.textContent = payout.books;
  }

  function show(payout) {
    if (detail && Number(detail.dataset.payoutId) === payout.id) paint(detail, payout);
    if (!table) return;
    var row = table.querySelector('tr[data-payout-id="' + payout.id + '"]');
    if (row) paint(row, payout);
  }

  Portal.on("payout.updated", show);
  Portal.subscribe("payouts", {}, function (snapshot) {
    // A page that reconnects after missing changes catches up from the snapshot.
    (snapshot.payouts || []).forEach(show);
  });
})();
