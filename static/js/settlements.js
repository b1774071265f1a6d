/* Settlement statuses live on staff pages (list, a settlement, a run) and on the vendor's phone.
   Any element with data-settlement-id gets its badge repainted; the server picks the rooms.
   A worker pushes the change in English (it has no page language): the words come from the
   page's own strings (#i18n-strings, PortalStrings) by the status and the note's code. */
(function () {
  "use strict";

  // Staff pages (window.Portal) name a matched payout "Reconciled"; the phone says "Paid".
  var staff = !!window.Portal;
  var S = window.PortalStrings;

  // The note of a failed payout ("… will be paid again"), with the amount as this page wrote
  // it (the page's digits) when the box shows it, else as the event carries it.
  function noteOf(box, state) {
    var english = (staff ? state.staff_note : state.note) || "";
    if (!state.note_code || !S) return english;
    var shown = box.querySelector("[data-settlement-amount]");
    var amount = shown ? shown.textContent.trim() : (box.dataset.amount || state.amount || "");
    var template = S.label(staff ? "settlement_staff_notes" : "settlement_notes", state.note_code, "");
    return template ? template.split("{amount}").join(amount) : english;
  }

  function paint(state) {
    if (!state || !state.id) return;
    var boxes = document.querySelectorAll('[data-settlement-id="' + state.id + '"]');
    Array.prototype.forEach.call(boxes, function (box) {
      box.setAttribute("data-status", state.status);
      // What a failed payout means, and the form to pay it again, shown only while the
      // payout has failed.
      var note = box.querySelector("[data-settlement-note]");
      if (note) {
        note.textContent = noteOf(box, state);
        note.hidden = !note.textContent;
        // The staff page names the note in the line before it.
        var term = note.previousElementSibling;
        if (term && term.tagName === "DT") term.hidden = note.hidden;
      }
      Array.prototype.forEach.call(box.querySelectorAll("[data-repay]"), function (form) {
        form.hidden = state.status !== "payout_failed" || !!state.repay_waiting;
      });
      var badge = box.querySelector("[data-settlement-label]");
      if (!badge) return;
      var words = (staff && state.staff_label) || state.label;
      if (S) words = S.label(staff ? "settlement_staff_labels" : "settlement_labels", state.status, words);
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
