// avatune study page: polls only the trials finished since the last answer (a cursor),
// fills the heatmap and the best-so-far line in place, and swaps the trial table's page.
(function () {
  "use strict";
  const A = window.avatune;
  const POLL_MS = 2000;
  const heatmap = document.getElementById("heatmap");
  const bestPlot = document.getElementById("best-plot");
  const curvesPlot = document.getElementById("curves-plot");
  const curves = document.getElementById("curves");
  const trials = document.getElementById("trials");
  const summary = document.getElementById("summary");
  const base = trials.dataset.tableUrl.replace(/\/trials$/, "");
  let view = null; // what the page shows: figures, steps, cursor, counts
  let tableQuery = window.location.search.replace(/^\?/, "");
  let selected = (curves.dataset.selected || "").split(",").filter(Boolean).map(Number);

  function load(snapshot) {
    view = {
      heat: snapshot.figures.heatmap,
      best: snapshot.figures.best,
      steps: snapshot.steps,
      last: snapshot.last_number,
      cursor: snapshot.cursor,
      finished: snapshot.study.trainings_done,
      filled: snapshot.filled,
    };
    A.plot(heatmap, view.heat);
    A.plot(bestPlot, view.best);
    showSummary(snapshot.study);
  }

  // Best so far after a new trial (number n, value v): earlier steps stay, later steps
  // survive only where they are still below v.
  function mergeStep(n, v) {
    let before = Infinity;
    for (const [m, b] of view.steps) {
      if (m > n) break;
      before = b;
    }
    if (v >= before) return;
    const steps = view.steps.filter(([m]) => m < n);
    steps.push([n, v]);
    for (const [m, b] of view.steps) if (m > n && b < v) steps.push([m, b]);
    view.steps = steps;
  }

  // Heatmap traces (service/dashboard/charts.py): values, best ×, diverged cells (grey).
  const MAIN = 0, BEST = 1, DIVERGED = 2;

  // A cell shows its best trial: on the colour scale, or grey when that trial diverged.
  function fillCell(state, value, i, j) {
    const z = view.heat.data[MAIN].z;
    const gone = view.heat.data[DIVERGED].z;
    const best = z[i][j] !== null ? z[i][j] : gone[i][j];
    if (best === null) view.filled += 1;
    const diverged = state === "diverged";
    if (best === null || value < best || (diverged && value === best)) {
      z[i][j] = diverged ? null : value;
      gone[i][j] = diverged ? value : null;
    }
  }

  function addTrial([, number, state, value, i, j]) {
    view.finished += 1;
    if (view.last === null || number > view.last) view.last = number;
    if (value === null) return;
    fillCell(state, value, i, j);
    mergeStep(number, value);
  }

  function median(sorted) {
    const k = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[k] : (sorted[k - 1] + sorted[k]) / 2;
  }

  function redraw() {
    const heat = view.heat.data[MAIN];
    const values = [];
    let best = null;
    heat.z.forEach((row, i) => row.forEach((v, j) => {
      if (v === null) return;
      values.push(v);
      if (best === null || v < best[0]) best = [v, i, j];
    }));
    if (best !== null) {
      values.sort((a, b) => a - b);
      const axis = view.heat.layout.coloraxis;
      axis.cmin = values[0];
      axis.cmax = Math.max(median(values), values[0] + 1e-9);
      view.heat.data[BEST].x = [heat.x[best[2]]];
      view.heat.data[BEST].y = [heat.y[best[1]]];
    }
    const line = view.best.data[0];
    line.x = view.steps.map((s) => s[0]);
    line.y = view.steps.map((s) => s[1]);
    if (view.steps.length && view.last > line.x[line.x.length - 1]) {
      line.x.push(view.last);
      line.y.push(line.y[line.y.length - 1]);
    }
    A.plot(heatmap, view.heat);
    A.plot(bestPlot, view.best);
    A.setField(document, "filled", String(view.filled));
  }

  function showSummary(study) {
    A.setField(summary, "finished", String(study.trainings_done));
    const limit = study.in_flight_limit ? " (limit " + study.in_flight_limit + ")" : "";
    A.setField(summary, "repeats", study.repeats + " repeat asks answered free · in flight " + study.in_flight + limit);
    A.setField(summary, "best", study.best ? A.number(study.best.value) : "–");
    A.setField(summary, "best-point", study.best ? "α=" + A.sci(study.best.alpha) + " ε=" + A.sci(study.best.eps) : "");
    A.setField(summary, "rate", A.rate(study.rate_per_min));
    A.setField(summary, "eta", A.duration(study.eta_s));
    const counts = Object.keys(study.counts).sort().map((k) => k + " " + study.counts[k]);
    A.setField(summary, "counts", counts.join(" · "));
    document.getElementById("progress-bar").value = study.progress;
    if (!study.live) {
      document.getElementById("live-status").textContent = "This study is " + study.state + ".";
    }
  }

  async function refreshTable(fresh) {
    const params = new URLSearchParams(tableQuery);
    params.delete("curve");
    selected.forEach((id) => params.append("curve", String(id)));
    try {
      trials.innerHTML = await A.getText(trials.dataset.tableUrl + "?" + params.toString());
    } catch (error) {
      console.warn("avatune: could not load the trial table", error);
      return;
    }
    (fresh || []).forEach((row) => {
      const tr = trials.querySelector('tr[data-trial="' + row[0] + '"]');
      if (tr) tr.classList.add("fresh");
    });
  }

  async function poll() {
    let live = true;
    if (!document.hidden) {
      try {
        const after = view.cursor ? "?after=" + encodeURIComponent(view.cursor) : "";
        const answer = await A.getJSON(base + "/data" + after);
        live = answer.study.live;
        if (answer.full) {
          const changed = answer.study.trainings_done !== view.finished;
          load(answer);
          if (changed) await refreshTable([]);
        } else {
          answer.trials.forEach(addTrial);
          if (view.finished !== answer.study.trainings_done) {
            load(await A.getJSON(base + "/data")); // a trial slipped past the cursor: resync
            await refreshTable([]);
          } else {
            if (answer.trials.length) {
              view.cursor = answer.cursor;
              redraw();
              await refreshTable(answer.trials);
            }
            showSummary(answer.study);
          }
        }
      } catch (error) {
        console.warn("avatune: poll failed, retrying", error);
      }
    }
    if (live) window.setTimeout(poll, POLL_MS);
  }

  async function showCurves() {
    const params = new URLSearchParams();
    selected.forEach((id) => params.append("curve", String(id)));
    try {
      const answer = await A.getJSON(curves.dataset.url + "?" + params.toString());
      A.plot(curvesPlot, answer.figure);
    } catch (error) {
      console.warn("avatune: could not load the curves", error);
    }
  }

  async function navigate(url) {
    tableQuery = url.search.replace(/^\?/, "");
    await refreshTable([]);
    window.history.replaceState(null, "", url.pathname + url.search + "#trials");
  }

  trials.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-sort], a[data-page]");
    if (!link) return;
    event.preventDefault();
    navigate(new URL(link.href));
  });
  trials.addEventListener("change", (event) => {
    const input = event.target;
    if (input.name === "state") {
      const form = input.form;
      const url = new URL(form.action);
      url.search = new URLSearchParams(new FormData(form)).toString();
      navigate(url);
    } else if (input.name === "curve") {
      const id = Number(input.value);
      selected = selected.filter((x) => x !== id);
      if (input.checked) selected.push(id);
      selected = selected.slice(-10);
      showCurves();
    }
  });
  trials.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches("[data-trials-form]")) return;
    event.preventDefault();
    const url = new URL(form.action);
    url.search = new URLSearchParams(new FormData(form)).toString();
    navigate(url);
  });

  document.addEventListener("DOMContentLoaded", () => {
    load(A.readJSON("study-data"));
    window.setTimeout(poll, POLL_MS);
  });
})();
