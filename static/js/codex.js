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

  // Tables wider than the screen scroll sideways: make the scroll area reachable by keyboard
  // (focusable, named after the table's caption) when, and only when, it actually scrolls.
  function labelScrollableTables() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth <= wrap.clientWidth || wrap.hasAttribute("tabindex")) return;
      var caption = wrap.querySelector("caption");
      wrap.setAttribute("tabindex", "0");
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
    var message = form.getAttribute && form.getAttribute("data-confirm");
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
})();
