// The pipeline board: drag and drop between stages, by mouse or by keyboard (focus a card, Space
// to pick it up, Left/Right to choose a stage, Space to drop, Escape to cancel). Each move posts the
// card's own form (the no-JavaScript fallback, inside its "Move" details), so the server's rules
// apply unchanged; the board and its totals are then redrawn from the server's answer. A move to a
// lost stage asks for the reason first, in a dialog.
(function () {
  "use strict";

  function init() {
    var board = document.querySelector(".board");
    if (!board || board.dataset.canWrite !== "1") return;
    var dialog = document.getElementById("reason-dialog");
    var status = document.getElementById("board-status");
    var dragged = null;
    var grabbed = null; // keyboard: {card, index}

    function columns() { return Array.prototype.slice.call(board.querySelectorAll(".column")); }
    function titleOf(card) { return card.querySelector("strong").textContent.trim(); }
    function announce(text) { if (status) { status.textContent = ""; status.textContent = text; } }
    function clearTargets() { columns().forEach(function (c) { c.classList.remove("drop-target"); }); }

    function askReason(card, column) {
      return new Promise(function (resolve) {
        if (!dialog || typeof dialog.showModal !== "function") {
          var answer = window.prompt("Why was this deal lost?");
          resolve(answer && answer.trim() ? answer.trim() : null);
          return;
        }
        var text = dialog.querySelector("textarea");
        var error = document.getElementById("reason-dialog-error");
        dialog.querySelector("#reason-dialog-deal").textContent = titleOf(card);
        dialog.querySelector(".reason-dialog-stage").textContent = column.dataset.name;
        text.value = "";
        error.hidden = true;
        dialog.returnValue = "";
        dialog.addEventListener("close", function onClose() {
          dialog.removeEventListener("close", onClose);
          var reason = text.value.trim();
          resolve(dialog.returnValue === "move" && reason ? reason : null);
        });
        dialog.showModal();
        text.focus();
      });
    }

    function redraw(html, dealId) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var fresh = doc.querySelector(".board");
      if (!fresh) return false;
      board.innerHTML = fresh.innerHTML;
      var summary = document.querySelector(".pipeline-summary");
      var freshSummary = doc.querySelector(".pipeline-summary");
      if (summary && freshSummary) summary.innerHTML = freshSummary.innerHTML;
      // The server's message ("… is now in Qualified", or why not) into the page's own live region.
      var region = document.querySelector('#main > [role="status"]');
      var freshRegion = doc.querySelector('#main > [role="status"]');
      if (region && freshRegion) region.innerHTML = freshRegion.innerHTML;
      var card = document.getElementById("deal-" + dealId);
      if (card) card.focus({preventScroll: false});
      return true;
    }

    async function move(card, column) {
      var form = card.querySelector(".move-form");
      var select = form && form.querySelector("select[name=stage]");
      if (!select || select.value === column.dataset.stage) return;
      var reason = "";
      if (column.dataset.kind === "lost") {
        reason = await askReason(card, column);
        if (reason === null) { announce("Not moved."); card.focus(); return; }
      }
      select.value = column.dataset.stage;
      form.querySelector("input[name=reason]").value = reason;
      var dealId = card.dataset.deal;
      // At once on screen; the server's answer (the board as it is now) follows.
      var empty = column.querySelector(".empty");
      if (empty) empty.remove();
      column.appendChild(card);
      board.setAttribute("aria-busy", "true");
      try {
        var response = await fetch(form.action, {
          method: "POST", body: new FormData(form), credentials: "same-origin",
          headers: {"X-Requested-With": "fetch"},
        });
        if (!response.ok || !redraw(await response.text(), dealId)) throw new Error("refused");
      } catch (err) {
        form.submit(); // the plain form: the server answers with the board and its message
      } finally {
        board.removeAttribute("aria-busy");
      }
    }

    board.addEventListener("dragstart", function (e) {
      var card = e.target.closest && e.target.closest(".deal-card");
      if (!card) return;
      dragged = card;
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", card.dataset.deal);
    });
    board.addEventListener("dragend", function () { dragged = null; clearTargets(); });
    board.addEventListener("dragover", function (e) {
      var column = dragged && e.target.closest(".column");
      if (!column) return;
      e.preventDefault();
      clearTargets();
      column.classList.add("drop-target");
    });
    board.addEventListener("drop", function (e) {
      var column = e.target.closest(".column");
      e.preventDefault();
      clearTargets();
      var card = dragged;
      dragged = null;
      if (card && column) move(card, column);
    });

    // Tabbing away from a picked-up card puts it back.
    board.addEventListener("focusout", function (e) {
      if (!grabbed || e.target !== grabbed.card) return;
      grabbed.card.classList.remove("grabbed");
      grabbed = null;
      clearTargets();
      announce("Not moved.");
    });

    board.addEventListener("keydown", function (e) {
      var card = e.target.classList && e.target.classList.contains("deal-card") ? e.target : null;
      if (!card) return;
      var cols = columns();
      if (!grabbed) {
        if (e.key === " " || e.key === "Spacebar") {
          e.preventDefault();
          var index = cols.indexOf(card.closest(".column"));
          grabbed = {card: card, index: index};
          card.classList.add("grabbed");
          cols[index].classList.add("drop-target");
          announce("Picked up " + titleOf(card) + ", in " + cols[index].dataset.name +
            ". Left and right arrows choose a stage, Space drops, Escape cancels.");
        }
        return;
      }
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        e.preventDefault();
        var step = e.key === "ArrowRight" ? 1 : -1;
        grabbed.index = Math.max(0, Math.min(cols.length - 1, grabbed.index + step));
        clearTargets();
        cols[grabbed.index].classList.add("drop-target");
        cols[grabbed.index].scrollIntoView({block: "nearest", inline: "nearest"});
        announce(cols[grabbed.index].dataset.name);
      } else if (e.key === " " || e.key === "Spacebar" || e.key === "Enter" || e.key === "Escape") {
        e.preventDefault();
        var target = cols[grabbed.index];
        card.classList.remove("grabbed");
        clearTargets();
        grabbed = null;
        if (e.key === "Escape") { announce("Not moved."); return; }
        move(card, target);
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
