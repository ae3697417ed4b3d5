"""The dashboard's charts say what they show (issue 14): the objective and its unit on the
colour bars and axes, diverged cells in their own grey layer with a legend entry, learning
curves as training loss against step, a "waiting for the first result" note on every empty
chart, and Figure 2's censored counts upright above the bars."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Site, screenshot
from tests.browser.seed import WORKER, error_percent, grid

PLOTTED = "n => document.querySelectorAll('.plot .main-svg').length >= n"
ERROR = "validation error (%)"
WAITING = "waiting for the first result"
STEPS = 200  # a worker's curve: 100 window means, 2 steps each
CHANCE = 90.0


@dataclass
class Extra:
    """What this module adds to the seeded server."""

    diverged_study: int
    diverged_cells: int
    empty_study: int
    empty_experiment: int


def _report(http: httpx.Client, diverged: list[bool]) -> None:
    """Lease len(diverged) trials and report them, those flagged as diverged at chance."""
    lease = http.post("/api/leases", json={**WORKER, "max_trials": len(diverged)}).json()
    assert len(lease["trials"]) == len(diverged)
    for trial, flag in zip(lease["trials"], diverged, strict=True):
        value = CHANCE if flag else error_percent("avagrad", trial["alpha"], trial["eps"])
        curve = [] if flag else [value / 10 + 3.0 / (k + 1) for k in range(100)]
        body = {"token": lease["token"], "value": value, "curve": curve, "diverged": flag}
        http.post(f"/api/trials/{trial['trial_id']}/result", json=body).raise_for_status()


@pytest.fixture(scope="module")
def extra(site: Site) -> Iterator[Extra]:
    """A grid study with diverged trials (the only one workers get), and an empty study and
    an empty experiment, paused before anything was leased."""
    http = site.http
    http.post(f"/api/studies/{site.seeded.live_study}/pause").raise_for_status()
    study = http.post(
        "/api/studies",
        json={
            "name": "some diverge",
            "task": "mnist1d-mlp",
            "optimizer": "avagrad",
            "space": grid(3, 3),
            "tuner": {"name": "grid", "seed": 1},
            "fidelity": {"steps": STEPS},
        },
    ).json()["id"]
    _report(http, [True, False, True, False])
    empty = http.post(
        "/api/studies",
        json={
            "name": "nothing yet",
            "task": "mnist1d-mlp",
            "optimizer": "adam",
            "space": grid(2, 2),
            "fidelity": {"steps": 3},
        },
    ).json()["id"]
    http.post(f"/api/studies/{empty}/pause").raise_for_status()
    experiment = http.post(
        "/api/experiments",
        json={
            "name": "nothing yet either",
            "task": "mnist1d-mlp",
            "optimizers": ["adam", "avagrad"],
            "space": grid(2, 2),
            "fidelity": {"steps": 3},
        },
    ).json()
    for s in experiment["studies"]:
        http.post(f"/api/studies/{s['id']}/pause").raise_for_status()
    yield Extra(study, 2, empty, experiment["id"])


def _open(page: Any, site: Site, path: str, plots: int) -> None:
    response = page.goto(site.url + path)
    assert response is not None and response.status == 200, path
    page.wait_for_function(PLOTTED, arg=plots)


def _layout(page: Any, plot: str) -> dict[str, Any]:
    return page.evaluate(f"() => document.getElementById('{plot}').layout")


def _legend(page: Any, plot: str) -> list[str]:
    return page.locator(f"#{plot} .legendtext").all_text_contents()


def _notes(page: Any, plot: str) -> list[str]:
    return page.locator(f"#{plot} .annotation-text").all_text_contents()


def _colorbar(page: Any, plot: str) -> str:
    return page.locator(f"#{plot} .colorbar .cbtitle").text_content() or ""


def _grey_cells(page: Any) -> int:
    return page.evaluate(
        "() => document.getElementById('heatmap').data[2].z.flat().filter(v => v !== null).length"
    )


def test_study_heatmap_names_the_objective_and_draws_diverged_cells_grey(
    page: Any, site: Site, extra: Extra
) -> None:
    _open(page, site, f"/studies/{extra.diverged_study}", 3)
    assert _colorbar(page, "heatmap") == ERROR
    assert _layout(page, "heatmap")["coloraxis"]["colorbar"]["title"]["text"] == ERROR
    assert "diverged" in _legend(page, "heatmap")
    traces = page.evaluate(
        "() => document.getElementById('heatmap').data.map(t => [t.type, t.name, !!t.coloraxis])"
    )
    assert traces[2] == ["heatmap", "diverged", False]  # its own flat grey, off the scale
    assert _grey_cells(page) == extra.diverged_cells
    values = page.evaluate(
        "() => document.getElementById('heatmap').data[0].z.flat().filter(v => v !== null)"
    )
    assert len(values) == 2 and max(values) < CHANCE  # diverged cells left the colour scale
    assert page.evaluate("() => document.getElementById('heatmap').layout.coloraxis.cmax") < 90
    screenshot(page, "study-diverged")


def test_a_diverged_trial_reported_meanwhile_turns_its_cell_grey(
    page: Any, site: Site, extra: Extra
) -> None:
    _open(page, site, f"/studies/{extra.diverged_study}", 3)
    before = _grey_cells(page)
    _report(site.http, [True])
    extra.diverged_cells += 1
    page.wait_for_function(
        "n => document.getElementById('heatmap').data[2].z.flat()"
        ".filter(v => v !== null).length === n",
        arg=before + 1,
    )


def test_best_so_far_and_curve_axes_say_what_they_count(
    page: Any, site: Site, extra: Extra
) -> None:
    _open(page, site, f"/studies/{extra.diverged_study}", 3)
    best = _layout(page, "best-plot")
    assert best["xaxis"]["title"]["text"] == "distinct trainings"
    assert best["yaxis"]["title"]["text"] == "best validation error so far (%)"
    curves = _layout(page, "curves-plot")
    assert curves["xaxis"]["title"]["text"] == "step"
    assert curves["yaxis"]["title"]["text"] == "training loss (cross-entropy, nats)"
    assert page.locator("#curves-plot .g-xtitle").text_content() == "step"
    steps = page.evaluate(
        "() => document.getElementById('curves-plot').data.filter(t => t.x.length)"
        ".map(t => [t.x[0], t.x.at(-1)])"
    )
    assert steps and all(s == [STEPS // 100, STEPS] for s in steps)


def test_every_empty_chart_waits_for_the_first_result(page: Any, site: Site, extra: Extra) -> None:
    _open(page, site, f"/studies/{extra.empty_study}", 3)
    for plot in ("heatmap", "best-plot", "curves-plot"):
        assert WAITING in _notes(page, plot), plot
    # no value, no colour bar drawn; its title is ready for the first result
    assert _layout(page, "heatmap")["coloraxis"]["colorbar"]["title"]["text"] == ERROR
    screenshot(page, "study-empty")
    _open(page, site, f"/experiments/{extra.empty_experiment}", 1)
    assert WAITING in _notes(page, "live-heatmaps")
    _open(page, site, f"/studies/{extra.diverged_study}", 3)
    for plot in ("heatmap", "best-plot", "curves-plot"):
        assert WAITING not in _notes(page, plot), plot


def test_live_experiment_heatmaps_name_the_objective(page: Any, site: Site) -> None:
    _open(page, site, f"/experiments/{site.seeded.live_experiment}", 1)
    assert _colorbar(page, "live-heatmaps") == ERROR
    assert "diverged" in _legend(page, "live-heatmaps")
    assert WAITING not in _notes(page, "live-heatmaps")


def test_report_figures_label_marks_objective_and_censored_runs(page: Any, site: Site) -> None:
    _open(page, site, f"/experiments/{site.seeded.report_experiment}", 3)
    assert _colorbar(page, "figure1") == ERROR
    legend = _legend(page, "figure1")
    assert "best α of each ε column" in legend and "best cell" in legend
    report = site.http.get(f"/api/experiments/{site.seeded.report_experiment}/report").json()
    metrics = report["metrics"]
    costs = metrics["costs_by_delta"][str(float(metrics["delta"]))]
    censored = sorted(
        str(c["n_censored"]) for by in costs.values() for c in by.values() if c["n_censored"]
    )
    assert censored, "the seeded report should have censored runs"
    traces = page.evaluate("() => document.getElementById('figure2-costs').data")
    bars = [t for t in traces if t["type"] == "bar"]
    assert bars and all(t.get("textposition") == "none" for t in bars)  # nothing inside bars
    counts = [t for t in traces if t.get("mode") == "text"]
    assert sorted(x for t in counts for x in t["text"] if x) == censored
    assert all(t["textposition"] == "top center" for t in counts)
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('#figure2-costs .textpoint text')]"
        ".filter(e => e.textContent).map(e => [e.textContent, e.getAttribute('transform') || ''])"
    )
    assert sorted(text for text, _ in drawn) == censored
    assert not any("rotate" in transform for _, transform in drawn)  # upright
    assert any("censored" in name for name in _legend(page, "figure2-costs"))
    axis = _layout(page, "figure2-curves")["yaxis"]["title"]["text"]
    assert axis == "suboptimality (pp, floor 0.01)"
    tunability = _layout(page, "tunability")["yaxis"]["title"]["text"]
    assert tunability == "expected best validation error (%)"
    screenshot(page, "experiment-report-figures")
