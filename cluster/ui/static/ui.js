// Live updates: follow the manager's events and re-fetch this page's main section when
// one arrives. The pages work without this script; it only saves the reload.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  if (!main || !window.EventSource || !window.DOMParser) { return; }
  var pending = null;
  var busy = false;

  function refresh() {
    pending = null;
    if (busy) { pending = setTimeout(refresh, 250); return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (next) { main.innerHTML = next.innerHTML; }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  var source = new EventSource("/ui/events");
  source.onopen = function () { live.textContent = "live"; live.classList.add("on"); };
  source.onerror = function () { live.textContent = "reconnecting…"; live.classList.remove("on"); };
  source.onmessage = function () {
    // Events come in bursts (a scale is a service event and a task event per
    // replica): one re-fetch for the burst.
    if (pending === null) { pending = setTimeout(refresh, 200); }
  };
})();
