// evbus console: j/k move through a table's rows, Enter opens the current
// row's first link. Pages work without it.
(function () {
  "use strict";
  var current = -1;
  function rows() {
    var t = document.querySelector("table.nav, table#fingerprints, table#letters, table#groups");
    return t ? Array.prototype.slice.call(t.querySelectorAll("tbody tr")) : [];
  }
  function move(by) {
    var rs = rows();
    if (rs.length === 0) { return; }
    if (current >= 0 && rs[current]) { rs[current].classList.remove("current"); }
    current = Math.max(0, Math.min(rs.length - 1, current + by));
    var r = rs[current];
    r.classList.add("current");
    r.setAttribute("tabindex", "-1");
    r.focus();
    r.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (e.ctrlKey || e.metaKey || e.altKey || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || tag === "BUTTON") { return; }
    if (e.key === "j") { move(1); e.preventDefault(); }
    else if (e.key === "k") { move(-1); e.preventDefault(); }
    else if (e.key === "Enter" && current >= 0) {
      var r = rows()[current];
      var a = r && r.querySelector("a[href]");
      if (a) { a.click(); e.preventDefault(); }
    }
  });
})();
