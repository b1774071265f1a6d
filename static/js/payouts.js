/* Payout statuses follow the provider and the statements live: rows of the payouts list, the
   counts above it, and the payout page's badge. The server picks the rooms (topic "payouts").
   Words and digits are the page's own (#i18n-strings, PortalStrings): events carry codes. */
(function () {
  "use strict";
  if (!window.Portal) return;
  var table = document.getElementById("payouts-table");
  var detail = document.getElementById("payout-detail");
  if (!table && !detail) return;
  var S = window.PortalStrings;
  var digits = S ? S.t("digits", "0123456789") : "0123456789";

  function localDigits(n) {
    return String(n).replace(/[0-9]/g, function (d) { return digits.charAt(Number(d)); });
  }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge--" + status;
    span.dataset.status = status;
    span.textContent = S ? S.label("payout_labels", status, status) : status;
    return span;
  }

  function count(status, delta) {
    var cell = document.querySelector('[data-count="' + status + '"]');
    if (!cell) return;
    // The count as a number is kept beside its text, which is in the page's digits.
    var n = Math.max(0, Number(cell.dataset.n || 0) + delta);
    cell.dataset.n = String(n);
    cell.textContent = localDigits(n);
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
    if (books && payout.books) books.textContent = S ? S.label("payout_books", payout.books, payout.books) : payout.books;
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
