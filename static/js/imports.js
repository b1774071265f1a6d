/* An import's page follows its dry run or commit live, and reloads once it settles. */
(function () {
  "use strict";
  var root = document.getElementById("import");
  if (!root || !window.Portal) return;
  var id = Number(root.dataset.importId);
  var running = { analysing: 1, committing: 1 };
  var card = document.getElementById("progress-card");
  var fill = document.getElementById("progress-fill");
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-text");
  var T = window.PortalStrings;
  var PHASES = {
    checking: ["import_checking", "Checking rows: {rows}"],
    checked: ["import_checked", "Rows checked: {rows}"],
    saving: ["import_saving", "Saving rows: {rows}"],
    saved: ["import_saved", "Rows saved: {rows}"]
  };
  function number(n) { return T ? T.number(n) : n.toLocaleString(); }

  function show(update) {
    if (update.id !== id) return;
    if (update.phase in PHASES) {
      card.hidden = false;
      var phase = PHASES[update.phase];
      var rows = number(update.rows);
      var label = T ? T.t(phase[0], phase[1], { rows: rows }) : phase[1].replace("{rows}", rows);
      if (update.percent !== null && update.percent !== undefined) {
        fill.style.width = update.percent + "%";
        bar.setAttribute("aria-valuenow", update.percent);
        label += " (" + number(update.percent) + "%)";
      } else {
        bar.classList.add("progress--busy");
      }
      text.textContent = label;
      return;
    }
    // A state change (ready, committed, failed): the page shows the result best.
    if (update.status && update.status !== root.dataset.status && !running[update.status]) {
      window.location.reload();
    }
  }

  Portal.on("import.progress", show);
  Portal.subscribe("import", { id: id }, function (snapshot) {
    var batch = snapshot.batch;
    if (batch.status !== root.dataset.status && !running[batch.status]) window.location.reload();
  });
})();

/* A page waiting for a background job (e.g. a Kobo pull) reloads when the job settles. */
(function () {
  "use strict";
  var holder = document.querySelector("[data-reload-on-job]");
  if (!holder || !window.Portal) return;
  var jobId = Number(holder.dataset.reloadOnJob);
  var done = { succeeded: 1, failed: 1, cancelled: 1 };
  function settle(job) {
    if (job.id !== jobId || !done[job.status]) return;
    var url = new URL(window.location.href);
    url.searchParams.delete("job");
    if (job.status !== "succeeded") {
      var problem = job.problem || job.status;
      var message = window.PortalStrings
        ? PortalStrings.t("import_pull_failed", "The pull failed: {problem}", { problem: problem })
        : "The pull failed: " + problem;
      Portal.toast(message, "failed", "/jobs/" + job.id);
      return;
    }
    window.location.replace(url.toString());
  }
  Portal.on(Portal.EVENTS.JOB_UPDATED, settle);
  Portal.subscribe("job", { id: jobId }, function (snapshot) { settle(snapshot.job); });
})();
