/* The words scripts write, in the page's language: the page carries them as a JSON data block
   (#i18n-strings), filled by the server from the same catalogs as the templates. */
(function () {
  "use strict";
  var strings = {};
  var block = document.getElementById("i18n-strings");
  if (block) {
    try { strings = JSON.parse(block.textContent) || {}; } catch (e) { strings = {}; }
  }
  window.PortalStrings = {
    /* The string named `key`, with {name} replaced from `values`; `fallback` when absent. */
    t: function (key, fallback, values) {
      var text = typeof strings[key] === "string" ? strings[key] : fallback;
      Object.keys(values || {}).forEach(function (name) {
        text = text.split("{" + name + "}").join(values[name]);
      });
      return text;
    },
    /* A count grouped as the page's language groups it, in its digits (the server's
       "digits": "०१२३४५६७८९" for Nepali), as the server's number filter writes it. */
    number: function (n) {
      var lang = document.documentElement.lang || "en";
      var text;
      try {
        text = new Intl.NumberFormat(lang, { numberingSystem: "latn" }).format(n);
      } catch (e) {
        text = String(n);
      }
      var digits = typeof strings.digits === "string" && strings.digits.length === 10 ? strings.digits : "";
      if (!digits || digits === "0123456789") return text;
      return text.replace(/[0-9]/g, function (d) { return digits.charAt(Number(d)); });
    },
    /* A label by status from one of the label tables (redemption_labels, settlement_labels). */
    label: function (table, status, fallback) {
      var labels = strings[table] || {};
      return labels[status] || fallback;
    }
  };
})();
