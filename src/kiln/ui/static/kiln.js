// kiln dashboard: small progressive enhancements; every page works without them.
"use strict";
window.kiln = window.kiln || {};

(function (kiln) {
  // Data a page embeds as <script type="application/json" id=...>.
  kiln.data = function (id) {
    return JSON.parse(document.getElementById(id).textContent);
  };

  // The downsampled history of one metric (cached per run and key).
  const cache = new Map();
  kiln.series = function (runId, key, points) {
    const url = "/api/runs/" + encodeURIComponent(runId) + "/metrics/" +
      key.split("/").map(encodeURIComponent).join("/") + "?points=" + (points || 1000);
    if (!cache.has(url)) {
      cache.set(url, fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) { return r.json().then(function (e) { throw new Error(e.error || r.statusText); }); }
        return r.json();
      }));
    }
    return cache.get(url);
  };

  // plotly.js loads asynchronously (`<script async data-plotly>`): the series are fetched
  // while it loads, and drawn once it has run.
  kiln.plotlyReady = new Promise(function (resolve) {
    if (window.Plotly) { resolve(window.Plotly); return; }
    const tag = document.querySelector("script[data-plotly]");
    if (tag) { tag.addEventListener("load", function () { resolve(window.Plotly); }); }
    window.addEventListener("load", function () { if (window.Plotly) { resolve(window.Plotly); } });
  });

  // Exponential moving average, debiased (as TensorBoard's smoothing slider).
  kiln.smooth = function (values, weight) {
    if (!weight) { return values; }
    const out = [];
    let last = 0, n = 0;
    for (const v of values) {
      if (v === null || !isFinite(v)) { out.push(v); continue; }
      last = last * weight + (1 - weight) * v;
      n += 1;
      out.push(last / (1 - Math.pow(weight, n)));
    }
    return out;
  };

  function controls() {
    const slider = document.getElementById("smoothing");
    const logy = document.getElementById("logy");
    return {
      smoothing: slider ? parseFloat(slider.value) || 0 : 0,
      log: logy ? logy.checked : false,
      onChange: function (fn) {
        if (slider) {
          slider.addEventListener("input", function () {
            const shown = document.getElementById("smoothing-value");
            if (shown) { shown.textContent = slider.value; }
            fn();
          });
        }
        if (logy) { logy.addEventListener("change", fn); }
      },
    };
  }

  const layoutBase = {
    margin: { l: 55, r: 15, t: 10, b: 40 },
    xaxis: { title: { text: "step" } },
    showlegend: false,
    hovermode: "x unified",
  };
  const config = { responsive: true, displaylogo: false };

  // Draw each `.plot[data-metric]` with one line per run in `runs` ([{id, label}]).
  function drawMetricCharts(runs) {
    const plots = Array.from(document.querySelectorAll(".plot[data-metric]"));
    const state = {};
    function draw(div) {
      const got = state[div.dataset.metric];
      if (!got || !window.Plotly) { return; }
      const c = controls();
      const traces = got.map(function (s, i) {
        const trace = {
          x: s.step, y: kiln.smooth(s.value, c.smoothing), name: runs[i].label,
          type: "scatter", mode: s.step.length > 1 ? "lines" : "markers",
          line: { width: 1.5 },
        };
        return trace;
      });
      const layout = Object.assign({}, layoutBase, {
        yaxis: { type: c.log ? "log" : "linear" },
        showlegend: runs.length > 1,
        legend: { orientation: "h", y: -0.25 },
      });
      window.Plotly.react(div, traces, layout, config);
    }
    plots.forEach(function (div) {
      const key = div.dataset.metric;
      Promise.all(runs.map(function (r) {
        if (r.metrics && !(key in r.metrics)) { return { step: [], value: [], total: 0 }; }
        return kiln.series(r.id, key).catch(function () { return { step: [], value: [], total: 0 }; });
      })).then(function (all) {
        state[key] = all;
        return kiln.plotlyReady;
      }).then(function () {
        const all = state[key];
        draw(div);
        const total = all.reduce(function (a, s) { return a + (s.total || 0); }, 0);
        const shown = all.reduce(function (a, s) { return a + s.step.length; }, 0);
        div.dataset.total = String(total);
        div.dataset.points = String(shown);
      });
    });
    controls().onChange(function () { plots.forEach(draw); });
  }

  kiln.runCharts = function (data) {
    drawMetricCharts([{ id: data.run, label: "" }]);
  };

  kiln.compareCharts = function (data) {
    const runs = data.runs.map(function (r) { return { id: r.id, label: r.name + " " + r.id.slice(0, 8), metrics: r.metrics }; });
    drawMetricCharts(runs);
    kiln.plotlyReady.then(function () { parallel(data); });
  };

  function parallel(data) {
    const div = document.getElementById("parallel");
    const par = data.parallel;
    if (!div || !par.show) { return; }
    const dims = [];
    par.params.forEach(function (k) {
      dims.push({ label: k, values: data.runs.map(function (r) { return k in r.params ? parseFloat(r.params[k]) : null; }) });
    });
    par.metrics.forEach(function (k) {
      dims.push({ label: k, values: data.runs.map(function (r) { return r.metrics[k]; }) });
    });
    if (!dims.length) { return; }
    const last = dims[dims.length - 1];
    window.Plotly.react(div, [{
      type: "parcoords",
      line: { color: last.values, colorscale: "Viridis", showscale: true },
      dimensions: dims,
    }], { margin: { l: 60, r: 60, t: 40, b: 20 } }, config);
  }
})(window.kiln);
