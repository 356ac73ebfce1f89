// Counts down [data-countdown] seconds between the server's refreshes. The
// numbers always come from the server (seconds left, not a clock time), so a
// wrong clock in the browser cannot change them. The word shown at zero comes
// from the page (data-expired, in the page's language).
//
// A countdown with data-announce (a sentence with "{time}" in it, in the
// page's language) is read out politely (live.js) at each whole minute and at
// 30 and 10 seconds: often enough to plan by, never every second.
//
// Inside an element with data-ended, zero puts that whole phrase in its
// place ("held for 0:00" becomes "Your hold on Floor A5 ran out.").
(function () {
  var MARKS = [30, 10];
  var announced = {};  // sentence + mark: the panel is replaced every 3 s

  function format(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function markReached(left) {
    if (left > 0 && left % 60 === 0) return left;
    for (var i = 0; i < MARKS.length; i++) {
      if (left <= MARKS[i] && left > MARKS[i] - 3) return MARKS[i];
    }
    return null;
  }

  function maybeAnnounce(el, left) {
    var sentence = el.getAttribute("data-announce");
    var mark = sentence && markReached(left);
    if (!mark || announced[sentence + mark] || !window.announce) return;
    announced[sentence + mark] = true;
    window.announce(sentence.replace("{time}", format(mark)));
  }

  setInterval(function () {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.max(0, parseInt(el.getAttribute("data-countdown"), 10) - 1);
      el.setAttribute("data-countdown", left);
      var ended = left > 0 ? null : el.closest("[data-ended]");
      if (ended) { ended.textContent = ended.getAttribute("data-ended"); return; }
      el.textContent = left > 0 ? format(left) : el.getAttribute("data-expired") || format(0);
      maybeAnnounce(el, left);
    });
  }, 1000);
})();
