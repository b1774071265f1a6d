/* Settlement statuses live on staff pages (list, a settlement, a run) and on the vendor's phone.
   Any element with data-settlement-id gets its badge repainted; the server picks the rooms. */
(function () {
  "use strict";

  // Staff pages (window.Portal) name a matched payout "Reconciled"; the phone says "Paid".
  var staff = !!window.Portal;

  function paint(state) {
    if (!state || !state.id) return;
    var boxes = document.querySelectorAll('[data-settlement-id="' + state.id + '"]');
    Array.prototype.forEach.call(boxes, function (box) {
      box.setAttribute("data-status", state.status);
      // What a failed payout means ("… will be paid again"), and the form to pay it again,
      // shown only while the payout has failed.
      var note = box.querySelector("[data-settlement-note]");
      if (note) {
        note.textContent = (staff ? state.staff_note : state.note) || "";
        note.hidden = !note.textContent;
      }
      Array.prototype.forEach.call(box.querySelectorAll("[data-repay]"), function (form) {
        form.hidden = state.status !== "payout_failed" || !!state.repay_waiting;
      });
      var badge = box.querySelector("[data-settlement-label]");
      if (!badge) return;
      var words = (staff && state.staff_label) || state.label;
      // The phone shows its own language's label for the status (a worker pushes English).
      if (!staff && window.PortalStrings) {
        words = window.PortalStrings.label("settlement_labels", state.status, words);
      }
      badge.textContent = words;
      badge.className = "badge badge--" + state.tone;
      badge.setAttribute("data-status", state.status);
    });
  }

  function snapshot(data) { ((data && data.settlements) || []).forEach(paint); }

  if (!document.querySelector("[data-settlement-id]")) return;
  if (window.Portal) {
    window.Portal.on("settlement.updated", paint);
    window.Portal.subscribe("settlements", {}, snapshot);
    return;
  }
  if (!window.io) return;  // the vendor's phone: its own socket, its own room only
  var socket = window.io({ transports: ["websocket", "polling"], reconnectionDelayMax: 5000 });
  socket.on("connect", function () {
    socket.emit("subscribe", { topic: "cash-outs" }, function (ack) {
      if (ack && ack.ok) snapshot(ack.snapshot);
    });
  });
  socket.on("settlement.updated", paint);
  socket.on("session.ended", function () { window.location.reload(); });
})();
