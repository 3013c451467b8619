// Progressive enhancement only: every page works without it. It keeps "time remaining" live
// (the server renders the same text at page load) and refreshes the board now and then.
(function () {
  "use strict";
  var words = {};
  try { words = JSON.parse(document.body.getAttribute("data-l10n") || "{}"); } catch (e) { words = {}; }
  function fill(template, name, value) { return (template || "").replace("%(" + name + ")s", value); }
  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000), d = Math.floor(minutes / 1440),
        h = Math.floor((minutes % 1440) / 60), m = minutes % 60, parts = [];
    if (d) { parts.push(fill(words.d, "n", d)); }
    if (d || h) { parts.push(fill(words.h, "n", h)); }
    parts.push(fill(words.min, "n", (d || h) && m < 10 ? "0" + m : m));
    return parts.join(" ");
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var left = due - now;
      el.textContent = fill(left >= 0 ? words.left : words.over, "span", span(left));
      el.classList.toggle("overdue", left < 0);
    });
  }
  tick();
  setInterval(tick, 30000);
  var refresh = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (refresh > 0) {
    setTimeout(function () {
      // Not while someone is typing a reason into a form on the page.
      if (!document.querySelector("form.act input:focus, form.act textarea:focus")) { location.reload(); }
    }, refresh * 1000);
  }
})();
