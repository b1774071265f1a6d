/* The live distribution dashboard. Every part of the screen is drawn from one snapshot: the one
   embedded in the page (data-snapshot), the one a subscribe answers with (so a screen that
   reconnects catches up), and each one the server pushes after a commit. Money arrives already
   formatted the portal's one way (a pushed snapshot serves every screen); the page writes it
   again with its own digits and grouping (data-digits, data-grouping), as the server wrote the
   page itself. Only the chart needs numbers. Words come from PortalStrings (static/js/i18n.js). */
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) return;
  var EVENT = "dashboard.snapshot";
  var projectId = Number(root.dataset.projectId);
  var txBase = root.dataset.txBase || "";
  var shown = null;       // the snapshot on screen
  var series = null;      // the chart's minutes, slid forward as time passes
  var plot = null;
  var seenFeed = null;    // redemption ids already listed, to mark new ones
  var DIGITS = root.dataset.digits || "0123456789";
  var INDIAN = root.dataset.grouping === "indian";
  var LATIN = "0123456789";

  function t(key, fallback, values) {
    return window.PortalStrings ? PortalStrings.t(key, fallback, values) : fallback;
  }
  function statusWord(code) {
    return window.PortalStrings ? PortalStrings.label("status_labels", code, code) : code;
  }
  // Digits of the page: the same ten the server writes (Devanagari for Nepali).
  function native(text) {
    if (DIGITS === LATIN) return String(text);
    return String(text).replace(/[0-9]/g, function (d) { return DIGITS.charAt(Number(d)); });
  }
  function latin(text) {
    return String(text).replace(/[\u0966-\u096F]/g, function (d) {
      return String(d.charCodeAt(0) - 0x0966);
    });
  }
  // "1,234,567.50" as this page writes it ("12,34,567.50" in Nepali digits): the same figure,
  // regrouped, never recomputed.
  function amount(text) {
    if (text === undefined || text === null) return "";
    var m = /^(-?)([0-9,]+)(\.[0-9]+)?$/.exec(latin(text));
    if (!m) return String(text);
    var whole = m[2].replace(/,/g, "");
    var tail = whole.slice(-3), head = whole.slice(0, -3), groups = [];
    var size = INDIAN ? 2 : 3;
    while (head.length > size) { groups.unshift(head.slice(-size)); head = head.slice(0, -size); }
    if (head) groups.unshift(head);
    groups.push(tail);
    return native(m[1] + groups.join(",") + (m[3] || ""));
  }

  function $(id) { return document.getElementById(id); }
  function all(selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function count(n) { return amount(String(Math.trunc(Number(n || 0)))); }
  function clock(iso, seconds) {
    if (!iso) return "";
    var options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (seconds) options.second = "2-digit";
    return native(new Date(iso).toLocaleTimeString("en-GB", options));
  }
  function timeEl(iso, seconds, className) {
    var node = el("time", className, clock(iso, seconds));
    if (iso) node.setAttribute("datetime", iso);
    return node;
  }
  function percent(part, whole) { return whole > 0 ? Math.min(100, Math.floor(part * 100 / whole)) : 0; }

  // --- figures -------------------------------------------------------------------------------

  function setKpi(name, value) {
    all('[data-kpi="' + name + '"]').forEach(function (node) {
      if (node.textContent === value) return;
      node.textContent = value;
      // A changed figure glows for a moment, so a change is seen from across the room.
      node.classList.remove("dash-bump");
      void node.offsetWidth;
      node.classList.add("dash-bump");
    });
  }

  // A figure keeps to its tile: when a budget is too long for its tile, all four figures are
  // drawn smaller together (one size reads as one row), rather than cut off.
  function fitFigures() {
    var values = all(".dash-kpi__value");
    values.forEach(function (value) { value.style.fontSize = ""; });
    var scale = 1;
    all(".dash-kpi__figure").forEach(function (figure) {
      if (figure.scrollWidth > figure.clientWidth && figure.clientWidth > 0) {
        scale = Math.min(scale, figure.clientWidth / figure.scrollWidth);
      }
    });
    if (scale >= 1) return;
    values.forEach(function (value) {
      value.style.fontSize = Math.floor(parseFloat(getComputedStyle(value).fontSize) * scale * 0.97) + "px";
    });
  }

  function renderFigures(s) {
    setKpi("allocated", amount(s.display.allocated));
    setKpi("redeemed", amount(s.display.redeemed));
    setKpi("remaining", amount(s.display.remaining));
    setKpi("people-allocated", count(s.people.allocated));
    setKpi("people-of", count(s.people.allocated));
    setKpi("people-served", count(s.people.served));
    // Payments accepted but not yet confirmed on chain: apart from "redeemed", never in it.
    var pending = s.pending || { count: 0, amount: 0 };
    setKpi("pending", amount(s.display.pending || "0"));
    setKpi("pending-count", count(pending.count));
    $("dash-pending").dataset.count = String(pending.count);
    var redeemedShare = percent(s.totals.redeemed, s.totals.allocated);
    setKpi("redeemed-percent", count(redeemedShare));
    all('[data-bar="redeemed"]').forEach(function (bar) { bar.style.width = redeemedShare + "%"; });
    all('[data-bar="served"]').forEach(function (bar) {
      bar.style.width = percent(s.people.served, s.people.allocated) + "%";
    });
    all('[data-field="currency"]').forEach(function (node) { node.textContent = s.currency; });
    var note = $("dash-chain-note");
    if (note) note.hidden = s.chain_status === "deployed";
    var updated = $("dash-updated");
    updated.textContent = clock(s.generated_at, true);
    updated.setAttribute("datetime", s.generated_at);
    fitFigures();
  }

  // --- lists ---------------------------------------------------------------------------------

  function replace(container, nodes, emptyNode) {
    container.textContent = "";
    if (!nodes.length) { container.appendChild(emptyNode); return; }
    nodes.forEach(function (node) { container.appendChild(node); });
  }

  function renderFeed(s) {
    var fresh = {};
    var items = s.feed.map(function (r) {
      fresh[r.id] = true;
      var li = el("li");
      li.dataset.id = r.id;
      if (seenFeed && !seenFeed[r.id]) li.classList.add("dash-new");
      li.appendChild(timeEl(r.at, true, "dash-feed__at"));
      li.appendChild(el("span", "dash-feed__ref", r.ref));
      li.appendChild(el("span", "dash-feed__vendor", r.vendor));
      li.appendChild(el("span", "dash-feed__amount", amount(r.amount_display)));
      li.appendChild(el("span", "dash-tag dash-tag--" + r.label, statusWord(r.label)));
      return li;
    });
    seenFeed = fresh;
    replace($("dash-feed"), items, el("li", "dash-empty", t("dash_no_redemptions", "No redemptions yet.")));
  }

  function cell(tag, text, className) { return el(tag, className, text); }

  function renderVendors(s) {
    $("dash-vendor-count").textContent = count(s.vendor_count);
    var rows = s.vendors.map(function (v) {
      var tr = el("tr");
      tr.dataset.id = v.id;
      tr.appendChild(cell("td", v.name));
      var n = cell("td", count(v.count), "num");
      if (v.pending) n.appendChild(el("span", "dash-pending", " " + t("dash_vendor_pending", "({num} pending)", { num: count(v.pending) })));
      tr.appendChild(n);
      var spent = cell("td", amount(v.amount_display), "num");
      if (v.pending) spent.appendChild(el("span", "dash-pending dash-pending--amount", t("dash_amount_pending", "+{amount} pending", { amount: amount(v.pending_display) })));
      tr.appendChild(spent);
      var last = cell("td", "", "num dash-col-last");
      last.appendChild(timeEl(v.last_at, false));
      tr.appendChild(last);
      return tr;
    });
    var empty = el("tr", "dash-empty");
    var td = cell("td", t("dash_no_vendor", "No vendor has redeemed yet."));
    td.colSpan = 4;
    empty.appendChild(td);
    replace($("dash-vendors").tBodies[0], rows, empty);
  }

  function renderQueues(s) {
    var rows = s.queues.map(function (q) {
      var tr = el("tr", q.highlight ? "dash-hot" : "");
      tr.dataset.queue = q.queue;
      var labels = window.PortalStrings ? PortalStrings.label("queue_labels", q.queue, null) : null;
      var name = cell("th", labels || q.label || q.queue);
      name.scope = "row";
      tr.appendChild(name);
      ["queued", "retrying", "running"].forEach(function (key) {
        tr.appendChild(cell("td", count(q[key]), q[key] ? "num dash-busy" : "num"));
      });
      return tr;
    });
    replace($("dash-queues").tBodies[0], rows, el("tr"));
    $("dash-batches").textContent = count(s.batches_in_flight);
    $("dash-batches-line").hidden = !s.batches_in_flight;  // only worth a line while allocating
  }

  function renderFailed(s) {
    var total = $("dash-failed-count");
    total.textContent = count(s.failed_tx_total);
    total.dataset.count = s.failed_tx_total;
    var items = s.failed_txs.map(function (tx) {
      var li = el("li");
      var head = el("span", "dash-failed__head");
      if (txBase) {
        var link = el("a", "", "#" + native(tx.id));
        link.href = txBase + "/" + tx.id;
        head.appendChild(link);
      } else {
        head.appendChild(document.createTextNode("#" + native(tx.id)));
      }
      head.appendChild(document.createTextNode(" " + tx.purpose + " "));
      head.appendChild(el("span", "dash-tag dash-tag--failed", statusWord(tx.status)));
      head.appendChild(timeEl(tx.at, false, "dash-failed__at"));
      li.appendChild(head);
      li.appendChild(el("span", "dash-failed__error", tx.error));
      return li;
    });
    replace($("dash-failed"), items, el("li", "dash-empty", t("dash_none", "None.")));
  }

  // --- chart ---------------------------------------------------------------------------------

  function chartData() {
    var scale = Math.pow(10, shown.decimals);
    var xs = [], perMinute = [], running = [];
    var total = series.base;
    series.amounts.forEach(function (amount, i) {
      total += amount;
      xs.push(series.start + i * series.step);
      perMinute.push(amount / scale);
      running.push(total / scale);
    });
    return [xs, perMinute, running];
  }

  // The chart keeps moving with the clock between redemptions: empty minutes enter on the
  // right, old ones leave on the left (their amounts go into the running total's base).
  function slide() {
    if (!series) return false;
    var nowMinute = Math.floor(Date.now() / 1000 / series.step) * series.step;
    var last = series.start + (series.amounts.length - 1) * series.step;
    var moved = false;
    while (last < nowMinute) {
      series.base += series.amounts.shift();
      series.counts.shift();
      series.amounts.push(0);
      series.counts.push(0);
      series.start += series.step;
      last += series.step;
      moved = true;
    }
    return moved;
  }

  function compact(value) {
    var abs = Math.abs(value);
    if (abs >= 1e6) return native((value / 1e6).toFixed(abs >= 1e7 ? 0 : 1)) + "M";
    if (abs >= 1e3) return native((value / 1e3).toFixed(abs >= 1e4 ? 0 : 1)) + "k";
    return native(String(Math.round(value * 100) / 100));
  }

  function chartOptions(box) {
    var px = parseFloat(getComputedStyle(box).fontSize) || 16;
    var font = Math.round(px * 0.9) + "px system-ui, sans-serif";
    var axis = {
      stroke: "#c9d3dc", font: font, size: px * 3.4,
      grid: { stroke: "rgba(255,255,255,0.09)", width: 1 },
      ticks: { stroke: "rgba(255,255,255,0.2)", width: 1 }
    };
    return {
      width: box.clientWidth, height: box.clientHeight,
      legend: { show: false },
      cursor: { points: { show: false } },
      scales: {
        // Half a minute of room at each end, so the first and the current minute's bars show whole.
        x: { time: true, range: function (u, min, max) { return [min - series.step / 2, max + series.step / 2]; } },
        amt: { range: function (u, min, max) { return [0, Math.max(max, 1) * 1.15]; } },
        cum: { range: function (u, min, max) { return [0, Math.max(max, 1) * 1.05]; } }
      },
      series: [
        {},
        { label: t("dash_per_minute", "per minute"), scale: "amt", stroke: "#3ddc97", fill: "rgba(61,220,151,0.55)", width: 0,
          paths: uPlot.paths.bars({ size: [0.9, 60] }), points: { show: false } },
        { label: t("dash_running_total", "running total"), scale: "cum", stroke: "#8ecbff", width: Math.max(2, px / 6), points: { show: false } }
      ],
      axes: [
        Object.assign({}, axis, { size: px * 2.2, space: px * 5,
          values: function (u, v) { return v.map(function (t) { return clock(new Date(t * 1000).toISOString(), false); }); } }),
        Object.assign({}, axis, { scale: "amt", values: function (u, v) { return v.map(compact); } }),
        Object.assign({}, axis, { scale: "cum", side: 1, grid: { show: false },
          values: function (u, v) { return v.map(compact); } })
      ]
    };
  }

  function renderChart(s) {
    series = {
      start: s.chart.start, step: s.chart.step, base: s.chart.base,
      amounts: s.chart.amounts.slice(), counts: s.chart.counts.slice()
    };
    slide();
    drawChart();
  }

  function drawChart() {
    var box = $("dash-chart");
    if (!window.uPlot || !box || !series) return;
    if (!plot) {
      plot = new uPlot(chartOptions(box), chartData(), box);
      if (window.ResizeObserver) {
        new ResizeObserver(function () {
          if (box.clientWidth && box.clientHeight) plot.setSize({ width: box.clientWidth, height: box.clientHeight });
        }).observe(box);
      }
    } else {
      plot.setData(chartData());
    }
  }

  // --- the whole screen ----------------------------------------------------------------------

  function render(s) {
    if (!s || s.project_id !== projectId) return;
    if (shown && s.version < shown.version) return;  // an older read arriving late
    shown = s;
    renderFigures(s);
    renderFeed(s);
    renderVendors(s);
    renderQueues(s);
    renderFailed(s);
    renderChart(s);
    root.dataset.version = String(s.version);
  }

  function setConnection(state, label) {
    var node = $("dash-conn");
    node.dataset.state = state;
    node.textContent = label;
  }

  var fullscreen = $("dash-fullscreen");
  if (fullscreen && root.requestFullscreen) {
    fullscreen.addEventListener("click", function () {
      if (document.fullscreenElement) document.exitFullscreen();
      else root.requestFullscreen();
    });
    document.addEventListener("fullscreenchange", function () {
      fullscreen.textContent = document.fullscreenElement
        ? t("dash_exit_full_screen", "Exit full screen") : t("dash_full_screen", "Full screen");
    });
  } else if (fullscreen) {
    fullscreen.hidden = true;
  }

  try { render(JSON.parse(root.dataset.snapshot)); } catch (e) { /* the socket's snapshot follows */ }
  setInterval(function () { if (slide()) drawChart(); }, 15000);
  window.addEventListener("resize", fitFigures);

  if (!window.Portal) { setConnection("off", t("dash_offline", "offline")); return; }
  Portal.on(EVENT, render);
  Portal.subscribe(root.dataset.topic, { project_id: projectId }, render);
  Portal.socket.on("connect", function () { setConnection("on", t("dash_live", "live")); });
  Portal.socket.on("disconnect", function () { setConnection("off", t("dash_reconnecting", "reconnecting…")); });
  if (Portal.socket.connected) setConnection("on", t("dash_live", "live"));
})();
