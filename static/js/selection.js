// The list's selection: "select all on this page", a count of the people chosen, and the
// group/project choice hidden for actions that need none. The form works without it.
(function () {
  "use strict";
  var form = document.querySelector("[data-selection]");
  if (!form) return;
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="ids"][form="selection"]'));
  var all = document.querySelector("[data-select-page]");
  var count = form.querySelector("[data-selection-count]");
  var action = form.querySelector("[data-selection-action]");
  var target = form.querySelector("[data-selection-target]");

  var T = window.PortalStrings;
  function say(key, fallback, values) { return T ? T.t(key, fallback, values) : fallback; }

  function chosen() {
    return boxes.filter(function (b) { return b.checked; }).length;
  }

  function refresh() {
    var n = chosen();
    count.textContent = n === 0 ? say("selection_none", "Choose people with the boxes below.")
      : say("selection_count", "People chosen: {count}", { count: T ? T.number(n) : n });
    if (all) {
      all.checked = n > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    }
    if (target && action) target.hidden = action.value === "cards";
  }

  if (all) {
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      refresh();
    });
  }
  boxes.forEach(function (b) { b.addEventListener("change", refresh); });
  if (action) action.addEventListener("change", refresh);
  form.addEventListener("submit", function (event) {
    if (chosen() === 0) {
      event.preventDefault();
      count.textContent = say("selection_empty", "Choose at least one person first.");
      count.classList.add("error");
    }
  });
  refresh();
})();
