/* A project's contracts page reloads when deployment or funding moves on; its Transactions
   page updates rows in place and adds new ones at the top. */
(function () {
  "use strict";
  if (!window.Portal) return;
  var page = document.getElementById("chain-page");
  var table = document.getElementById("tx-table");
  var holder = page || table;
  if (!holder) return;
  var projectId = Number(holder.dataset.projectId);
  var words = window.PortalStrings || {
    t: function (key, fallback) { return fallback; },
    label: function (table, status, fallback) { return fallback; }
  };
  var numbers = new Intl.NumberFormat(document.documentElement.lang || undefined);

  function text(el, value) { if (el) el.textContent = value; }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge--" + status;
    span.dataset.status = status;
    span.textContent = words.label("tx_labels", status, status);
    return span;
  }

  function newRow(tx) {
    var row = document.createElement("tr");
    row.dataset.txId = tx.id;
    var link = document.createElement("a");
    link.href = "/projects/" + projectId + "/transactions/" + tx.id;
    link.textContent = tx.id;
    var cells = [link, tx.purpose, "", tx.nonce === null ? "—" : String(tx.nonce), "", "", "", words.t("just_now", "just now")];
    var fields = [null, null, "status", null, "hash", "block", "gas", null];
    var narrow = [false, false, false, true, false, true, true, true];
    cells.forEach(function (content, i) {
      var td = document.createElement("td");
      if (fields[i]) td.dataset.field = fields[i];
      if (narrow[i]) td.className = "hide-narrow";
      if (content && content.nodeType) td.appendChild(content); else td.textContent = content;
      row.appendChild(td);
    });
    return row;
  }

  function showTx(tx) {
    if (!table || tx.project_id !== projectId) return;
    var filter = table.dataset.filter;
    var row = table.querySelector('tr[data-tx-id="' + tx.id + '"]');
    if (!row) {
      if (filter && filter !== tx.status) return;
      var empty = table.querySelector("tr.empty");
      if (empty) empty.remove();
      row = newRow(tx);
      table.tBodies[0].insertBefore(row, table.tBodies[0].firstChild);
    }
    var status = row.querySelector('[data-field="status"]');
    if (status) { status.textContent = ""; status.appendChild(badge(tx.status)); }
    text(row.querySelector('[data-field="hash"]'), tx.tx_hash ? tx.tx_hash.slice(0, 10) + "…" : "—");
    text(row.querySelector('[data-field="block"]'), tx.block_number || "");
    text(row.querySelector('[data-field="gas"]'), tx.gas_used ? numbers.format(tx.gas_used) : "");
  }

  Portal.on("chain.tx", showTx);
  Portal.on("chain.project", function (chain) {
    if (page && chain.project_id === projectId) window.location.reload();
  });
  Portal.subscribe("transactions", { project_id: projectId }, function (snapshot) {
    // A page that reconnects after missing the change catches up from the snapshot.
    if (page && snapshot.chain && snapshot.chain.status !== page.dataset.status) window.location.reload();
  });
})();
