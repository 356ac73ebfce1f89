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
(function () {
  var MOVES = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"];
  var SEAT = "button.seat, a.seat";
  var lastFocused = null;  // kept across the refreshes (same ids)
  var panned = [];  // [scrollLeft, scrollTop] of each map before a refresh

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
  });

  document.addEventListener("htmx:beforeSwap", function () {
    panned = Array.prototype.map.call(document.querySelectorAll(".seat-map"), function (map) {
      return [map.scrollLeft, map.scrollTop];
    });
  });

  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll(".seat-map").forEach(function (map, i) {
      if (panned[i]) { map.scrollLeft = panned[i][0]; map.scrollTop = panned[i][1]; }
    });
  });

  // Taken seats stay focusable (so they can be reached and heard) but do nothing.
  document.addEventListener("click", function (e) {
    var seat = e.target.closest && e.target.closest(".seat-map button.seat[aria-disabled=true]");
    if (seat) { e.preventDefault(); e.stopImmediatePropagation(); }
  }, true);

  document.addEventListener("DOMContentLoaded", setUp);
  document.addEventListener("htmx:afterSettle", setUp);
})();
