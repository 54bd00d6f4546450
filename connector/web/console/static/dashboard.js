/* Relay dashboard: sortable and filterable tables, charts from the page's JSON blocks (Chart.js), no inline script. */
(function () {
  "use strict";

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    return cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
  }

  function sortBy(table, index, numeric, descending) {
    var body = table.tBodies[0];
    if (!body) { return; }
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("empty"); });
    rows.sort(function (a, b) {
      var x = cellValue(a, index), y = cellValue(b, index), order;
      if (numeric) {
        var nx = parseFloat(String(x).replace(/[^0-9.eE+-]/g, "")), ny = parseFloat(String(y).replace(/[^0-9.eE+-]/g, ""));
        if (isNaN(nx) && isNaN(ny)) { order = 0; } else if (isNaN(nx)) { return 1; } else if (isNaN(ny)) { return -1; } else { order = nx - ny; }
      } else {
        order = String(x).localeCompare(String(y), undefined, { numeric: true, sensitivity: "base" });
      }
      return descending ? -order : order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    var head = table.tHead;
    if (!head || !head.rows.length) { return; }
    Array.prototype.forEach.call(head.rows[0].cells, function (th, index) {
      if (th.getAttribute("data-type") === "number") {
        Array.prototype.forEach.call(table.tBodies[0] ? table.tBodies[0].rows : [], function (row) {
          if (row.cells[index] && !row.classList.contains("empty")) { row.cells[index].classList.add("num"); }
        });
      }
      th.setAttribute("tabindex", "0");
      th.setAttribute("title", "Sort");
      var toggle = function () {
        var descending = th.getAttribute("aria-sort") === "ascending";
        Array.prototype.forEach.call(head.rows[0].cells, function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortBy(table, index, th.getAttribute("data-type") === "number", descending);
      };
      th.addEventListener("click", toggle);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
    });
  });

  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table || !table.tBodies[0]) { return; }
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        if (row.classList.contains("empty")) { return; }
        var text = row.textContent.toLowerCase();
        row.hidden = !words.every(function (w) { return text.indexOf(w) !== -1; });
      });
    });
  });

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { if (select.form) { select.form.submit(); } });
  });

  var palette = ["#2457c5", "#e07b00", "#1b7f3b", "#b3261e", "#7b3fb5", "#00838f", "#8d6e00", "#5d6776"];

  function chartConfig(spec) {
    var datasets = spec.datasets.map(function (d, i) {
      var color = d.color || palette[i % palette.length];
      return {
        label: d.label, data: d.data, type: d.type || undefined, backgroundColor: d.type === "line" ? color : color + "cc",
        borderColor: color, borderWidth: d.type === "line" ? 2 : 1, borderDash: d.dashed ? [6, 4] : undefined,
        pointRadius: d.type === "line" ? (d.dashed ? 0 : 2) : undefined, fill: false, stack: d.stack,
        yAxisID: d.axis || undefined, order: d.type === "line" ? 0 : 1, tension: 0.2
      };
    });
    var valueAxis = { beginAtZero: true, stacked: !!spec.stacked, title: { display: !!spec.unit, text: spec.unit || "" } };
    if (spec.max !== undefined && spec.max !== null) { valueAxis.suggestedMax = spec.max; }
    var horizontal = !!spec.horizontal;
    var categoryAxis = { stacked: !!spec.stacked, ticks: { autoSkip: !horizontal, maxRotation: 40 } };
    return {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, indexAxis: horizontal ? "y" : "x",
        plugins: { legend: { display: datasets.length > 1, position: "bottom", labels: { boxWidth: 12 } } },
        scales: horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis }
      }
    };
  }

  window.relayCharts = {};
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart"));
    if (!source || typeof window.Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var box = canvas.parentNode;
    if (!spec.labels || !spec.labels.length) {
      var empty = document.createElement("p");
      empty.className = "note";
      empty.textContent = spec.empty || "Nothing to chart in this period.";
      box.replaceChild(empty, canvas);
      box.style.height = "auto";
      return;
    }
    if (spec.height) { box.style.height = spec.height + "px"; }
    var chart = new window.Chart(canvas, chartConfig(spec));
    window.relayCharts[canvas.id] = chart;
    canvas.setAttribute("data-rendered", String(spec.datasets.reduce(function (n, d) { return n + d.data.length; }, 0)));
  });
}());
