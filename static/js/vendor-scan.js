/* Charge page: read the beneficiary's card with the phone's camera. The typed fields remain the
   way in: without a camera, or without permission, the page is a plain form.
   The QR decoder is the browser's own (BarcodeDetector) where there is one; otherwise jsQR is
   fetched only now, when the vendor taps "Scan", to keep the page light on a slow network. */
(function () {
  "use strict";
  var script = document.currentScript;
  var box = document.querySelector("[data-scanner]");
  var input = document.getElementById("card");
  var media = navigator.mediaDevices;
  if (!box || !input || !media || !media.getUserMedia) return;

  var TOKEN = /^AC1-?[A-Z2-7]{32}$/;
  var decoderUrl = script ? script.getAttribute("data-decoder") : null;
  var start = box.querySelector("[data-scan-start]");
  var view = box.querySelector("[data-scan-view]");
  var video = box.querySelector("[data-scan-video]");
  var status = box.querySelector("[data-scan-status]");
  var stop = box.querySelector("[data-scan-stop]");
  var done = box.querySelector("[data-scan-done]");
  var amount = document.getElementById("amount");
  var stream = null;
  var timer = null;
  var canvas = null;
  box.hidden = false;

  function T(key, fallback, values) {
    return window.PortalStrings ? window.PortalStrings.t(key, fallback, values) : fallback;
  }

  function clean(text) {
    return String(text || "").replace(/\s+/g, "").toUpperCase();
  }

  function say(text) {
    done.textContent = text;
    done.hidden = !text;
  }

  function loadJsQR() {
    return new Promise(function (resolve, reject) {
      if (window.jsQR) return resolve();
      if (!decoderUrl) return reject(new Error("no decoder"));
      var tag = document.createElement("script");
      tag.src = decoderUrl;
      tag.onload = function () { resolve(); };
      tag.onerror = function () { reject(new Error("decoder did not load")); };
      document.head.appendChild(tag);
    });
  }

  function nativeDetector() {
    if (!("BarcodeDetector" in window)) return null;
    try {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      return function () {
        return detector.detect(video).then(function (found) {
          return found.length ? found[0].rawValue : null;
        });
      };
    } catch (err) {
      return null;
    }
  }

  function jsQRDetector() {
    canvas = canvas || document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    return function () {
      if (video.readyState < 2 || !video.videoWidth) return Promise.resolve(null);
      // A smaller frame decodes faster on a cheap phone, and a card fills most of the view.
      var scale = Math.min(1, 640 / video.videoWidth);
      var w = Math.round(video.videoWidth * scale);
      var h = Math.round(video.videoHeight * scale);
      canvas.width = w;
      canvas.height = h;
      context.drawImage(video, 0, 0, w, h);
      var found = window.jsQR(context.getImageData(0, 0, w, h).data, w, h, {
        inversionAttempts: "dontInvert"
      });
      return Promise.resolve(found ? found.data : null);
    };
  }

  function decoder() {
    var native = nativeDetector();
    if (native) return Promise.resolve(native);
    return loadJsQR().then(jsQRDetector);
  }

  function stopCamera() {
    clearTimeout(timer);
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    video.srcObject = null;
    view.hidden = true;
    start.hidden = false;
  }

  function found(text) {
    input.value = clean(text);
    stopCamera();
    say(T("scan_read", "Card read (…{last}). Now enter the amount.", { last: input.value.slice(-4) }));
    if (amount) amount.focus();
  }

  function loop(detect) {
    if (!stream) return;
    detect().then(function (text) {
      if (text && TOKEN.test(clean(text))) return found(text);
      if (text) status.textContent = T("scan_not_card", "That is not a beneficiary card. Try again.");
      timer = setTimeout(function () { loop(detect); }, 150);
    }, function () {
      timer = setTimeout(function () { loop(detect); }, 300);
    });
  }

  start.addEventListener("click", function () {
    say("");
    status.textContent = T("scan_starting", "Starting the camera…");
    media.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false })
      .then(function (opened) {
        stream = opened;
        video.srcObject = opened;
        view.hidden = false;
        start.hidden = true;
        status.textContent = T("scan_hold", "Hold the card's square code inside the frame.");
        return video.play().then(decoder);
      })
      .then(loop)
      .catch(function () {
        stopCamera();
        say(T("scan_no_camera", "The camera cannot be used here. Type the beneficiary's phone number instead."));
      });
  });
  stop.addEventListener("click", stopCamera);
  window.addEventListener("pagehide", stopCamera);
})();
