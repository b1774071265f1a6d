/* Vendor pages: payment states pushed live over Socket.IO. Without it the pages still work (a
   reload shows the latest state). The server puts this socket in the vendor's own room only.

   Pushed updates are hints, not the truth: one can arrive before the page has joined its room
   (and is lost), during a reconnect (and is lost), or after a fresher answer (a join's snapshot
   read a moment earlier). So after every (re)join, after every update, when the phone wakes up
   and every few seconds while the socket is down, the page asks the server for the payment's
   state now, and only the answer to its newest question is applied: whatever the order of
   "confirmed" and "joined", the screen ends right, without waiting for a reconnect backoff. */
(function () {
  "use strict";
  var EVENT = "redemption.updated";
  var POLL_MS = 3000;
  var receipt = document.getElementById("v-receipt");
  var wanted = receipt ? Number(receipt.dataset.redemptionId) : null;
  var asked = {};  // redemption id -> number of the newest state question
  var heard = 0;  // pushed updates seen, to tell whether a join's snapshot may be older
  var poller = null;

  function boxesOf(id) {
    return document.querySelectorAll('[data-redemption-id="' + id + '"]');
  }

  var S = window.PortalStrings;
  // A worker pushes English words: the page shows its own language's for the same status.
  function label(state) {
    return S ? S.label("redemption_labels", state.status, state.label) : state.label;
  }
  function noteOf(state) {
    if (!state.note) return "";
    return S ? S.label("redemption_notes", state.status, state.note) : state.note;
  }

  function apply(state) {
    if (!state || !state.id) return;
    Array.prototype.forEach.call(boxesOf(state.id), function (box) {
      var badge = box.querySelector("[data-label]");
      if (badge) {
        badge.textContent = label(state);
        Array.prototype.slice.call(badge.classList).forEach(function (name) {
          if (name.indexOf("badge--") === 0) badge.classList.remove(name);
        });
        badge.classList.add("badge--" + state.tone);
        badge.setAttribute("data-status", state.status);
      }
      var note = box.querySelector("[data-note]");
      if (note) {
        note.textContent = noteOf(state);
        note.hidden = !state.note;
      }
      var payer = box.querySelector("[data-payer]");
      if (payer && "payer" in state) {
        payer.textContent = state.payer || "";
        var row = box.querySelector("[data-payer-row]");
        if (row) row.hidden = !state.payer;
      }
      var waiting = box.querySelector("[data-waiting]");
      if (waiting) waiting.hidden = state.final || state.status === "awaiting_code";
      box.setAttribute("data-final", state.final ? "true" : "false");
    });
  }

  /* Ask the server for a payment's state; an answer to an older question is dropped, since a
     newer question read the database later. */
  function refresh(id) {
    var box = boxesOf(id)[0];
    var url = box && box.getAttribute("data-state-url");
    if (!url || !window.fetch) return;
    var number = (asked[id] || 0) + 1;
    asked[id] = number;
    window.fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected) {  // signed out: the reload shows the sign-in page
          window.location.reload();
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (state) {
        if (state && asked[id] === number) apply(state);
      })
      .catch(function () { /* offline: the next poll or reconnect asks again */ });
  }

  function settled() {
    return !receipt || receipt.getAttribute("data-final") === "true";
  }

  function poll(on) {
    if (on && !poller && wanted) {
      poller = window.setInterval(function () {
        if (settled()) return poll(false);
        refresh(wanted);
      }, POLL_MS);
    } else if (!on && poller) {
      window.clearInterval(poller);
      poller = null;
    }
  }

  poll(true);  // until the socket has joined, the page keeps asking by itself

  if (wanted) {
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") refresh(wanted);
    });
    window.addEventListener("online", function () { refresh(wanted); });
  }

  if (!window.io) return;
  var socket = window.io({ transports: ["websocket", "polling"], reconnectionDelayMax: 5000 });

  socket.on("connect", function () {
    var params = { topic: "redemptions" };
    if (wanted) params.id = wanted;
    var heardBefore = heard;
    socket.emit("subscribe", params, function (ack) {
      if (!ack || !ack.ok) return;
      poll(false);
      var snapshot = ack.snapshot && ack.snapshot.redemption;
      // An update that came in while the join was answered may be newer than its snapshot.
      if (snapshot && heard === heardBefore) apply(snapshot);
      if (wanted) refresh(wanted);
    });
  });
  socket.on("disconnect", function (reason) {
    poll(true);
    // The server closed the socket (a change of access): connect again; the join is checked
    // anew. (An ended session is told first and the page reloads.)
    if (reason === "io server disconnect") socket.connect();
  });
  socket.on(EVENT, function (state) {
    heard += 1;
    apply(state);
    if (state && state.id && boxesOf(state.id).length) refresh(state.id);
  });
  socket.on("session.ended", function () { window.location.reload(); });
})();
