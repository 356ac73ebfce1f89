// Counts down [data-countdown] seconds between the server's refreshes. The
// numbers always come from the server (seconds left, not a clock time), so a
// wrong clock in the browser cannot change them. The word shown at zero comes
// from the page (data-expired, in the page's language).
(function () {
  function format(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  setInterval(function () {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.max(0, parseInt(el.getAttribute("data-countdown"), 10) - 1);
      el.setAttribute("data-countdown", left);
      el.textContent = left > 0 ? format(left) : el.getAttribute("data-expired") || format(0);
    });
  }, 1000);
})();
