/* The Jobs list and job detail pages follow their jobs live. */
(function () {
  "use strict";
  if (!window.Portal) return;
  var table = document.getElementById("jobs-table");
  var detail = document.getElementById("job-detail");

  function badge(status, gone) {
    var span = document.createElement("span");
    // A running job whose lease expired: its worker is gone (the server decides, not the clock here).
    span.className = "badge badge--" + (gone ? "stuck" : status);
    span.dataset.status = status;
    span.textContent = gone ? "worker gone" : status;
    return span;
  }

  function paint(root, job, quiet) {
    var status = root.querySelector('[data-field="status"]');
    if (status) { status.textContent = ""; status.appendChild(badge(job.status, job.worker_gone)); }
    var attempts = root.querySelector('[data-field="attempts"]');
    if (attempts) attempts.textContent = job.attempts + "/" + job.max_attempts;
    var problem = root.querySelector('[data-field="problem"]');
    if (problem) problem.textContent = job.problem || (problem.dataset.none || "");
    var next = root.querySelector('[data-field="next_attempt_at"]');
    if (next) next.textContent = job.next_attempt_at ? job.next_attempt_at.replace("T", " ").slice(0, 16) + " UTC" : "—";
    var retry = root.querySelector('[data-action="retry"]');
    if (retry) retry.hidden = !job.can_retry;
    var cancel = root.querySelector('[data-action="cancel"]');
    if (cancel) cancel.hidden = !job.can_cancel;
    var finished = root.querySelector('[data-field="finished_at"]');
    if (finished) finished.textContent = job.finished_at ? job.finished_at.replace("T", " ").slice(0, 16) + " UTC" : "—";
    if (root.tagName === "TR" && !quiet) {
      root.classList.remove("flash-row");
      void root.offsetWidth;  // restart the highlight animation
      root.classList.add("flash-row");
    }
  }

  if (table) {
    var known = {};
    table.querySelectorAll("tr[data-job-id]").forEach(function (row) { known[row.dataset.jobId] = row; });
    var notice = document.getElementById("new-jobs");
    var applyJob = function (job) {
      var row = known[String(job.id)];
      if (row) paint(row, job);
      else if (notice) notice.hidden = false;  // not on this page: offer a refresh, never reorder under the user
    };
    var applyCounts = function (counts) {
      Object.keys(counts).forEach(function (status) {
        var el = document.querySelector('[data-count="' + status + '"]');
        if (el) el.textContent = counts[status];
      });
    };
    var countsTimer = null;
    Portal.on(Portal.EVENTS.JOB_UPDATED, function (job) {
      applyJob(job);
      // Counts come from the database; ask at most once a second however busy the queue is.
      if (countsTimer) return;
      countsTimer = setTimeout(function () {
        countsTimer = null;
        Portal.socket.emit("subscribe", { topic: "jobs" }, function (ack) {
          if (ack && ack.ok) applyCounts(ack.snapshot.counts);
        });
      }, 1000);
    });
    Portal.subscribe("jobs", {}, function (snapshot) {
      applyCounts(snapshot.counts);
      snapshot.jobs.forEach(function (job) { if (known[String(job.id)]) paint(known[String(job.id)], job, true); });
    });
  }

  if (detail) {
    var jobId = Number(detail.dataset.jobId);
    var root = document.querySelector("main");
    var lastStatus = null;
    Portal.on(Portal.EVENTS.JOB_UPDATED, function (job) {
      if (job.id !== jobId) return;
      paint(root, job);
      if (lastStatus && lastStatus !== job.status && ["succeeded", "failed", "retrying"].indexOf(job.status) >= 0) {
        refreshAttempts();
      }
      lastStatus = job.status;
    });
    Portal.subscribe("job", { id: jobId }, function (snapshot) {
      paint(root, snapshot.job, true);
      lastStatus = snapshot.job.status;
      renderAttempts(snapshot.attempts);
    });
    function refreshAttempts() {
      Portal.socket.emit("subscribe", { topic: "job", id: jobId }, function (ack) {
        if (ack && ack.ok) renderAttempts(ack.snapshot.attempts);
      });
    }
    function renderAttempts(attempts) {
      var body = document.querySelector("#attempts tbody");
      if (!body) return;
      body.textContent = "";
      if (!attempts.length) {
        var empty = body.insertRow(); var c = empty.insertCell(); c.colSpan = 5; c.className = "muted"; c.textContent = "Not tried yet.";
        return;
      }
      attempts.forEach(function (a) {
        var row = body.insertRow();
        row.insertCell().textContent = a.number;
        row.insertCell().textContent = a.started_at.replace("T", " ").slice(0, 16) + " UTC";
        row.insertCell().textContent = a.finished_at ? a.finished_at.replace("T", " ").slice(0, 16) + " UTC" : "";
        row.insertCell().appendChild(badge(a.outcome || "running"));
        var err = row.insertCell(); err.className = "small"; err.textContent = a.problem || "";
      });
    }
  }
})();
