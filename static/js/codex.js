/* Codex: optional sugar. Every page works without this file. */
(function () {
  "use strict";

  // Theme switch: apply at once and remember in the same cookie the server reads.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("theme-switch")) return;
    var button = event.submitter;
    if (!button || button.name !== "theme") return;
    event.preventDefault();
    var value = button.value;
    if (value) {
      document.documentElement.setAttribute("data-theme", value);
      document.cookie = "codex_theme=" + value + "; path=/; max-age=31536000; samesite=lax";
    } else {
      document.documentElement.removeAttribute("data-theme");
      document.cookie = "codex_theme=; path=/; max-age=0; samesite=lax";
    }
    form.querySelectorAll("button[name=theme]").forEach(function (b) {
      b.setAttribute("aria-pressed", b === button ? "true" : "false");
    });
  });

  // The phone's menu (docs/decisions/1250): the CSS hides the menu on narrow screens only while
  // scripting is on; this button opens and closes it, Escape closes it and gives focus back.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-menu-toggle]");
    if (!button) return;
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    document.body.classList.toggle("menu-open", open);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !document.body.classList.contains("menu-open")) return;
    var button = document.querySelector("[data-menu-toggle]");
    if (!button) return;
    button.setAttribute("aria-expanded", "false");
    document.body.classList.remove("menu-open");
    button.focus();
  });

  // Tables wider than the screen scroll sideways (in a .table-wrap, a .scroll or their card): make
  // the scroll area reachable by keyboard (focusable, named after the table's caption or the card's
  // heading) when, and only when, it actually scrolls.
  function labelScrollableTables() {
    document.querySelectorAll(".table-wrap, .scroll, section.card, div.card").forEach(function (wrap) {
      if (wrap.scrollWidth <= wrap.clientWidth || wrap.hasAttribute("tabindex")) return;
      wrap.setAttribute("tabindex", "0");
      if (wrap.hasAttribute("aria-labelledby") || wrap.hasAttribute("aria-label")) return;
      var card = wrap.closest("section, .card");
      var caption = wrap.querySelector("caption") || (card && card.querySelector("h2, h3"));
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", caption ? caption.textContent.trim() : "Table");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", labelScrollableTables);
  } else {
    labelScrollableTables();
  }
  window.addEventListener("resize", labelScrollableTables);

  // Destructive actions: ask here instead of showing the server's confirmation page.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    // A button may carry its own question (one form shared by many rows' buttons, each with its formaction).
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) || (form.getAttribute && form.getAttribute("data-confirm"));
    if (!message || form.querySelector("input[name=confirmed]")) return;
    if (!window.confirm(message)) {
      event.preventDefault();
      return;
    }
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "confirmed";
    input.value = "yes";
    form.appendChild(input);
  });
  // Live updates: the bell's count and list, pushed by the stream (EventSource, Last-Event-ID on
  // reconnect) and polled while no stream is held (docs/live-updates.md).
  function liveBell() {
    var root = document.querySelector("[data-live-bell]");
    if (!root) return;
    var api = root.getAttribute("data-api");
    var pollMs = (parseInt(root.getAttribute("data-poll"), 10) || 30) * 1000;
    var link = root.querySelector(".bell-link");
    var count = root.querySelector("[data-live-count]");
    var panel = root.querySelector("[data-live-panel]");
    var list = root.querySelector("[data-live-list]");
    var announce = root.querySelector("[data-live-announce]");
    var csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
    var lastId = 0, primed = false, lastEventId = "", source = null, pollTimer = null;

    function setCount(n) {
      count.textContent = String(n);
      count.hidden = !n;
      root.setAttribute("data-unread", String(n));
    }
    function post(path, body) {
      return fetch(api + path, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
        body: JSON.stringify(body)
      });
    }
    function render(n) {
      var li = document.createElement("li");
      li.className = "bell-item" + (n.unread ? " unread" : "");
      li.setAttribute("data-notification-id", String(n.id));
      var a = document.createElement("a");
      a.href = n.url || "/notifications/";
      a.textContent = n.title;
      a.addEventListener("click", function (event) {
        if (!n.unread) return;
        event.preventDefault();
        post("mark-read/", { ids: [n.id] }).finally(function () { window.location.href = a.href; });
      });
      var kind = document.createElement("span");
      kind.className = "badge";
      kind.textContent = n.kind_label;
      li.appendChild(kind);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(a);
      return li;
    }
    function add(n, prepend) {
      if (list.querySelector('[data-notification-id="' + n.id + '"]')) return;
      if (prepend) list.insertBefore(render(n), list.firstChild); else list.appendChild(render(n));
      while (list.children.length > 10) list.removeChild(list.lastChild);
    }
    function notified(n) {
      if (n.id > lastId) lastId = n.id;
      setCount(n.unread_count);
      add(n, true);
      announce.textContent = "New notification: " + n.title;
      document.dispatchEvent(new CustomEvent("codex:notification", { detail: n }));
    }
    function read(d) {
      setCount(d.unread_count);
      list.querySelectorAll(".bell-item.unread").forEach(function (li) {
        if (d.ids === null || d.ids.indexOf(parseInt(li.getAttribute("data-notification-id"), 10)) >= 0) {
          li.classList.remove("unread");
        }
      });
    }
    function startPolling() {
      if (!pollTimer) pollTimer = window.setInterval(function () { poll(false); }, pollMs);
    }
    function stopPolling() {
      if (pollTimer) window.clearInterval(pollTimer);
      pollTimer = null;
    }
    function on(name, handler) {
      source.addEventListener(name, function (event) {
        if (event.lastEventId) lastEventId = event.lastEventId;
        handler(JSON.parse(event.data));
      });
    }
    function openStream(url) {
      if (!url || !window.EventSource) { startPolling(); return; }
      if (source) source.close();
      if (lastEventId) url += "&last_event_id=" + encodeURIComponent(lastEventId);
      source = new EventSource(url);
      on("ready", function () { root.setAttribute("data-live", "stream"); stopPolling(); });
      on("notification", notified);
      on("notification.read", read);
      on("figures", function (d) { document.dispatchEvent(new CustomEvent("codex:figures", { detail: d })); });
      on("expired", function () { source.close(); source = null; poll(true); });
      // The browser reconnects by itself (sending Last-Event-ID); poll meanwhile. A refused
      // stream (token expired, server gone) stays closed: the next poll brings a fresh token.
      source.onerror = function () {
        root.setAttribute("data-live", "polling");
        if (source && source.readyState === EventSource.CLOSED) source = null;
        startPolling();
      };
    }
    function poll(reopen) {
      return fetch(api + "live/?after=" + lastId, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (d) {
          var first = !primed;  // the first answer fills the list; later ones are news
          primed = true;
          setCount(d.unread);
          d.items.slice().reverse().forEach(function (n) {
            if (n.id > lastId) lastId = n.id;
            if (first) add(n, false); else notified(Object.assign({ unread_count: d.unread }, n));
          });
          if ((reopen || !source) && d.stream_url) openStream(d.stream_url);
        })
        .catch(function () { startPolling(); });
    }
    var listed = false;
    function loadList() {
      fetch(api + "?page_size=10", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (d) {
          listed = true;
          d.results.forEach(function (n) { add(n, false); if (n.id > lastId) lastId = n.id; });
        })
        .catch(function () {});
    }
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var open = panel.hidden;
      panel.hidden = !open;
      link.setAttribute("aria-expanded", open ? "true" : "false");
      if (open && !listed) loadList();
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !panel.hidden) { panel.hidden = true; link.setAttribute("aria-expanded", "false"); link.focus(); }
    });
    root.querySelector("[data-live-markall]").addEventListener("click", function () {
      post("mark-read/", {}).then(function (r) { if (r.ok) read({ ids: null, unread_count: 0 }); });
    });
    openStream(root.getAttribute("data-stream"));
  }

  // Pages showing figures (portfolio page, dashboard) fetch themselves again when a valuation
  // rebuild for them finishes, so their numbers change without a reload.
  document.addEventListener("codex:figures", function (event) {
    var holder = document.querySelector("[data-live-figures]");
    if (!holder) return;
    var wanted = holder.getAttribute("data-live-figures");
    if (wanted !== "firm" && String(event.detail.portfolio_id) !== wanted) return;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live-figures]");
        if (fresh) holder.replaceWith(fresh);
      })
      .catch(function () {});
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", liveBell);
  else liveBell();
})();
