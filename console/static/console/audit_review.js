// The review queue: a "select all on this page" box, shown only when this script runs (without it, each
// signup's own box still works). It checks or clears every signup box of its form.
(function () {
  "use strict";
  document.querySelectorAll("[data-select-all]").forEach(function (all) {
    var form = all.form;
    var name = all.getAttribute("data-select-all");
    var boxes = function () {
      return Array.prototype.slice.call(form.querySelectorAll('input[type="checkbox"][name="' + name + '"]'));
    };
    var sync = function () {
      var list = boxes();
      var checked = list.filter(function (box) { return box.checked; }).length;
      all.checked = list.length > 0 && checked === list.length;
      all.indeterminate = checked > 0 && checked < list.length;
    };
    all.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = all.checked; });
    });
    boxes().forEach(function (box) { box.addEventListener("change", sync); });
    all.closest("[hidden]") && all.closest("[hidden]").removeAttribute("hidden");
    sync();
  });
})();
