// The report's interactive figures (cnnablate/interactive.py inlines this after uPlot).
// Each <div class="iplot" data-kind="curves|final|tuning|budget" data-metric="..." (curves)
// data-panel="..." (tuning: which tuned key) reads the JSON of its study from the
// <script type="application/json"> named by data-source.
(function () {
  "use strict";
  var WIDTH = 560, HEIGHT = 300;

  function width(el) {  // the figure's width: at most WIDTH, at most the page's
    var room = el.parentNode ? el.parentNode.clientWidth : 0;
    return Math.max(280, Math.min(WIDTH, room || WIDTH));
  }

  function fmt(v, digits) {
    return v == null ? "–" : v.toFixed(digits == null ? 4 : digits);
  }

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16 & 255) + "," + (n >> 8 & 255) + "," + (n & 255) + "," + a + ")";
  }

  // Per variant three series (mean, min, max): the band is filled between max and min, the
  // legend shows one row per variant ("mean [min, max]" on hover), and hiding a variant
  // hides its band with it.
  function curves(el, study, metric) {
    var data = [study.epochs], series = [{label: "epoch", value: function (u, v) {
      return v == null ? "–" : String(v);
    }}], bands = [], companions = {};
    study.variants.forEach(function (v) {
      var m = v[metric], i = series.length;
      data.push(m.mean, m.lo, m.hi);
      series.push({
        label: v.name + " (n=" + v.n + ")", stroke: v.colour, width: 2,
        points: {show: study.epochs.length < 40},
        value: function (u, val, s, idx) {
          if (val == null || idx == null) return "–";
          return fmt(val) + " [" + fmt(m.lo[idx]) + ", " + fmt(m.hi[idx]) + "]";
        }
      });
      series.push({label: v.name + " min", stroke: v.colour, width: 0, points: {show: false}});
      series.push({label: v.name + " max", stroke: v.colour, width: 0, points: {show: false}});
      bands.push({series: [i + 2, i + 1], fill: alpha(v.colour, 0.18)});
      companions[i] = [i + 1, i + 2];
    });
    var u = new uPlot({
      width: width(el), height: HEIGHT,
      scales: {x: {time: false}},
      axes: [{label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500]},
             {label: metric.replace("_", " "), size: 60}],
      series: series, bands: bands,
      legend: {live: true},
      hooks: {setSeries: [function (u, idx, opts) {
        if (companions[idx] && opts && opts.show != null) {
          companions[idx].forEach(function (j) { u.setSeries(j, {show: opts.show}); });
        }
      }]}
    }, data, el);
    hideCompanionRows(u, companions);
    return u;
  }

  function hideCompanionRows(u, companions) {
    var rows = u.root.querySelectorAll(".u-legend .u-series");
    Object.keys(companions).forEach(function (i) {
      companions[i].forEach(function (j) { if (rows[j]) rows[j].style.display = "none"; });
    });
  }

  // Mean (a dot) and confidence interval (a whisker) per variant; dashed line: the baseline.
  function final(el, fm) {
    var names = fm.variants.map(function (v) { return v.name; });
    var x = names.map(function (_, i) { return i; });
    var pick = function (key) { return fm.variants.map(function (v) { return v[key]; }); };
    var base = fm.variants.filter(function (v) { return v.name === fm.baseline; })[0];
    var u = new uPlot({
      width: width(el), height: HEIGHT,
      scales: {x: {time: false, range: [-0.5, names.length - 0.5]}},
      axes: [
        {label: "variant", splits: function () { return x; },
         values: function (u, splits) { return splits.map(function (i) { return names[i] || ""; }); }},
        {label: fm.metric.replace(/_/g, " "), size: 60}
      ],
      series: [
        {label: "variant", value: function (u, v) { return v == null ? "–" : names[v]; }},
        {label: "mean", stroke: "#333", width: 0, points: {show: true, size: 9, fill: "#333"},
         paths: function () { return null; }, value: function (u, v) { return fmt(v); }},
        {label: "CI low", stroke: "#777", width: 0, points: {show: false},
         paths: function () { return null; }, value: function (u, v) { return fmt(v); }},
        {label: "CI high", stroke: "#777", width: 0, points: {show: false},
         paths: function () { return null; }, value: function (u, v) { return fmt(v); }}
      ],
      hooks: {draw: [function (u) {
        var ctx = u.ctx, lo = u.data[2], hi = u.data[3];
        ctx.save();
        ctx.lineWidth = 2 * devicePixelRatio;
        fm.variants.forEach(function (v, i) {
          if (lo[i] == null || hi[i] == null) return;
          var px = u.valToPos(i, "x", true);
          ctx.strokeStyle = v.colour;
          ctx.beginPath();
          ctx.moveTo(px, u.valToPos(lo[i], "y", true));
          ctx.lineTo(px, u.valToPos(hi[i], "y", true));
          ctx.stroke();
        });
        if (base && base.mean != null) {
          var py = u.valToPos(base.mean, "y", true);
          ctx.setLineDash([6, 4]);
          ctx.strokeStyle = "#888";
          ctx.lineWidth = devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, py);
          ctx.lineTo(u.bbox.left + u.bbox.width, py);
          ctx.stroke();
        }
        ctx.restore();
      }]}
    }, [x, pick("mean"), pick("lo"), pick("hi")], el);
    return u;
  }

  // One tuned key (a panel of the study's "tuning" data): per variant the mean over the tuning
  // seeds (a line; a gap where a seed diverged), each seed's value (dots), the selected value
  // (a star) and diverged runs (an x at the bottom); a log axis where the data says so.
  function tuning(el, t, p) {
    var xs = p.x, data = [xs], lows = [], highs = [];
    var series = [{label: p.label, value: function (u, v, s, idx) {
      return idx == null ? "–" : p.ticks[idx];
    }}];
    p.variants.forEach(function (v) {
      data.push(v.mean);
      v.mean.concat.apply(v.mean, v.seeds).forEach(function (y) {
        if (y != null) { lows.push(y); highs.push(y); }
      });
      series.push({
        label: v.name, stroke: v.colour, width: 2, spanGaps: true,
        points: {show: true, size: 6},
        value: function (u, val, s, idx) {
          if (idx == null) return "–";
          var seeds = v.seeds[idx] || [], text = fmt(v.mean[idx]);
          if (seeds.length) {
            text += " (seeds " + seeds.map(function (y) { return fmt(y); }).join(", ") + ")";
          }
          if (v.diverged[idx]) text += ", " + v.diverged[idx] + " diverged";
          if (idx === v.selected) text += " \u2605 selected";
          return text;
        }
      });
    });
    var lo = lows.length ? Math.min.apply(null, lows) : 0;
    var hi = highs.length ? Math.max.apply(null, highs) : 1;
    var pad = (hi - lo) * 0.08 || 0.01;
    var x = {time: false};
    if (p.scale === "log") { x.distr = 3; x.log = 10; }
    else if (p.scale === "asinh") { x.distr = 4; x.asinh = p.linthresh; }
    else if (p.scale === "category" || xs.length === 1) { x.range = [xs[0] - 0.5, xs[xs.length - 1] + 0.5]; }
    // a tick at every candidate; keep them all (a log axis otherwise keeps only powers of 10)
    var ticks = xs.length <= 10 ? {
      splits: function () { return xs; },
      filter: function (u, splits) { return splits; },
      values: function (u, splits) {
        return splits.map(function (s) { var i = xs.indexOf(s); return i < 0 ? "" : p.ticks[i]; });
      }
    } : {};
    var scaleNote = {log: " (log scale)", asinh: " (log scale beyond " + p.linthresh + ")"};
    var u = new uPlot({
      width: width(el), height: HEIGHT,
      scales: {x: x, y: {range: function () { return [lo - pad, hi + pad]; }}},
      axes: [Object.assign({label: p.label + (scaleNote[p.scale] || "")}, ticks),
             {label: t.metric.replace(/_/g, " "), size: 60}],
      series: series,
      legend: {live: true},
      hooks: {draw: [function (u) {
        var ctx = u.ctx, r = devicePixelRatio;
        ctx.save();
        p.variants.forEach(function (v, k) {
          if (!u.series[k + 1].show) return;
          xs.forEach(function (xv, idx) {
            var px = u.valToPos(xv, "x", true);
            ctx.fillStyle = alpha(v.colour, 0.6);
            (v.seeds[idx] || []).forEach(function (y) {
              ctx.beginPath();
              ctx.arc(px, u.valToPos(y, "y", true), 3 * r, 0, 2 * Math.PI);
              ctx.fill();
            });
            if (v.diverged[idx]) {
              // one row of x's per variant, so that none hides another
              var py = u.bbox.top + u.bbox.height - (8 + 12 * k) * r, d = 5 * r;
              ctx.strokeStyle = v.colour;
              ctx.lineWidth = 2 * r;
              ctx.beginPath();
              ctx.moveTo(px - d, py - d); ctx.lineTo(px + d, py + d);
              ctx.moveTo(px - d, py + d); ctx.lineTo(px + d, py - d);
              ctx.stroke();
            }
          });
          if (v.selected != null && v.mean[v.selected] != null) {
            star(ctx, u.valToPos(xs[v.selected], "x", true),
                 u.valToPos(v.mean[v.selected], "y", true), 10 * r);
            ctx.fillStyle = v.colour;
            ctx.strokeStyle = "#000";
            ctx.lineWidth = r;
            ctx.fill();
            ctx.stroke();
          }
        });
        ctx.restore();
      }]}
    }, data, el);
    return u;
  }

  // Budget curves (a tuned study's "budget" data, issue #31): per variant the expected best
  // tuning metric of n candidates, n = 1..N (gaps where n candidates could all have diverged),
  // the equal budget as a dashed vertical line with a diamond on each curve.
  function budget(el, b) {
    var most = Math.max.apply(null, b.variants.map(function (v) { return v.n; }));
    var xs = [], data, lows = [];
    for (var n = 1; n <= most; n++) xs.push(n);
    data = [xs];
    var series = [{label: "candidates", value: function (u, v) {
      return v == null ? "–" : String(v);
    }}];
    b.variants.forEach(function (v) {
      var ys = xs.map(function (n) { return n <= v.n ? v.curve[n - 1] : null; });
      ys.forEach(function (y) { if (y != null) lows.push(y); });
      data.push(ys);
      series.push({label: v.name + (v.rising ? " (still rising)" : ""), stroke: v.colour,
                   width: 2, points: {show: true, size: 6},
                   value: function (u, val) { return fmt(val); }});
    });
    var lo = lows.length ? Math.min.apply(null, lows) : 0;
    var hi = lows.length ? Math.max.apply(null, lows) : 1;
    var pad = (hi - lo) * 0.08 || 0.01;
    var u = new uPlot({
      width: width(el), height: HEIGHT,
      scales: {x: {time: false, range: [0.5, most + 0.5]},
               y: {range: function () { return [lo - pad, hi + pad]; }}},
      axes: [{label: "candidates tried", splits: function () { return xs; },
              values: function (u, splits) { return splits.map(String); }},
             {label: "expected best " + b.metric.replace(/_/g, " "), size: 60}],
      series: series,
      legend: {live: true},
      hooks: {draw: [function (u) {
        if (!b.equal_budget) return;
        var ctx = u.ctx, r = devicePixelRatio, px = u.valToPos(b.equal_budget, "x", true);
        ctx.save();
        ctx.setLineDash([6, 4]);
        ctx.strokeStyle = "#888";
        ctx.lineWidth = r;
        ctx.beginPath();
        ctx.moveTo(px, u.bbox.top);
        ctx.lineTo(px, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.setLineDash([]);
        b.variants.forEach(function (v, k) {
          var y = v.curve[b.equal_budget - 1];
          if (!u.series[k + 1].show || y == null) return;
          var py = u.valToPos(y, "y", true), d = 6 * r;
          ctx.beginPath();
          ctx.moveTo(px, py - d); ctx.lineTo(px + d, py); ctx.lineTo(px, py + d);
          ctx.lineTo(px - d, py);
          ctx.closePath();
          ctx.fillStyle = v.colour;
          ctx.strokeStyle = "#000";
          ctx.fill();
          ctx.stroke();
        });
        ctx.restore();
      }]}
    }, data, el);
    return u;
  }

  function star(ctx, x, y, radius) {
    ctx.beginPath();
    for (var k = 0; k < 10; k++) {
      var a = Math.PI / 2 + k * Math.PI / 5, rr = k % 2 ? radius * 0.45 : radius;
      ctx.lineTo(x + rr * Math.cos(a), y - rr * Math.sin(a));
    }
    ctx.closePath();
  }

  function draw() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll(".iplot").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-source"));
      if (!source) return;
      var study = JSON.parse(source.textContent);
      var kind = el.getAttribute("data-kind");
      if (kind === "final") {
        if (study.final_metric.variants.length) final(el, study.final_metric);
      } else if (kind === "tuning") {
        var panel = study.tuning && study.tuning.panels[+el.getAttribute("data-panel")];
        // the chart on its element, so that a test can read its scale and axis label
        if (panel && panel.variants.length) el.uplot = tuning(el, study.tuning, panel);
      } else if (kind === "budget") {
        if (study.budget && study.budget.variants.length) el.uplot = budget(el, study.budget);
      } else if (study.curves.variants.length) {
        curves(el, study.curves, el.getAttribute("data-metric"));
      }
      el.classList.add("drawn");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
