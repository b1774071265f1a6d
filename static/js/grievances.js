/* Grievances change live: a row's status, priority and assignee on the list, the badge on a
   case's page. The server picks the rooms (topic "grievances") and sends ids and workflow
   fields only; a new case, or a new assignee's name, asks for a reload. */
(function () {
  "use strict";
  if (!window.Portal) return;
  var table = document.getElementById("grievances-table");
  var detail = document.getElementById("grievance-detail");
  var fresh = document.getElementById("grievances-new");
  var changed = document.getElementById("grievance-changed");
  if (!table && !detail && !fresh) return;
  var LABELS = { new: "New", assigned: "Assigned", in_progress: "In progress", resolved: "Resolved", closed: "Closed" };
  var T = window.PortalStrings;

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge--" + status;
    span.dataset.status = status;
    span.textContent = T ? T.label("grievance_labels", status, LABELS[status] || status) : (LABELS[status] || status);
    return span;
  }

  function paint(root, g) {
    if (root.dataset.status === g.status) return false;
    root.dataset.status = g.status;
    var cell = root.querySelector('[data-field="status"]');
    if (cell) { cell.textContent = ""; cell.appendChild(badge(g.status)); }
    return true;
  }

  function show(g, fromSnapshot) {
    if (detail) {
      if (Number(detail.dataset.grievanceId) === g.id && paint(detail, g) && changed && !fromSnapshot) changed.hidden = false;
      return;
    }
    var row = table && table.querySelector('tr[data-grievance-id="' + g.id + '"]');
    if (row) { paint(row, g); return; }
    if (fresh && !fromSnapshot) fresh.hidden = false;
  }

  Portal.on("grievance.updated", function (g) { show(g, false); });
  Portal.subscribe("grievances", {}, function (snapshot) {
    (snapshot.grievances || []).forEach(function (g) { show(g, true); });
  });
})();
