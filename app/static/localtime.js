// Times for fans in their own time zone. The server writes each as
// <time datetime="...Z" data-local="short|medium">... UTC</time> (app/i18n.py
// local_time); this rewrites the text in the browser's zone and the page's
// language, with the zone named ("GMT+9"), and keeps the UTC text as the
// title. Without JavaScript the UTC text stays.
(function () {
  function localise(root) {
    var lang = document.documentElement.lang || undefined;
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var options = {year: "numeric", month: "short", day: "numeric",
                     hour: "numeric", minute: "2-digit", timeZoneName: "short"};
      if (el.getAttribute("data-local") === "medium") options.second = "2-digit";
      if (!el.title) el.title = el.textContent;
      el.textContent = new Intl.DateTimeFormat(lang, options).format(at);
      el.removeAttribute("data-local");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localise(document); });
  document.addEventListener("htmx:afterSettle", function (e) { localise(e.target); });
})();
