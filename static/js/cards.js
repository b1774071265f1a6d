/* The group page follows its card sheet jobs live: status, progress bar, then the download link. */
(function () {
  "use strict";
  if (!window.Portal) return;
  var PROGRESS = "cards.progress";  // portal/cards/services.py PROGRESS_EVENT
  var FINISHED = { succeeded: 1, failed: 1, cancelled: 1 };
  var rows = {};
  document.querySelectorAll("tr[data-card-job]").forEach(function (row) {
    if (row.dataset.cardJob) rows[row.dataset.cardJob] = row;
  });
  if (!Object.keys(rows).length) return;

  var T = window.PortalStrings;
  function say(key, fallback, values) {
    if (T) return T.t(key, fallback, values);
    Object.keys(values || {}).forEach(function (k) { fallback = fallback.split("{" + k + "}").join(values[k]); });
    return fallback;
  }
  function number(n) { return T ? T.number(n) : String(n); }

  function field(row, name) { return row.querySelector('[data-field="' + name + '"]'); }

  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge badge--" + status;
    span.dataset.status = status;
    span.textContent = status;
    return span;
  }

  function paintStatus(row, job) {
    var cell = field(row, "status");
    cell.textContent = "";
    cell.appendChild(badge(job.status));
    row.dataset.jobStatus = job.status;
    if (FINISHED[job.status]) {
      field(row, "progress").hidden = true;
      field(row, "progress-text").textContent = job.status === "failed" ? say("cards_none_issued", "No cards were issued.") : "";
      var link = field(row, "download");
      if (link && job.status === "succeeded") link.hidden = false;
    }
  }

  function paintProgress(row, data) {
    if (FINISHED[row.dataset.jobStatus]) return;
    var bar = field(row, "progress");
    bar.hidden = false;
    bar.value = data.percent;
    bar.textContent = number(data.percent) + "%";
    field(row, "progress-text").textContent = data.phase === "saving"
      ? say("cards_saving", "Saving the PDF…")
      : say("cards_progress", "Cards: {done} of {total}", { done: number(data.done), total: number(data.total) });
    if (data.phase === "saving") field(row, "cards").textContent = number(data.total);
  }

  Portal.on(Portal.EVENTS.JOB_UPDATED, function (job) {
    var row = rows[String(job.id)];
    if (row) paintStatus(row, job);
  });
  Portal.socket.on(PROGRESS, function (data) {
    var row = rows[String(data.job_id)];
    if (row) paintProgress(row, data);
  });
  Object.keys(rows).forEach(function (jobId) {
    var row = rows[jobId];
    if (FINISHED[row.dataset.jobStatus]) return;
    // Needs job.read; without it the requester still hears of their own job in their user room.
    Portal.subscribe("job", { id: Number(jobId) }, function (snapshot) { paintStatus(row, snapshot.job); });
  });
})();
