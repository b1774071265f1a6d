/* Approvals, live: the count on the nav link and the home page, the "Waiting for you" list,
   and the request rows on funding and disbursement pages. An event says only which request
   changed; what this user sees is read again from the server, which decides it. */
(function () {
  "use strict";
  if (!window.Portal) return;
  var CHANGED = "approval.changed";
  var words = window.PortalStrings || {
    t: function (key, fallback) { return fallback; },
    label: function (table, status, fallback) { return fallback; },
    number: function (n) { return String(n); }
  };

  function setCount(n) {
    document.querySelectorAll("[data-approvals-count]").forEach(function (el) {
      el.textContent = words.number(n);
      el.hidden = !n;
    });
    var home = document.querySelector("[data-approvals-count-home]");
    if (home) {
      home.textContent = words.number(n);
      home.parentElement.classList.toggle("stat--alert", n > 0);
    }
  }

  var list = document.getElementById("approvals-waiting");
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch("/approvals/waiting", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) return;
        setCount(body.waiting);
        // Leave a list alone while someone is typing a reason into it.
        if (list && !list.contains(document.activeElement)) list.innerHTML = body.html;
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  function showOnSubject(req) {
    // A funding or disbursement page: the request's own row, or a reload to show a new one.
    var here = document.querySelector("[data-approvals-here]");
    var page = document.getElementById("chain-page") || document.getElementById("disbursement");
    var row = document.querySelector('[data-approvals-here] [data-approval-id="' + req.id + '"]');
    if (row) {
      var status = row.querySelector('[data-field="status"]');
      if (status) {
        status.textContent = words.label("approval_labels", req.status, req.status);
        status.dataset.status = req.status;
        status.className = "badge badge--" + req.status;
      }
      if (req.status !== "pending") {
        var waiting = row.querySelector('[data-field="waiting"]');
        if (waiting) {
          waiting.textContent = req.status === "executed"
            ? words.t("approval_started", "Approved and started.")
            : words.t("approval_no_longer", "No longer waiting: {status}.",
                { status: words.label("approval_labels", req.status, req.status) });
        }
      }
      return;
    }
    if (!here && page && req.status === "pending") {
      var kind = page.id === "chain-page" ? "funding" : "disbursement_start";
      var subject = Number(page.dataset.projectId || page.dataset.disbursementId);
      if (req.kind === kind && req.subject_id === subject) window.location.reload();
    }
  }

  Portal.on(CHANGED, function (req) {
    refresh();
    showOnSubject(req);
  });
  Portal.subscribe("approvals", {}, function (snapshot) {
    if (snapshot && typeof snapshot.waiting === "number") setCount(snapshot.waiting);
    if (list) refresh();
  });
})();
