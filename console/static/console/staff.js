// The tier form of the staff console shows the settings of the chosen kind only: an individual tier's reward,
// or a collective tier's price ladder. The other group is hidden and disabled, so its leftover values are not
// sent. Without this script both groups show, and the server ignores what the kind does not use.
(function () {
  "use strict";

  function sync(form) {
    var kind = form.querySelector("select[name=kind]");
    if (!kind) {
      return;
    }
    form.querySelectorAll("fieldset[data-kind]").forEach(function (fieldset) {
      var other = fieldset.getAttribute("data-kind") !== kind.value;
      fieldset.hidden = other;
      fieldset.disabled = other;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("tier-form");
    if (!form) {
      return;
    }
    sync(form);
    form.addEventListener("change", function (event) {
      if (event.target.name === "kind") {
        sync(form);
      }
    });
  });
})();
