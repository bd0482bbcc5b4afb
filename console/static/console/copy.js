// Copy buttons of the dashboard and the share page: the clipboard API, or select the text for Ctrl+C.
// Loaded from our static files (the CSP allows no inline script); no framework.
(function () {
  "use strict";
  function copied(button, status) {
    status.textContent = button.dataset.copiedText || "Copied!";
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var input = document.getElementById(button.dataset.copyTarget);
    var status = button.closest(".copy-link").querySelector(".copy-status");
    if (!input) return;
    input.focus();
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(
        function () { copied(button, status); },
        function () { document.execCommand && document.execCommand("copy"); }
      );
    } else if (document.execCommand && document.execCommand("copy")) {
      copied(button, status);
    }
  });
})();
