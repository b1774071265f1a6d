/* Small progressive enhancements; every page works without them. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (!question) return;
    if (!window.confirm(question)) { event.preventDefault(); return; }
    // Asked here: the server's confirm step (portal/confirmation.py) is not needed again.
    if (!form.querySelector("input[name=confirmed]")) {
      var field = document.createElement("input");
      field.type = "hidden"; field.name = "confirmed"; field.value = "yes";
      form.appendChild(field);
    }
  });
  // Close the phone menu when a link in it is followed.
  var menu = document.querySelector("details.menu");
  if (menu) menu.addEventListener("click", function (event) {
    if (event.target.tagName === "A") menu.open = false;
  });
  // On a wide screen the menu is always open.
  var wide = window.matchMedia("(min-width: 900px)");
  function sync() { if (menu) menu.open = wide.matches; }
  if (wide.addEventListener) wide.addEventListener("change", sync);
  sync();
})();
/* On a phone the filters start folded unless some are in use; on a wide screen they stay open. */
(function () {
  "use strict";
  if (!window.matchMedia("(max-width: 599px)").matches) return;
  document.querySelectorAll("details[data-filters]").forEach(function (box) {
    if (!box.hasAttribute("data-active")) box.open = false;
  });
})();
