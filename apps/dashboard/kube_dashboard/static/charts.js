// Draws each chart of a page from the JSON the server wrote beside its canvas. Chart.js is
// served by the dashboard itself (static/vendor/, from the pinned npm package): no CDN.
(function () {
  "use strict";
  if (typeof window.Chart === "undefined") {
    return; // the tables carry every figure; charts are an addition
  }
  var palette = ["#1f6f8b", "#e07a1f", "#4c9a2a", "#9b3d8f", "#c23b22", "#5a6270"];
  document.querySelectorAll("script.chart-data").forEach(function (node) {
    var spec = JSON.parse(node.textContent);
    var canvas = document.getElementById(node.dataset.canvas);
    if (!canvas) {
      return;
    }
    var datasets = spec.datasets.map(function (d, i) {
      return {
        label: d.label,
        data: d.data,
        backgroundColor: palette[i % palette.length],
        borderColor: palette[i % palette.length],
        fill: false,
        tension: 0.2
      };
    });
    new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { position: "bottom" } }
      }
    });
  });
})();
