/*
 * parrain.js: carries a Parrain referral from a business's landing page to its own signup form.
 *
 * A referral link (/r/<code>) lands on the business's site with `?ref=<code>&click_id=<id>`. This script
 * keeps both in the visitor's browser, on the business's own domain (localStorage, or a first-party
 * cookie when storage is refused), for the program's attribution window, and fills the hidden fields of
 * the signup form, on whatever page it is, so that the business passes them on to Parrain's API.
 *
 *   <script src="https://parrain.example.com/parrain.js" data-window-days="30" defer></script>
 *   <input type="hidden" name="parrain_ref"> <input type="hidden" name="parrain_click_id">
 *
 * data-window-days   days a referral is kept (the program's attribution window; 30 by default)
 * data-ref-field     name of the field to fill with the code (default "parrain_ref")
 * data-click-field   name of the field to fill with the click id (default "parrain_click_id")
 *
 * Plain JavaScript, no dependency, no eval, nothing inline: it runs under a strict Content-Security-Policy.
 * A newer referral replaces an older one (last click), as Parrain attributes by default. Forms added to
 * the page later can be filled by calling window.Parrain.fill().
 */
(function () {
  "use strict";

  var KEY = "parrain_referral";
  var DAY_MS = 24 * 60 * 60 * 1000;
  // Codes and click ids are short and plain: anything else in the URL is not ours and is ignored.
  var SAFE = /^[A-Za-z0-9_-]{1,64}$/;

  var script = document.currentScript;
  var data = (script && script.dataset) || {};
  var windowDays = parseInt(data.windowDays, 10);
  if (!(windowDays > 0)) {
    windowDays = 30;
  }
  var refField = data.refField || "parrain_ref";
  var clickField = data.clickField || "parrain_click_id";

  function save(value) {
    var text = JSON.stringify(value);
    try {
      window.localStorage.setItem(KEY, text);
      return;
    } catch (e) {
      // Storage refused (private mode, a policy): a first-party cookie does the same job.
    }
    var secure = window.location.protocol === "https:" ? "; Secure" : "";
    document.cookie = KEY + "=" + encodeURIComponent(text) + "; Max-Age=" + windowDays * 86400 +
      "; Path=/; SameSite=Lax" + secure;
  }

  function load() {
    var text = null;
    try {
      text = window.localStorage.getItem(KEY);
    } catch (e) {
      text = null;
    }
    if (text === null) {
      var match = document.cookie.match(new RegExp("(?:^|; )" + KEY + "=([^;]*)"));
      text = match ? decodeURIComponent(match[1]) : null;
    }
    if (text === null) {
      return null;
    }
    try {
      var value = JSON.parse(text);
      if (value && typeof value.expires === "number" && value.expires > Date.now()) {
        return value;
      }
    } catch (e) {
      // A damaged entry is as good as none.
    }
    forget();
    return null;
  }

  function forget() {
    try {
      window.localStorage.removeItem(KEY);
    } catch (e) {
      // Nothing stored there.
    }
    document.cookie = KEY + "=; Max-Age=0; Path=/; SameSite=Lax";
  }

  function remember() {
    var params = new URLSearchParams(window.location.search);
    var ref = params.get("ref");
    var clickId = params.get("click_id");
    ref = ref && SAFE.test(ref) ? ref : "";
    clickId = clickId && SAFE.test(clickId) ? clickId : "";
    if (ref || clickId) {
      save({ ref: ref, click_id: clickId, expires: Date.now() + windowDays * DAY_MS });
    }
  }

  function setAll(name, value) {
    if (!value) {
      return;
    }
    var fields = document.getElementsByName(name);
    for (var i = 0; i < fields.length; i += 1) {
      // The business's own value (a code the visitor typed) wins over the remembered one.
      if (fields[i].tagName === "INPUT" && !fields[i].value) {
        fields[i].value = value;
      }
    }
  }

  function fill() {
    var referral = load();
    if (referral) {
      setAll(refField, referral.ref);
      setAll(clickField, referral.click_id);
    }
    return referral;
  }

  remember();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fill);
  } else {
    fill();
  }
  window.Parrain = { fill: fill, forget: forget };
})();
