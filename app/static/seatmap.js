// The seat map by keyboard. Arrow keys move between seats (left and right
// along a row, up and down to the same place in the row above or below),
// Home and End go to the ends of a row, Enter or Space presses the seat (hold
// or release, as a click would). One seat is in the Tab order at a time (a
// "roving tabindex"), so Tab leaves the map in one step instead of hundreds.
// Without JavaScript every seat is a plain button and Tab reaches each one.
// The staff map (links instead of buttons) moves the same way.
//
// The map refreshes itself (the panel every 3 s, the staff map every 2 s):
// where it was panned to, on a phone, is put back after each refresh.
//
// The fan's seats carry a tooltip (data-tip: the seat, its price, its
// state), shown on hover and focus in one element fixed above the page, so
// no scrolling box clips it. The panel's notices of holds that ran out
// (data-notice) are read out once each (live.js).
(function () {
  var MOVES = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"];
  var SEAT = "button.seat, a.seat";
  var PANS = ".seat-map, .section-seats";  // what may be panned sideways
  var lastFocused = null;  // kept across the refreshes (same ids)
  var panned = [];  // [scrollLeft, scrollTop] of each map before a refresh
  var told = {};  // notices already read out
  var tip = null;

  function showTip(seat) {
    if (!tip) {
      tip = document.createElement("div");
      tip.id = "seat-tip";
      tip.setAttribute("aria-hidden", "true");  // the seat's label says the same
      document.body.appendChild(tip);
    }
    tip.textContent = seat.getAttribute("data-tip");
    tip.hidden = false;
    var box = seat.getBoundingClientRect(), own = tip.getBoundingClientRect();
    var top = box.top - own.height - 6;
    if (top < 0) top = box.bottom + 6;
    var left = Math.max(4, Math.min(box.left + box.width / 2 - own.width / 2,
                                    document.documentElement.clientWidth - own.width - 4));
    tip.style.top = top + "px";
    tip.style.left = left + "px";
  }

  function hideTip() { if (tip) tip.hidden = true; }

  function tipped(e) {
    return e.target.closest && e.target.closest(".seat-map .seat[data-tip]");
  }

  document.addEventListener("mouseover", function (e) { var s = tipped(e); if (s) showTip(s); });
  document.addEventListener("mouseout", function (e) { if (tipped(e)) hideTip(); });
  document.addEventListener("focusout", function (e) { if (tipped(e)) hideTip(); });
  document.addEventListener("scroll", hideTip, true);

  function seatsOf(row) {
    return Array.prototype.slice.call(row.querySelectorAll(SEAT));
  }

  function target(seat, key) {
    var row = seat.closest(".row");
    var cells = seatsOf(row);
    var i = cells.indexOf(seat);
    if (key === "ArrowLeft") return cells[i - 1];
    if (key === "ArrowRight") return cells[i + 1];
    if (key === "Home") return cells[0];
    if (key === "End") return cells[cells.length - 1];
    var rows = Array.prototype.slice.call(seat.closest(".seat-map").querySelectorAll(".row"));
    var next = rows[rows.indexOf(row) + (key === "ArrowUp" ? -1 : 1)];
    if (!next) return null;
    var nextCells = seatsOf(next);
    return nextCells[Math.min(i, nextCells.length - 1)];
  }

  function rove(map) {
    var seats = map.querySelectorAll(".row .seat");
    if (!seats.length) return;
    var current = (lastFocused && document.getElementById(lastFocused)) ||
      map.querySelector(".seat[data-state=mine]") ||
      map.querySelector(".seat[data-state=available]") || seats[0];
    seats.forEach(function (seat) { seat.tabIndex = seat === current ? 0 : -1; });
  }

  function setUp() {
    document.querySelectorAll(".seat-map").forEach(rove);
  }

  document.addEventListener("keydown", function (e) {
    var seat = e.target.closest && e.target.closest(".seat-map .row .seat");
    if (!seat || MOVES.indexOf(e.key) < 0 || e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();  // arrows must not scroll the page
    var next = target(seat, e.key);
    if (!next) return;
    seat.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
    next.scrollIntoView({block: "nearest", inline: "nearest"});
  });

  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches(".seat-map .row .seat")) lastFocused = e.target.id;
    if (tipped(e)) showTip(e.target.closest(".seat"));
  });

  document.addEventListener("htmx:beforeSwap", function () {
    panned = Array.prototype.map.call(document.querySelectorAll(PANS), function (map) {
      return [map.scrollLeft, map.scrollTop];
    });
  });

  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll(PANS).forEach(function (map, i) {
      if (panned[i]) { map.scrollLeft = panned[i][0]; map.scrollTop = panned[i][1]; }
    });
  });

  function tell() {
    var shown = {};
    document.querySelectorAll("[data-notice]").forEach(function (notice) {
      var key = notice.getAttribute("data-notice");
      shown[key] = true;
      if (told[key] || !window.announce) return;
      window.announce(notice.textContent.replace(/\s+/g, " ").trim());
    });
    told = shown;  // a notice that goes and comes back is read out again
  }

  // Taken seats stay focusable (so they can be reached and heard) but do nothing.
  document.addEventListener("click", function (e) {
    var seat = e.target.closest && e.target.closest(".seat-map button.seat[aria-disabled=true]");
    if (seat) { e.preventDefault(); e.stopImmediatePropagation(); }
  }, true);

  document.addEventListener("DOMContentLoaded", function () { setUp(); tell(); });
  document.addEventListener("htmx:afterSettle", function () { setUp(); tell(); });
})();
