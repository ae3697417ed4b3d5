// avatune experiment page: while the grids fill in, polls their progress and redraws them;
// reloads to show the report once it is stored.
(function () {
  "use strict";
  const A = window.avatune;
  const POLL_MS = 3000;
  const live = document.getElementById("experiment-live");

  function show(answer) {
    A.setField(live, "overall", (answer.progress * 100).toFixed(1) + "%");
    A.setField(live, "rate", A.rate(answer.rate_per_min));
    A.setField(live, "eta", A.duration(answer.eta_s));
    answer.studies.forEach((study) => {
      const row = live.querySelector('tr[data-study="' + study.id + '"]');
      if (!row) return;
      A.setField(row, "finished", study.trainings_done + " / " + study.budget);
      A.setField(row, "best", A.number(study.best));
      A.setField(row, "rate", A.rate(study.rate_per_min));
      const bar = row.querySelector("progress");
      if (bar) bar.value = study.progress;
      const text = row.querySelector(".progress-text");
      if (text) text.textContent = (study.progress * 100).toFixed(1) + "%";
      const state = row.querySelector('[data-field="state"] .state');
      if (state) {
        state.textContent = study.state;
        state.className = "state state-" + study.state;
      }
    });
    A.plot(document.getElementById("live-heatmaps"), answer.figure);
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const answer = await A.getJSON(live.dataset.url);
        if (answer.report_ready) {
          window.location.reload(); // the page now shows the report
          return;
        }
        if (live.dataset.state && answer.state !== live.dataset.state) {
          window.location.reload(); // paused, resumed or cancelled elsewhere: new controls
          return;
        }
        show(answer);
        const status = document.getElementById("report-status");
        if (answer.report_error) {
          status.textContent = "The report could not be made: " + answer.report_error + " Reload the page to try again.";
          status.classList.add("error-message");
          return;
        }
        if (answer.computing) {
          status.textContent = "Every grid is complete: the report is being computed (every tuner replayed on the grids); it appears here when ready.";
        }
      } catch (error) {
        console.warn("avatune: poll failed, retrying", error);
      }
    }
    window.setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (live && live.dataset.live === "true") window.setTimeout(poll, POLL_MS);
  });
})();
