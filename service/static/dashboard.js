// avatune dashboard: draws the figures embedded in pages and refreshes live fragments.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  const root = document.body.dataset.root || "";
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  let revision = 0;

  const WAITING = {
    name: "waiting", text: "waiting for the first result", xref: "paper", yref: "paper",
    x: 0.5, y: 0.5, showarrow: false, font: { size: 16, color: "#666" },
  };

  // Whether some trace holds a value (legend-only traces hold none).
  function hasData(data) {
    return (data || []).some((trace) => {
      const values = trace.type === "heatmap" ? trace.z : trace.y;
      return (values || []).some((v) => Array.isArray(v) ? v.some((w) => w !== null) : v !== null && v !== undefined);
    });
  }

  function layoutOf(figure) {
    const layout = Object.assign({ autosize: true, font: { size: 12 } }, figure.layout || {});
    layout.datarevision = ++revision; // arrays may have been changed in place
    // an empty chart says so; the note goes once the first result is drawn
    layout.annotations = (layout.annotations || []).filter((note) => note.name !== "waiting");
    if (!hasData(figure.data)) layout.annotations.push(WAITING);
    return layout;
  }

  function plot(element, figure) {
    if (!window.Plotly || !element || !figure) return null;
    const config = Object.assign({}, CONFIG, { displayModeBar: window.innerWidth >= 640 ? "hover" : false });
    return window.Plotly.react(element, figure.data, layoutOf(figure), config);
  }

  function readJSON(id) {
    const element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  async function fetchOk(url) {
    const response = await fetch(url, { headers: { "X-Requested-With": "avatune" }, cache: "no-store" });
    if (!response.ok) throw new Error(url + " answered " + response.status);
    return response;
  }

  async function getJSON(url) {
    return (await fetchOk(url)).json();
  }

  async function getText(url) {
    return (await fetchOk(url)).text();
  }

  function number(value, digits) {
    if (value === null || value === undefined || !isFinite(value)) return "–";
    let text = Number(value).toPrecision(digits || 4);
    if (text.includes("e")) {
      let [mantissa, exponent] = text.split("e");
      if (mantissa.includes(".")) mantissa = mantissa.replace(/\.?0+$/, "");
      const sign = exponent[0] === "-" ? "-" : "+";
      text = mantissa + "e" + sign + exponent.replace(/^[+-]/, "").padStart(2, "0");
    } else if (text.includes(".")) {
      text = text.replace(/\.?0+$/, "");
    }
    return text;
  }

  function rate(value) {
    if (value === null || value === undefined || !isFinite(value)) return "–";
    return value >= 100 ? Math.round(value).toLocaleString("en-US") : number(value, 3);
  }

  function sci(value) {
    if (value === null || value === undefined) return "–";
    const size = Math.abs(value);
    if (size !== 0 && (size < 1e-2 || size >= 1e3)) {
      let [mantissa, exponent] = value.toExponential(2).split("e");
      mantissa = mantissa.replace(/\.?0+$/, "");
      return mantissa + "e" + parseInt(exponent, 10);
    }
    return number(value, 3);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    const s = Math.round(seconds);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function setField(scope, name, text) {
    scope.querySelectorAll('[data-field="' + name + '"]').forEach((element) => {
      element.textContent = text;
    });
  }

  function renderFigures() {
    document.querySelectorAll("[data-figure]").forEach((element) => {
      plot(element, readJSON(element.dataset.figure));
    });
  }

  function keepFresh(element) {
    const interval = Number(element.dataset.interval) || 5000;
    const tick = async () => {
      if (!document.hidden) {
        try {
          element.innerHTML = await getText(element.dataset.refresh);
        } catch (error) {
          console.warn("avatune: refresh failed, keeping the last table", error);
        }
      }
      window.setTimeout(tick, interval);
    };
    window.setTimeout(tick, interval);
  }

  window.avatune = { root, plot, readJSON, getJSON, getText, number, rate, sci, duration, setField };
  document.addEventListener("DOMContentLoaded", () => {
    renderFigures();
    document.querySelectorAll("[data-refresh]").forEach(keepFresh);
  });
})();
