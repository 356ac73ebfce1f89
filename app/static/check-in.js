// The door's check-in page (admin/check_in.html): where the browser has a
// BarcodeDetector and a camera, a button scans a ticket's QR into the form
// and sends it. Without either, the page is a plain form to paste into.
(function () {
  "use strict";
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  var box = document.getElementById("check-in-camera");
  var start = document.getElementById("camera-start");
  var video = document.getElementById("camera-view");
  var form = document.getElementById("check-in-form");
  if (!box || !start || !video || !form) return;
  box.hidden = false;
  start.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" } })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        start.hidden = true;
        return video.play().then(function () {
          var look = function () {
            detector.detect(video).then(function (codes) {
              if (codes.length) {
                stream.getTracks().forEach(function (t) { t.stop(); });
                form.elements.code.value = codes[0].rawValue;
                form.submit();
              } else {
                window.setTimeout(look, 250);
              }
            }, function () { window.setTimeout(look, 500); });
          };
          look();
        });
      })
      .catch(function () { box.hidden = true; });
  });
})();
