/* The Jobs list and job detail pages follow their jobs live. A worker pushes the change with
   English words (it has no page language): the page writes statuses and problem sentences from
   its own strings (#i18n-strings, PortalStrings) by status and problem code. */
(function () {
  "use strict";
  if (!window.Portal) return;
  var table = document.getElementById("jobs-table");
  var detail = document.getElementById("job-detail");
  var S = window.PortalStrings;
  var digits = S ? S.t("digits", "0123456789") : "0123456789";

  function localDigits(n) {
    return String(n).replace(/[0-9]/g, function (d) { return digits.charAt(Number(d)); });
  }

  // A moment as the server writes it: sortable in English, else the language's medium date
  // and the time, in the page's digits; always UTC.
  var lang = document.documentElement.lang || "en";
  var dateFormat = null;
  if (lang !== "en" && window.Intl) {
    try {
      dateFormat = new Intl.DateTimeFormat(lang, {
        day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23", timeZone: "UTC", numberingSystem: "latn"
      });
    } catch (e) { dateFormat = null; }
  }
  function when(iso) {
    if (!iso) return "";
    if (!dateFormat) return iso.replace("T", " ").slice(0, 16) + " UTC";
    var at = new Date(/(?:[zZ]|[+-]\d\d:?\d\d)$/.test(iso) ? iso : iso + "Z");
    return localDigits(dateFormat.format(at)) + " UTC";
  }

  function statusWords(status) {
    return S ? S.label("job_labels", status, status) : status;
  }

  // The problem sentence in the page's language from its code and values; the pushed English
  // text when the code is not one of the page's (the exception's own words).
  function problemOf(item) {
    if (!item.problem_code || !S) return item.problem || "";
    var text = S.label("job_problems", item.problem_code, "");
    if (!text) return item.problem || "";
    var values = item.problem_values || {};
    Object.keys(values).forEach(function (name) { text = text.split("{" + name + "}").join(values[name]); });
    return text;
  }

  function badge(status, gone) {
    var span = document.createElement("span");
    // A running job whose lease expired: its worker is gone (the server decides, not the clock here).
    span.className = "badge badge--" + (gone ? "stuck" : status);
    span.dataset.status = status;
    span.textContent = statusWords(gone ? "stuck" : status);
    return span;
  }

  function paint(root, job, quiet) {
    var status = root.querySelector('[data-field="status"]');
    if (status) { status.textContent = ""; status.appendChild(badge(job.status, job.worker_gone)); }
    var attempts = root.querySelector('[data-field="attempts"]');
    if (attempts) attempts.textContent = localDigits(job.attempts) + "/" + localDigits(job.max_attempts);
    var problem = root.querySelector('[data-field="problem"]');
    if (problem) problem.textContent = problemOf(job) || (problem.dataset.none || "");
    var next = root.querySelector('[data-field="next_attempt_at"]');
    if (next) next.textContent = job.next_attempt_at ? when(job.next_attempt_at) : "—";
    var retry = root.querySelector('[data-action="retry"]');
    if (retry) retry.hidden = !job.can_retry;
    var cancel = root.querySelector('[data-action="cancel"]');
    if (cancel) cancel.hidden = !job.can_cancel;
    var finished = root.querySelector('[data-field="finished_at"]');
    if (finished) finished.textContent = job.finished_at ? when(job.finished_at) : "—";
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
        if (el) el.textContent = localDigits(counts[status]);
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
        var empty = body.insertRow(); var c = empty.insertCell(); c.colSpan = 5; c.className = "muted"; c.textContent = S ? S.t("job_not_tried", "Not tried yet.") : "Not tried yet.";
        return;
      }
      attempts.forEach(function (a) {
        var row = body.insertRow();
        row.insertCell().textContent = localDigits(a.number);
        row.insertCell().textContent = when(a.started_at);
        row.insertCell().textContent = when(a.finished_at);
        row.insertCell().appendChild(badge(a.outcome || "running"));
        var err = row.insertCell(); err.className = "small"; err.textContent = problemOf(a);
      });
    }
  }
})();
