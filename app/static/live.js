// Polite announcements for screen readers, through one live region
// (#announcer in base.html) that outlives the htmx swaps: a live region that
// is itself replaced is not read out, and the waiting room's status is
// replaced on every poll.
(function () {
  window.announce = function (text) {
    var region = document.getElementById("announcer");
    if (!region || !text) return;
    region.textContent = "";  // the same words twice must be read twice
    setTimeout(function () { region.textContent = text; }, 50);
  };

  // The waiting room: read the place in the queue out when it changes.
  var lastStatus = null;
  document.addEventListener("htmx:afterSettle", function () {
    var status = document.querySelector("#queue-status .status-text");
    if (!status) return;
    var text = status.textContent.replace(/\s+/g, " ").trim();
    if (text !== lastStatus) {
      lastStatus = text;
      window.announce(text);
    }
  });
})();
