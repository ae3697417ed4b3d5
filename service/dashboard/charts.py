"""Plotly figure dicts of the study page: the (α, ε) heatmap filling in as trials arrive,
best-so-far vs distinct trainings, and learning curves against training steps.

The complete-grid figures of the report (Figure 1 and 2) come from `studies.figures`; the
heatmap here is its live counterpart: cells stay empty until their trial reports, axes are
log10 α and log10 ε (ticks labelled like the paper's grid values), colours share one scale
from the best value to the median, as in `studies.figures.heatmaps`. Diverged cells are a
flat grey layer outside that scale. Every axis and colour bar names the task's objective
and unit (`studies.objectives`); an empty chart says it is waiting for the first result.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Sequence
from typing import Any

from service.dashboard.landscape import Landscape
from studies.figure_style import (
    BEST_CELL,
    BEST_MARKER,
    COLORS,
    LEGEND_BELOW,
    LEGEND_MARGIN,
    diverged_key,
    diverged_layer,
    panel_title,
    value_label,
    with_waiting,
)
from studies.objectives import UNKNOWN, Objective, curve_steps

Figure = dict[str, Any]
Grid = list[list[float | None]]
Cells = Collection[tuple[int, int]]
#: Where the study page's script finds the traces of the (single-panel) heatmap.
MAIN, BEST, DIVERGED = 0, 1, 2


def color_range(grids: Sequence[Grid]) -> tuple[float, float] | None:
    """(best value, median value) over the filled cells, or None when all are empty."""
    values = sorted(v for grid in grids for row in grid for v in row if v is not None)
    if not values:
        return None
    low, high = values[0], statistics.median(values)
    return low, max(high, low + 1e-9)


def _ticks(values: Sequence[float]) -> dict[str, Any]:
    logs = [math.log10(v) for v in values]
    decades = list(range(math.ceil(min(logs)), math.floor(max(logs)) + 1))
    if len(decades) < 2:
        return {}
    step = max(1, math.ceil(len(decades) / 8))
    shown = decades[::step]
    return {"tickvals": shown, "ticktext": [value_label(10.0**k) for k in shown]}


def best_cell(grid: Grid) -> tuple[int, int] | None:
    """(row, column) of the lowest filled cell."""
    cells = [(v, i, j) for i, row in enumerate(grid) for j, v in enumerate(row) if v is not None]
    return None if not cells else min(cells)[1:]


def split_diverged(grid: Grid, cells: Cells) -> tuple[Grid, Grid]:
    """(values of the other cells, values of the diverged `cells`), None elsewhere."""
    kept = [list(row) for row in grid]
    gone: Grid = [[None] * len(row) for row in grid]
    for i, j in cells:
        gone[i][j], kept[i][j] = kept[i][j], None
    return kept, gone


def landscape_figure(
    panels: Sequence[tuple[str, Landscape, Grid]],
    title: str,
    goal: Objective = UNKNOWN,
    diverged: Sequence[Cells] | None = None,
) -> Figure:
    """Heatmaps side by side (one per panel) on log axes, one colour scale, best marked ×,
    diverged cells grey: per panel the traces `MAIN`, `BEST`, `DIVERGED` (in that order),
    then the legend's "diverged" entry."""
    gap = 0.08
    width = (1.0 - gap * (len(panels) - 1)) / max(len(panels), 1)
    split = [
        split_diverged(grid, diverged[k] if diverged else ())
        for k, (_, _, grid) in enumerate(panels)
    ]
    span = color_range([kept for kept, _ in split])
    layout: dict[str, Any] = {
        "title": {"text": title},
        "coloraxis": {
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": goal.label, "side": "right"}},
            **({"cmin": span[0], "cmax": span[1]} if span else {}),
        },
        "annotations": [],
        "showlegend": True,
        "legend": LEGEND_BELOW,
        "margin": {"t": 60, "r": 10, "b": LEGEND_MARGIN, "l": 60},
    }
    unit = f" {goal.unit}" if goal.unit else ""
    point = "α = 10^%{y:.2f}<br>ε = 10^%{x:.2f}"
    data: list[dict[str, Any]] = []
    for k, ((name, landscape, _), (kept, gone)) in enumerate(zip(panels, split, strict=True)):
        suffix = "" if k == 0 else str(k + 1)
        xa, ya = f"x{suffix}", f"y{suffix}"
        x = [round(math.log10(e), 6) for e in landscape.epsilons]
        y = [round(math.log10(a), 6) for a in landscape.alphas]
        left = k * (width + gap)
        layout[f"xaxis{suffix}"] = {
            "domain": [left, left + width],
            "anchor": ya,
            "title": {"text": "ε (log scale)"},
            "zeroline": False,
            **_ticks(landscape.epsilons),
        }
        layout[f"yaxis{suffix}"] = {
            "anchor": xa,
            "title": {"text": "α (log scale)"},
            "zeroline": False,
            **_ticks(landscape.alphas),
        }
        if len(panels) > 1:
            layout["annotations"].append(panel_title(name, xa))
        data.append(
            {
                "type": "heatmap",
                "name": name,
                "x": x,
                "y": y,
                "z": kept,
                "coloraxis": "coloraxis",
                "xaxis": xa,
                "yaxis": ya,
                "showlegend": False,
                "hoverongaps": False,
                "hovertemplate": f"{point}<br>{goal.name} = %{{z:.4g}}{unit}<extra>{name}</extra>",
            }
        )
        best = best_cell(kept)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": BEST_CELL,
                "legendgroup": BEST_CELL,
                "showlegend": k == 0,
                "x": [None] if best is None else [x[best[1]]],
                "y": [None] if best is None else [y[best[0]]],
                "xaxis": xa,
                "yaxis": ya,
                "marker": {**BEST_MARKER, "size": 12},
                "hovertemplate": f"best of {name}<extra></extra>",
            }
        )
        data.append(diverged_layer(name, x, y, gone, xa, False, point))
    data.append(diverged_key())
    return with_waiting({"data": data, "layout": layout})


def best_figure(
    steps: Sequence[tuple[int, float]], last_number: int | None, goal: Objective = UNKNOWN
) -> Figure:
    """Best value so far vs distinct trainings (a step line through each improvement)."""
    x = [n for n, _ in steps]
    y = [v for _, v in steps]
    if steps and last_number is not None and last_number > x[-1]:
        x.append(last_number)
        y.append(y[-1])
    unit = f" {goal.unit}" if goal.unit else ""
    figure = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "best so far",
                "x": x,
                "y": y,
                "line": {"shape": "hv", "color": COLORS[1]},
                "hovertemplate": f"training %{{x}}: best %{{y:.4g}}{unit}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": f"Best {goal.name} so far"},
            "xaxis": {"title": {"text": "distinct trainings"}, "rangemode": "tozero"},
            "yaxis": {"title": {"text": goal.best_label()}},
            "showlegend": False,
            "margin": {"t": 50, "r": 10, "b": 50, "l": 60},
        },
    }
    return with_waiting(figure)


def curves_figure(
    curves: Sequence[tuple[str, Sequence[float]]],
    goal: Objective = UNKNOWN,
    steps: int | None = None,
) -> Figure:
    """Learning curves of selected trials, one line each, against the training step
    (`steps`: the trials' training steps; None: unknown, points numbered)."""
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": label,
            "x": curve_steps(len(curve), steps),
            "y": list(curve),
            "line": {"color": COLORS[k % len(COLORS)]},
        }
        for k, (label, curve) in enumerate(curves)
    ]
    figure = {
        "data": data,
        "layout": {
            "title": {"text": "Learning curves of selected trials"},
            "xaxis": {"title": {"text": "step" if steps else "curve point"}},
            "yaxis": {"title": {"text": goal.loss_label}},
            "legend": {"orientation": "h", "y": -0.3, "yanchor": "top"},
            "margin": {"t": 50, "r": 10, "b": 110, "l": 60},
        },
    }
    return with_waiting(figure)
