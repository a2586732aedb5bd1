// Sortable tables, no dependencies. Tables read fine without this script: it only turns each
// header with a data-sort type into a button. Cells carry their exact value in data-v; a cell
// with an empty data-v is missing and always sorts last, whichever the direction.
"use strict";
(function () {
  function key(cell, type) {
    var raw = cell ? cell.getAttribute("data-v") : null;
    if (raw === null) raw = cell ? cell.textContent.trim() : "";
    if (raw === "") return null;
    if (type === "num") {
      var v = raw === "Infinity" ? Infinity : raw === "-Infinity" ? -Infinity : parseFloat(raw);
      return isNaN(v) ? null : v;
    }
    return raw.toLowerCase();
  }

  function sortBy(table, th, col, type) {
    var descending = th.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, i) { return { row: row, k: key(row.cells[col], type), i: i }; });
    keyed.sort(function (a, b) {
      if (a.k === null || b.k === null) return (a.k === null) - (b.k === null) || a.i - b.i;
      var c = a.k < b.k ? -1 : a.k > b.k ? 1 : 0;
      return (descending ? -c : c) || a.i - b.i;
    });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var frag = document.createDocumentFragment();
    keyed.forEach(function (e) { frag.appendChild(e.row); });
    body.appendChild(frag);
  }

  function init(table) {
    var head = table.tHead && table.tHead.rows[0];
    if (!head) return;
    Array.prototype.forEach.call(head.cells, function (th, col) {
      var type = th.getAttribute("data-sort");
      if (!type || type === "none") return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, th, col, type); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), init);
  });
})();
