/* Transaction entry (templates/portfolios/_transaction_fields.html). Optional sugar: without it
 * every field shows and the instrument is a plain select (the plain form). With it:
 *  - only the fields the chosen kind uses show (data-kinds); hidden ones are disabled, so not sent;
 *  - the instrument select becomes a search box over ticker and name (an ARIA combobox);
 *  - the lot table shows the lots of the chosen instrument only. */
(function () {
  "use strict";

  function kindFields(form) {
    var kind = form.querySelector("select[name=kind]");
    var instrument = form.querySelector("select[name=instrument]");
    if (!kind) return;
    function apply() {
      var chosen = kind.value;
      form.querySelectorAll("[data-kinds]").forEach(function (box) {
        var shown = !chosen || box.getAttribute("data-kinds").split(" ").indexOf(chosen) >= 0;
        box.hidden = !shown;
        box.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = !shown; });
      });
      var id = instrument ? instrument.value : "";
      form.querySelectorAll(".lot-table tbody tr").forEach(function (tr) {
        var own = !id || tr.getAttribute("data-instrument") === id;
        tr.hidden = !own;
        tr.querySelectorAll("input").forEach(function (el) { el.disabled = !own || el.closest("[data-kinds]").hidden; });
      });
    }
    kind.addEventListener("change", apply);
    if (instrument) instrument.addEventListener("change", apply);
    apply();
  }

  var comboCount = 0;
  function instrumentSearch(form) {
    var select = form.querySelector("select[name=instrument]");
    if (!select) return;
    var n = ++comboCount;
    var options = Array.prototype.slice.call(select.options).filter(function (o) { return o.value; }).map(function (o) {
      return { value: o.value, text: o.text, haystack: o.text.toLowerCase() };
    });
    var wrap = document.createElement("div");
    wrap.className = "combo";
    var input = document.createElement("input");
    input.type = "text";
    input.id = select.id + "_search";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", "combo-list-" + n);
    input.setAttribute("autocomplete", "off");
    input.placeholder = "Ticker or name";
    var described = select.getAttribute("aria-describedby");
    if (described) input.setAttribute("aria-describedby", described);
    if (select.getAttribute("aria-invalid")) input.setAttribute("aria-invalid", "true");
    var list = document.createElement("ul");
    list.id = "combo-list-" + n;
    list.setAttribute("role", "listbox");
    list.hidden = true;
    var label = form.querySelector("label[for='" + select.id + "']");
    if (label) {
      label.setAttribute("for", input.id);
      list.setAttribute("aria-label", label.textContent.replace("(optional)", "").trim());
    }
    var current = select.options[select.selectedIndex];
    input.value = current && current.value ? current.text : "";
    select.hidden = true;
    select.tabIndex = -1;
    select.parentNode.insertBefore(wrap, select);
    wrap.appendChild(input);
    wrap.appendChild(list);
    var matches = [], active = -1;

    function open(query) {
      var words = query.toLowerCase().split(/\s+/).filter(Boolean);
      matches = options.filter(function (o) {
        return words.every(function (w) { return o.haystack.indexOf(w) >= 0; });
      }).slice(0, 50);
      list.textContent = "";
      matches.forEach(function (o, i) {
        var li = document.createElement("li");
        li.id = list.id + "-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        var cut = o.text.indexOf(" · ");
        var strong = document.createElement("strong");
        strong.textContent = cut > 0 ? o.text.slice(0, cut) : o.text;
        li.appendChild(strong);
        if (cut > 0) {
          var small = document.createElement("small");
          small.textContent = " " + o.text.slice(cut + 3);
          li.appendChild(small);
        }
        li.addEventListener("mousedown", function (event) { event.preventDefault(); choose(i); });
        list.appendChild(li);
      });
      if (!matches.length) {
        var none = document.createElement("li");
        none.className = "combo-empty";
        none.textContent = "No instrument matches “" + query + "”.";
        list.appendChild(none);
      }
      active = -1;
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      input.removeAttribute("aria-activedescendant");
    }
    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }
    function highlight(i) {
      if (!matches.length) return;
      active = (i + matches.length) % matches.length;
      list.querySelectorAll("[role=option]").forEach(function (li, k) {
        li.setAttribute("aria-selected", k === active ? "true" : "false");
        if (k === active) li.scrollIntoView({ block: "nearest" });
      });
      input.setAttribute("aria-activedescendant", list.id + "-" + active);
    }
    function choose(i) {
      var o = matches[i];
      if (!o) return;
      select.value = o.value;
      input.value = o.text;
      close();
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
    input.addEventListener("input", function () {
      if (!input.value.trim()) {
        select.value = "";
        select.dispatchEvent(new Event("change", { bubbles: true }));
        close();
        return;
      }
      open(input.value);
    });
    input.addEventListener("focus", function () { if (input.value && select.value === "") open(input.value); });
    input.addEventListener("blur", function () {
      close();
      // A typed text that names no instrument is not kept silently: the field shows what is chosen.
      var chosen = select.options[select.selectedIndex];
      input.value = chosen && chosen.value ? chosen.text : "";
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") { event.preventDefault(); if (list.hidden) open(input.value); highlight(active + 1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); }
      else if (event.key === "Enter" && !list.hidden) { event.preventDefault(); choose(active >= 0 ? active : 0); }
      else if (event.key === "Escape") { close(); }
    });
    select.addEventListener("change", function () {
      // keep the disabled state of the search box in step with the select's (kind changes)
      input.disabled = select.disabled;
    });
    var observer = new MutationObserver(function () { input.disabled = select.disabled; });
    observer.observe(select, { attributes: true, attributeFilter: ["disabled"] });
  }

  function init() {
    document.querySelectorAll("form.txn-form").forEach(function (form) {
      instrumentSearch(form);
      kindFields(form);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
