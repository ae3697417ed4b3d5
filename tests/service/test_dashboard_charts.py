"""The study page's figure dicts: objective labels, the diverged layer, learning curves by
step and the waiting note of an empty chart (`service.dashboard.charts`)."""

from __future__ import annotations

from service.dashboard import charts
from service.dashboard.landscape import Landscape
from studies.figure_style import WAITING
from studies.objectives import objective_of

MNIST = objective_of("mnist1d-mlp")
LANDSCAPE = Landscape([1e-3, 1e-2], [1e-8, 1e-6, 1e-4])


def _notes(figure: dict) -> list[str]:
    return [a["text"] for a in figure["layout"].get("annotations", [])]


def test_heatmap_draws_diverged_cells_in_their_own_layer() -> None:
    grid = [[5.0, 90.0, None], [7.0, None, 90.0]]
    fig = charts.landscape_figure([("adam", LANDSCAPE, grid)], "t", MNIST, [{(0, 1), (1, 2)}])
    main, best, gone, key = (fig["data"][k] for k in range(4))
    assert main["z"] == [[5.0, None, None], [7.0, None, None]]
    assert gone["z"] == [[None, 90.0, None], [None, None, 90.0]]
    assert gone["type"] == "heatmap" and "coloraxis" not in gone
    assert key["name"] == "diverged" and key.get("showlegend", True)
    assert (best["x"], best["y"]) == ([-8.0], [-3.0])
    axis = fig["layout"]["coloraxis"]
    assert axis["colorbar"]["title"]["text"] == "validation error (%)"
    assert axis["cmax"] < 90.0
    assert WAITING not in _notes(fig)


def test_empty_charts_wait_for_the_first_result() -> None:
    heat = charts.landscape_figure([("adam", LANDSCAPE, LANDSCAPE.empty())], "t", MNIST, [set()])
    assert WAITING in _notes(heat)
    assert heat["data"][charts.BEST]["x"] == [None]  # keeps its legend entry
    best = charts.best_figure([], None, MNIST)
    assert WAITING in _notes(best)
    assert best["layout"]["xaxis"]["title"]["text"] == "distinct trainings"
    assert best["layout"]["yaxis"]["title"]["text"] == "best validation error so far (%)"
    assert WAITING in _notes(charts.curves_figure([], MNIST, 1000))


def test_curves_are_training_loss_against_step() -> None:
    fig = charts.curves_figure([("a", [3.0] * 100), ("b", [4.0, 3.0])], MNIST, 1000)
    assert fig["data"][0]["x"] == list(range(10, 1001, 10))
    assert fig["data"][1]["x"] == [10, 20]  # a diverged trial's curve stops early
    assert fig["layout"]["xaxis"]["title"]["text"] == "step"
    assert fig["layout"]["yaxis"]["title"]["text"] == "training loss (cross-entropy, nats)"
    assert _notes(fig) == []
