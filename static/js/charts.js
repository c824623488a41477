/* Charts: crosshair and tooltip over line charts (codex/charts.py). Optional sugar: the SVG and
 * its data table work without this file. Pointer and keyboard (arrow keys, Home, End) both move it. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var numberFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    parent.appendChild(node);
    return node;
  }
  function show(value, data) {
    var text = numberFormat.format(value);
    if (data.percent) return (value > 0 ? "+" : "") + text + " %";
    return data.unit ? text + " " + data.unit : text;
  }

  function enhance(svg) {
    var data = JSON.parse(svg.getAttribute("data-chart"));
    var base = data.series[0].points;
    if (!base.length) return;
    var figure = svg.closest(".chart-figure");
    var tip = document.createElement("div");
    tip.className = "chart-tip";
    tip.hidden = true;
    tip.setAttribute("role", "status");
    tip.setAttribute("aria-live", "polite");
    figure.appendChild(tip);
    var layer = el("g", { "class": "crosshair-layer", visibility: "hidden" }, svg);
    var line = el("line", { "class": "crosshair", y1: data.top, y2: data.bottom }, layer);
    var dots = data.series.map(function (s, i) { return el("circle", { "class": "crosshair-dot dot-" + (i + 1), r: 4 }, layer); });
    var index = base.length - 1;
    svg.setAttribute("tabindex", "0");

    function nearest(points, x) {
      var best = 0;
      for (var i = 1; i < points.length; i++) if (Math.abs(points[i][1] - x) < Math.abs(points[best][1] - x)) best = i;
      return best;
    }
    function place(i) {
      index = Math.max(0, Math.min(base.length - 1, i));
      var p = base[index];
      line.setAttribute("x1", p[1]);
      line.setAttribute("x2", p[1]);
      tip.textContent = "";
      var head = document.createElement("strong");
      head.textContent = dateFormat.format(new Date(p[0] + "T00:00:00"));
      tip.appendChild(head);
      data.series.forEach(function (s, k) {
        var q = s.points[k === 0 ? index : nearest(s.points, p[1])];
        dots[k].setAttribute("cx", q[1]);
        dots[k].setAttribute("cy", q[2]);
        var row = document.createElement("div");
        var key = document.createElement("span");
        key.className = "key key-" + (k + 1);
        row.appendChild(key);
        row.appendChild(document.createTextNode(s.label + ": " + show(q[3], data)));
        tip.appendChild(row);
      });
      layer.setAttribute("visibility", "visible");
      tip.hidden = false;
      var box = svg.getBoundingClientRect();
      var scale = box.width / svg.viewBox.baseVal.width;
      var left = p[1] * scale + 12;
      if (left + tip.offsetWidth > box.width) left = p[1] * scale - tip.offsetWidth - 12;
      tip.style.left = Math.max(0, left) + "px";
      tip.style.top = Math.max(0, p[2] * scale - tip.offsetHeight - 8) + "px";
    }
    function hide() {
      layer.setAttribute("visibility", "hidden");
      tip.hidden = true;
    }
    svg.addEventListener("pointermove", function (event) {
      var box = svg.getBoundingClientRect();
      var x = (event.clientX - box.left) * (svg.viewBox.baseVal.width / box.width);
      if (x < data.left - 4 || x > data.right + 4) { hide(); return; }
      place(nearest(base, x));
    });
    svg.addEventListener("pointerleave", hide);
    svg.addEventListener("focus", function () { place(index); });
    svg.addEventListener("blur", hide);
    svg.addEventListener("keydown", function (event) {
      var step = { ArrowLeft: -1, ArrowRight: 1, PageDown: -10, PageUp: 10 }[event.key];
      if (step) { event.preventDefault(); place(index + step); }
      else if (event.key === "Home") { event.preventDefault(); place(0); }
      else if (event.key === "End") { event.preventDefault(); place(base.length - 1); }
      else if (event.key === "Escape") { hide(); }
    });
  }

  function init() { document.querySelectorAll("svg.chart[data-chart]").forEach(enhance); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
