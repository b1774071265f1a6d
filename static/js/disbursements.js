/* A disbursement's page follows its batches live: the bar moves as each batch is confirmed,
   and the page reloads once the whole disbursement settles (or a batch fails, to offer Retry). */
(function () {
  "use strict";
  var root = document.getElementById("disbursement");
  if (!root || !window.Portal) return;
  var id = Number(root.dataset.disbursementId);
  var fill = document.getElementById("progress-fill");
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-text");
  var shownFailures = document.querySelectorAll('#batches [data-status="failed"]').length;
  if (fill) fill.style.width = fill.dataset.percent + "%";
  var words = window.PortalStrings || {
    t: function (key, fallback) { return fallback; },
    label: function (table, status, fallback) { return fallback; }
  };
  // Counts in the page's digits, as the server writes them (Devanagari on a Nepali page).
  var numbers = new Intl.NumberFormat(document.documentElement.lang || undefined);
  function n(value) { return numbers.format(value); }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge--" + status;
    span.dataset.status = status;
    span.textContent = words.label("tx_labels", status, status);
    return span;
  }

  function show(p) {
    if (p.id !== id) return;
    if (p.status !== root.dataset.status && root.dataset.status !== "draft" && p.status !== "running") {
      window.location.reload();  // settled: the page shows the outcome best
      return;
    }
    if (root.dataset.status === "draft" && p.status !== "draft") { window.location.reload(); return; }
    if (p.failed_batches > shownFailures) { window.location.reload(); return; }
    if (fill) {
      fill.style.width = p.percent + "%";
      bar.setAttribute("aria-valuenow", p.percent);
      text.textContent =
        words.t("disbursement_progress", "{done} of {num} people confirmed ({percent}%)",
          { done: n(p.people_done), num: n(p.people), percent: n(p.percent) }) + " · " +
        words.t("disbursement_batches", "{done} of {num} batches",
          { done: n(p.confirmed_batches), num: n(p.batches) }) +
        (p.failed_batches
          ? " · " + words.t("disbursement_failed", "{num} failed", { num: n(p.failed_batches) })
          : "");
    }
    p.batch_states.forEach(function (b) {
      var row = document.querySelector('#batches tr[data-batch-id="' + b.id + '"]');
      if (!row) return;
      var cell = row.querySelector('[data-field="status"]');
      if (cell && cell.firstElementChild && cell.firstElementChild.dataset.status !== b.status) {
        cell.textContent = "";
        cell.appendChild(badge(b.status));
      }
      var txCell = row.querySelector('[data-field="tx"]');
      if (txCell && b.tx_id && !txCell.textContent.trim()) {
        var a = document.createElement("a");
        a.href = "/projects/" + p.project_id + "/transactions/" + b.tx_id;
        a.textContent = "#" + b.tx_id;
        txCell.appendChild(a);
      }
    });
  }

  Portal.on("disbursement.progress", show);
  Portal.subscribe("disbursement", { id: id }, function (snapshot) { show(snapshot.progress); });
})();
