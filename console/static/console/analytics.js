/* The staff analytics page's charts (Chart.js, vendored), drawn from the JSON the page carries in
   <script id="analytics-data" type="application/json"> (json_script: no inline script under the CSP).
   Every number drawn is also in the table beside its chart; the tables are what screen readers read.
   Decimals arrive as strings ("37.5"), for display only. */
(function () {
  "use strict";

  var source = document.getElementById("analytics-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var labels = data.labels;
  var Chart = window.Chart;

  // Colours with enough contrast on white, told apart by shape too (points, dashes).
  var BLUE = "#1d4ed8";
  var GREEN = "#15803d";
  var ORANGE = "#c2410c";
  var GREY = "#52525b";

  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  Chart.defaults.animation = reduceMotion ? false : Chart.defaults.animation;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.color = "#27272a";

  function number(value) {
    return value === null || value === undefined ? null : Number(value);
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: data.funnel.map(function (s) { return labels.steps[s.step] || s.step; }),
      datasets: [{ label: labels.count, data: data.funnel.map(function (s) { return s.count; }), backgroundColor: BLUE }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
  });

  var milestoneDays = {};
  data.milestones.forEach(function (m) { milestoneDays[m.day] = m; });
  draw("chart-daily", {
    type: "line",
    data: {
      labels: data.daily.map(function (p) { return p.day; }),
      datasets: [
        { label: labels.signups, data: data.daily.map(function (p) { return p.signups; }), borderColor: GREY,
          backgroundColor: GREY, borderDash: [6, 4], pointRadius: 0, tension: 0.2 },
        { label: labels.qualified, data: data.daily.map(function (p) { return p.qualified; }), borderColor: BLUE,
          backgroundColor: BLUE, pointRadius: 0, tension: 0.2 },
        { label: labels.milestone, data: data.daily.map(function (p) { return milestoneDays[p.day] ? p.qualified : null; }),
          showLine: false, pointStyle: "triangle", pointRadius: 8, borderColor: ORANGE, backgroundColor: ORANGE },
      ],
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }, interaction: { mode: "index", intersect: false } },
  });

  draw("chart-weekly", {
    type: "bar",
    data: {
      labels: data.weekly.map(function (w) { return w.week; }),
      datasets: [
        { label: labels.referred, data: data.weekly.map(function (w) { return w.referred; }), backgroundColor: BLUE },
        { label: labels.walk_ins, data: data.weekly.map(function (w) { return w.walk_ins; }), backgroundColor: GREY },
      ],
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });

  draw("chart-pareto", {
    type: "line",
    data: {
      datasets: [
        { label: labels.share, data: data.pareto.map(function (p) { return { x: number(p.percentile), y: number(p.share) }; }),
          borderColor: BLUE, backgroundColor: BLUE, pointRadius: 0 },
        { label: labels.equality, data: [{ x: 0, y: 0 }, { x: 100, y: 100 }], borderColor: GREY, borderDash: [6, 4], pointRadius: 0 },
      ],
    },
    options: {
      scales: {
        x: { type: "linear", min: 0, max: 100, title: { display: true, text: labels.ambassadors_pct } },
        y: { min: 0, max: 100, title: { display: true, text: labels.share } },
      },
    },
  });

  draw("chart-cohorts", {
    type: "bar",
    data: {
      labels: data.cohorts.map(function (c) { return c.month.slice(0, 7); }),
      datasets: [{ label: labels.k, data: data.cohorts.map(function (c) { return number(c.k); }), backgroundColor: GREEN }],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });

  function points(label) {
    return data.reach
      .filter(function (r) { return r.label === label; })
      .map(function (r) { return { x: r.clicks, y: r.qualified, name: r.name }; });
  }
  draw("chart-reach", {
    type: "scatter",
    data: {
      datasets: [
        { label: labels.influencer, data: points("influencer"), backgroundColor: ORANGE, pointStyle: "triangle", pointRadius: 6 },
        { label: labels.ambassador, data: points("ambassador"), backgroundColor: GREEN, pointStyle: "rect", pointRadius: 6 },
        { label: labels.unlabelled, data: points(""), backgroundColor: GREY, pointStyle: "circle", pointRadius: 4 },
      ],
    },
    options: {
      scales: {
        x: { beginAtZero: true, title: { display: true, text: labels.clicks }, ticks: { precision: 0 } },
        y: { beginAtZero: true, title: { display: true, text: labels.qualified }, ticks: { precision: 0 } },
      },
      plugins: {
        tooltip: {
          callbacks: {
            label: function (item) { return item.raw.name + ": " + item.raw.x + " / " + item.raw.y; },
          },
        },
      },
    },
  });
})();
