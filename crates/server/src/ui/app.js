// dolly's only script: copy buttons, and live tables that reload their
// rows every 2 s from an HTML fragment (data-refresh). Without it every
// page still works; it just does not update by itself.
"use strict";
document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.dataset.copy);
  var text = el.textContent.trim();
  var done = function () {
    b.textContent = "Copied";
    setTimeout(function () { b.textContent = "Copy"; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
    try { document.execCommand("copy"); done(); } catch (_) {}
  }
});
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var timer = setInterval(function () {
      if (document.hidden || el.contains(document.activeElement)) return;
      fetch(el.dataset.refresh, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok || r.redirected) { clearInterval(timer); return null; }
        return r.text();
      }).then(function (html) {
        if (html !== null && html !== el.innerHTML) el.innerHTML = html;
      }).catch(function () {});
    }, 2000);
  });
  document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
});
