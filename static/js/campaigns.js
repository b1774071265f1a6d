/* A campaign's progress, live: counts and status follow the messages as they are sent and as
   delivery receipts come in. The server picks the room (topic "campaign"); a snapshot on every
   (re)subscribe gives the true counts, and each message's move in between is a delta. */
(function () {
  "use strict";
  if (!window.Portal) return;
  var root = document.getElementById("campaign-live");
  if (!root) return;
  var campaignId = Number(root.dataset.campaignId);
  var counts = null;
  var recipients = 0;
  var opted = 0;
  var HANDLED = ["sent", "delivered", "failed", "review", "opted_out", "cancelled"];
  var T = window.PortalStrings || { t: function (k, f) { return f; }, label: function (t, s, f) { return f; } };
  // Counts in the page's digits, as the server writes them (Devanagari for Nepali).
  var lang = document.documentElement.lang || "en";
  var numbers;
  try { numbers = new Intl.NumberFormat(lang === "ne" ? "ne-u-nu-deva" : lang); } catch (e) { numbers = null; }
  function num(n) { return numbers ? numbers.format(Number(n || 0)) : String(n || 0); }

  function setText(name, value) {
    var cell = document.querySelector('#campaign-counts [data-count="' + name + '"]');
    if (cell) cell.textContent = num(value);
  }

  function paint() {
    if (!counts) return;
    // Waiting covers queued and held (a paused campaign's messages).
    setText("queued", (counts.queued || 0) + (counts.held || 0));
    ["sent", "delivered", "failed", "review"].forEach(function (s) { setText(s, counts[s] || 0); });
    setText("opted_out", opted + (counts.opted_out || 0));
    var done = HANDLED.reduce(function (sum, s) { return sum + (counts[s] || 0); }, 0);
    var bar = document.getElementById("campaign-bar");
    if (bar) { bar.max = Math.max(recipients, 1); bar.value = done; bar.textContent = num(done); }
    var summary = document.getElementById("campaign-summary");
    if (summary && recipients) {
      summary.textContent = T.t("campaign_handled", "{done} of {total} messages handled, {delivered} delivered",
        { done: num(done), total: num(recipients), delivered: num(counts.delivered || 0) });
    }
  }

  function setStatus(status) {
    var holder = root.querySelector('[data-field="status"]');
    if (!holder) return;
    var badge = holder.querySelector(".badge");
    if (badge && badge.dataset.status === status) return;
    var span = document.createElement("span");
    span.className = "badge badge--" + status;
    span.dataset.status = status;
    span.textContent = T.label("campaign_labels", status, status);
    holder.textContent = "";
    holder.appendChild(span);
    root.dataset.status = status;
    // The buttons and forms that apply to the new status (sent from another tab, finished).
    document.querySelectorAll("[data-when]").forEach(function (el) {
      el.hidden = el.dataset.when.split(" ").indexOf(status) < 0;
    });
  }

  function whole(snapshot) {
    if (!snapshot || snapshot.campaign_id !== campaignId) return;
    counts = Object.assign({}, snapshot.counts);
    recipients = snapshot.recipients || 0;
    opted = snapshot.opted_out || 0;
    setStatus(snapshot.status);
    paint();
  }

  Portal.on("campaign.changed", whole);
  Portal.on("campaign.progress", function (move) {
    if (!counts || move.campaign_id !== campaignId) return;
    counts[move.from] = Math.max(0, (counts[move.from] || 0) - 1);
    counts[move.to] = (counts[move.to] || 0) + 1;
    paint();
  });
  Portal.subscribe("campaign", { campaign_id: campaignId }, whole);
})();
