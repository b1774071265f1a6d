/* Vendor pages: payment states pushed live over Socket.IO. Without it the pages still work (a
   reload shows the latest state). The server puts this socket in the vendor's own room only. */
(function () {
  "use strict";
  if (!window.io) return;
  var EVENT = "redemption.updated";
  var receipt = document.getElementById("v-receipt");
  var wanted = receipt ? Number(receipt.dataset.redemptionId) : null;
  var socket = window.io({ transports: ["websocket", "polling"], reconnectionDelayMax: 5000 });

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
    var boxes = document.querySelectorAll('[data-redemption-id="' + state.id + '"]');
    Array.prototype.forEach.call(boxes, function (box) {
      var badge = box.querySelector("[data-label]");
      if (badge) {
        badge.textContent = label(state);
        badge.classList.forEach(function (name) {
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
      var waiting = box.querySelector("[data-waiting]");
      if (waiting) waiting.hidden = state.final || state.status === "awaiting_code";
      box.setAttribute("data-final", state.final ? "true" : "false");
    });
  }

  socket.on("connect", function () {
    var params = { topic: "redemptions" };
    if (wanted) params.id = wanted;
    socket.emit("subscribe", params, function (ack) {
      if (ack && ack.ok && ack.snapshot && ack.snapshot.redemption) apply(ack.snapshot.redemption);
    });
  });
  socket.on(EVENT, apply);
  socket.on("session.ended", function () { window.location.reload(); });
})();
