/* Live updates: one Socket.IO connection per page, topics chosen by the page, toasts for the
   signed-in user's own jobs. The server picks the rooms; a page only names a topic. */
(function () {
  "use strict";
  var EVENTS = { JOB_UPDATED: "job.updated", SESSION_ENDED: "session.ended" };
  var userId = Number(document.body.dataset.userId || 0);
  var dot = document.getElementById("live-dot");
  var stateText = document.getElementById("live-state");
  var subscriptions = [];
  var handlers = {};

  // Words in the page's language (static/js/i18n.js); English when a page carries none.
  function t(key, fallback, values) {
    return window.PortalStrings ? PortalStrings.t(key, fallback, values) : fallback;
  }

  function setState(state, label) {
    if (!dot) return;
    dot.dataset.state = state;
    dot.title = t("live_title", "Live updates: {state}", { state: label });
    if (stateText) stateText.textContent = label;
  }

  var socket = io({ transports: ["websocket", "polling"], reconnectionDelayMax: 5000 });

  function subscribeAll() {
    subscriptions.forEach(function (sub) {
      socket.emit("subscribe", Object.assign({ topic: sub.topic }, sub.params), function (ack) {
        if (ack && ack.ok) sub.onSnapshot(ack.snapshot);
      });
    });
  }

  socket.on("connect", function () { setState("on", t("live_connected", "connected")); subscribeAll(); });
  socket.on("disconnect", function (reason) {
    setState("off", t("live_reconnecting", "reconnecting"));
    // The server closes the sockets of a user whose access changed: connect again, and every
    // subscription is checked anew. (An ended session is told first and the page reloads.)
    if (reason === "io server disconnect") socket.connect();
  });
  socket.on("connect_error", function () { setState("off", t("live_offline", "offline, retrying")); });
  socket.on(EVENTS.SESSION_ENDED, function () { window.location.reload(); });

  function dispatch(name, payload) {
    (handlers[name] || []).forEach(function (fn) { fn(payload); });
  }
  socket.on(EVENTS.JOB_UPDATED, function (job) {
    dispatch(EVENTS.JOB_UPDATED, job);
    if (job.created_by_id === userId) toastJob(job);
  });

  var lastToast = {};
  function toastJob(job) {
    if (lastToast[job.id] === job.status) return;  // one event per state, even from two rooms
    lastToast[job.id] = job.status;
    var interesting = { running: 1, succeeded: 1, failed: 1, retrying: 1 };
    if (!interesting[job.status]) return;
    var status = window.PortalStrings ? PortalStrings.label("status_labels", job.status, job.status) : job.status;
    toast(t("job_toast", "{job} #{id}: {status}", { job: job.label, id: job.id, status: status }), job.status, "/jobs/" + job.id);
  }

  function toast(text, kind, href) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var item = document.createElement(href ? "a" : "div");
    item.className = "toast toast--" + (kind || "info");
    item.textContent = text;
    if (href) item.href = href;
    box.appendChild(item);
    setTimeout(function () { item.classList.add("toast--out"); }, 4500);
    setTimeout(function () { item.remove(); }, 5200);
  }

  window.Portal = {
    EVENTS: EVENTS,
    socket: socket,
    toast: toast,
    on: function (name, fn) {
      if (!handlers[name]) {
        handlers[name] = [];
        // job.updated is bound above (it also drives the toasts); other events bind on first use.
        if (name !== EVENTS.JOB_UPDATED) socket.on(name, function (payload) { dispatch(name, payload); });
      }
      handlers[name].push(fn);
    },
    subscribe: function (topic, params, onSnapshot) {
      var sub = { topic: topic, params: params || {}, onSnapshot: onSnapshot || function () {} };
      subscriptions.push(sub);
      if (socket.connected) subscribeAll();
    }
  };
})();
