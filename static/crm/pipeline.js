// Drag-and-drop sugar for the pipeline board. Without JavaScript (or for keyboard users) each
// card's own form moves the deal; dropping a card onto a column just fills and submits that form.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var board = document.querySelector(".board");
    if (!board || board.dataset.canWrite !== "1") return;
    var dragged = null;
    board.addEventListener("dragstart", function (e) {
      var card = e.target.closest(".deal-card");
      if (!card) return;
      dragged = card;
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", card.dataset.deal);
    });
    board.querySelectorAll(".column").forEach(function (column) {
      column.addEventListener("dragover", function (e) {
        if (!dragged) return;
        e.preventDefault();
        column.classList.add("drop-target");
      });
      column.addEventListener("dragleave", function () { column.classList.remove("drop-target"); });
      column.addEventListener("drop", function (e) {
        e.preventDefault();
        column.classList.remove("drop-target");
        if (!dragged) return;
        var form = dragged.querySelector(".move-form");
        var select = form && form.querySelector("select[name=stage]");
        if (!select || select.value === column.dataset.stage) return;
        select.value = column.dataset.stage;
        var reason = form.querySelector("input[name=reason]");
        var name = column.querySelector("h2").firstChild.textContent.trim().toLowerCase();
        if (reason && !reason.value && (name === "lost" || name === "won")) {
          var answer = window.prompt("Why was this deal " + name + "?");
          if (answer === null) return;
          reason.value = answer;
        }
        form.submit();
      });
    });
  });
})();
