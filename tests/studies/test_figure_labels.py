"""The report's figures say what they show: the objective and its unit on colour bars and
axes, every α row labelled in the PNG, a legend for the heatmap's marks, censored counts
upright above the bars, and a waiting note on an empty figure."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

from studies import figures
from studies.figure_style import WAITING, has_data, with_waiting
from studies.objectives import curve_steps, objective_of, window_ends
from studies.replay import CostStats, ReplayResult, TableReplay, TunerReplay
from studies.table import GridTable
from tests.studies.helpers import band, separable

CHANCE = 90.0


def _table(values: np.ndarray, optimizer: str, diverged: np.ndarray) -> GridTable:
    """A one-seed MNIST-1D table on a 21×21 grid; `diverged` cells at chance."""
    alphas = [float(f"{10 ** (-7 + 0.5 * k):.1g}") for k in range(21)]
    epsilons = [float(f"{10 ** (-8 + 0.5 * k):.1g}") for k in range(21)]
    errors = np.where(diverged, CHANCE, np.minimum(values, CHANCE))
    return GridTable.from_seeds(
        error_seeds=[errors.tolist()],
        diverged_seeds=[diverged.tolist()],
        chance=CHANCE,
        task="mnist1d-mlp",
        optimizer=optimizer,
        alphas=alphas,
        epsilons=epsilons,
    )


@pytest.fixture(scope="module")
def tables() -> list[GridTable]:
    top = np.zeros((21, 21), dtype=bool)
    top[-3:, :] = True  # the largest α diverge
    return [
        _table(band(), "adam", top),
        _table(separable() / 10 + 5, "avagrad", np.zeros((21, 21), dtype=bool)),
    ]


@pytest.fixture
def drawn(tables: list[GridTable]) -> Any:
    fig = figures.draw(figures.heatmaps(tables))
    yield fig
    plt.close(fig)


def test_every_alpha_row_and_eps_column_has_a_tick_label(drawn: Any, tables) -> None:
    panels = [ax for ax in drawn.axes if ax.get_images()]
    assert len(panels) == 2
    for ax, table in zip(panels, tables, strict=True):
        rows = [t.get_text() for t in ax.get_yticklabels()]
        assert rows == [figures.value_label(a) for a in table.alphas]
        assert len(rows) == 21 and all(rows)
        columns = [t.get_text() for t in ax.get_xticklabels()]
        assert columns == [figures.value_label(e) for e in table.epsilons]


def test_png_legend_names_every_mark(drawn: Any) -> None:
    (legend,) = drawn.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "diverged",
        "best α of each ε column",
        "best cell",
    ]


def test_png_colour_bar_names_the_objective_and_unit(drawn: Any) -> None:
    labels = [ax.get_ylabel() for ax in drawn.axes if not ax.get_images()]
    assert "validation error (%)" in labels


def test_diverged_cells_are_a_separate_grey_layer(tables) -> None:
    fig = figures.heatmaps(tables)
    values, layer = fig["data"][0], fig["data"][1]
    assert layer["type"] == "heatmap" and layer["name"] == "diverged" and layer["showlegend"]
    assert "coloraxis" not in layer and layer["showscale"] is False
    assert all(v is None for row in values["z"][-3:] for v in row)
    assert all(v == CHANCE for row in layer["z"][-3:] for v in row)
    assert all(v is None for row in layer["z"][:-3] for v in row)
    assert fig["layout"]["coloraxis"]["cmax"] < CHANCE  # diverged cells leave the scale
    assert fig["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "validation error (%)"
    shown = [t["name"] for t in fig["data"] if t.get("showlegend")]
    assert shown == ["diverged", "best α of each ε column", "best cell"]


def _replay(censored: int) -> ReplayResult:
    def tuner(name: str, median: float) -> TunerReplay:
        stats = {"median": median, "q1": median - 2, "q3": median + 3, "mean": median}
        return TunerReplay(
            tuner=name,
            seeds=[],
            restarts=[],
            asks=[],
            traces=[],
            costs=[],
            censored=[],
            n_censored=censored if name == "gld" else 0,
            by_delta={"1.0": CostStats(costs=[], censored=[], n_censored=0, **stats)},
            **stats,
        )

    tables = [
        TableReplay(
            name=name,
            task="mnist1d-mlp",
            optimizer=name,
            shape=(3, 3),
            f_star=5.0,
            tuners={t: tuner(t, 10.0 + k) for k, t in enumerate(("random", "gld", "cgld"))},
        )
        for name in ("adam", "avagrad")
    ]
    return ReplayResult(delta=0.5, deltas=[0.5, 1.0], seeds=100, tables=tables)


def test_censored_counts_stand_upright_above_the_bars() -> None:
    fig = figures.cost_bars(_replay(61))
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    counts = [t for t in fig["data"] if t.get("mode") == "text"]
    assert [t["name"] for t in bars] == ["adam", "avagrad"]
    assert all(t["textposition"] == "none" for t in bars)  # nothing drawn inside a bar
    assert [t["text"] for t in counts] == [["", "61", ""]] * 2
    assert all(t["textposition"] == "top center" for t in counts)
    assert [t["offsetgroup"] for t in counts] == ["adam", "avagrad"]
    assert counts[0]["y"] == [13.0, 14.0, 15.0]  # at the top of each whisker (q3)
    assert [t["showlegend"] for t in counts] == [True, False]
    assert "censored" in counts[0]["name"] and "of 100" in counts[0]["name"]
    assert fig["layout"]["scattermode"] == "group"
    assert "61 of 100 runs censored" in bars[0]["hovertemplate"].replace("%{customdata[2]}", "61")
    png = figures.draw(fig)
    try:
        (ax,) = png.axes
        notes = [t for t in ax.texts if t.get_text()]
        assert [t.get_text() for t in notes] == ["61", "61"]
        assert all(t.get_rotation() == 0 for t in notes)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[:2] == ["adam", "avagrad"] and "censored" in legend[2]
    finally:
        plt.close(png)


def test_no_censored_runs_no_count_traces() -> None:
    fig = figures.cost_bars(_replay(0))
    assert [t["type"] for t in fig["data"]] == ["bar", "bar"]


def test_axes_name_the_objective(tables) -> None:
    replay = _replay(0)
    cost = figures.cost_bars(replay)["layout"]
    assert "0.5 pp" in cost["title"]["text"]
    curves = figures.suboptimality_curves(replay)["layout"]
    assert curves["title"]["text"].startswith("Suboptimality (best validation error − grid")
    assert curves["yaxis"]["title"]["text"] == "suboptimality (pp, floor 0.01)"


def test_an_empty_figure_says_it_waits() -> None:
    empty = figures.cost_bars(ReplayResult(delta=0.5, deltas=[0.5], seeds=3, tables=[]))
    assert [a["text"] for a in empty["layout"]["annotations"]] == [WAITING]
    assert not has_data({"data": [{"type": "heatmap", "z": [[None, None]]}]})
    full = with_waiting({"data": [{"type": "scatter", "y": [None, 2.0]}], "layout": {}})
    assert full["layout"]["annotations"] == []
    figures.draw(empty)
    plt.close("all")


def test_objective_labels() -> None:
    assert objective_of("mnist1d-cnn").label == "validation error (%)"
    assert objective_of("mnist1d-mlp").best_label() == "best validation error so far (%)"
    assert objective_of("charlm-lstm").label == "validation bits per character (bpc)"
    assert objective_of("eq11").label == "distance to the optimum |w_T − w*|"
    assert objective_of("someone's plugin").label == "objective"


def test_curve_points_sit_at_the_end_of_their_window() -> None:
    assert curve_steps(100, 1000) == list(range(10, 1001, 10))
    assert curve_steps(3, 1000) == [10, 20, 30]  # a diverged run's curve stops early
    assert curve_steps(5, 5) == [1, 2, 3, 4, 5]
    assert window_ends(250, 100)[-1] == 250 and len(window_ends(250, 100)) == 100
    assert curve_steps(12, 11)[-1] == 11  # more points than windows: evenly spaced
    assert curve_steps(4, None) == [1, 2, 3, 4]
