/* Forms that start work (data-once) take one click: after the first submit their buttons are
   disabled until the next page shows. The server refuses a second start anyway (conditional
   updates); this spares the user a second request and its "already started" answer. */
(function () {
  "use strict";
  var WAIT_MS = 20000; // a download leaves the page in place: give the buttons back after a while

  function buttons(form) {
    return form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
  }

  function release(form) {
    form.removeAttribute("aria-busy");
    form.querySelectorAll("[data-once-carried]").forEach(function (input) { input.remove(); });
    buttons(form).forEach(function (button) {
      if (button.hasAttribute("data-once-disabled")) {
        button.disabled = false;
        button.removeAttribute("data-once-disabled");
      }
    });
  }

  // Registered after ui.js's confirmation (and bubbling up after any form's own handler), so a
  // cancelled submit arrives here already marked and leaves the form usable.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
    if (event.defaultPrevented) return;
    // A disabled button's name and value are not sent: carry the clicked one's over.
    var clicked = event.submitter;
    if (clicked && clicked.name) {
      var carried = document.createElement("input");
      carried.type = "hidden";
      carried.name = clicked.name;
      carried.value = clicked.value;
      carried.setAttribute("data-once-carried", "");
      form.appendChild(carried);
    }
    form.setAttribute("aria-busy", "true");
    buttons(form).forEach(function (button) {
      if (!button.disabled) {
        button.disabled = true;
        button.setAttribute("data-once-disabled", "");
      }
    });
    window.setTimeout(function () { release(form); }, WAIT_MS);
  });

  // Back to a page kept in the browser's cache: its forms are usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-once]").forEach(release);
  });
})();
