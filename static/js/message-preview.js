/* Message template editor: the preview follows the text as staff type, from the server (the
   same code that will write the SMS measures it). Without JavaScript the Preview button does
   the same through the form. */
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form || !window.fetch) return;
  var box = document.getElementById("preview");
  var timer = null;
  var latest = 0;

  function show(name, value) {
    var el = box.querySelector("[data-preview-" + name + "]");
    if (el) el.textContent = value;
  }

  function refresh() {
    var asked = ++latest;
    var body = new URLSearchParams(new FormData(form));
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (r) { return r.json(); }).then(function (data) {
      if (asked !== latest) return;  // a newer keystroke's answer wins
      var field = form.querySelector(".field");
      var old = field.querySelectorAll(".error[data-live]");
      Array.prototype.forEach.call(old, function (el) { el.remove(); });
      if (!data.ok) {
        (data.errors || []).forEach(function (text) {
          var p = document.createElement("p");
          p.className = "error";
          p.setAttribute("data-live", "");
          p.textContent = text;
          field.appendChild(p);
        });
        return;
      }
      show("text", data.text);
      show("characters", data.characters_text);
      show("encoding", data.encoding);
      show("segments", data.segments_text);
      show("cost", data.cost);
    }).catch(function () { /* the Preview button still works */ });
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
})();
