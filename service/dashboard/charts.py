"""Plotly figure dicts of the study page: the (α, ε) heatmap filling in as trials arrive,
best-so-far vs trial number, and learning curves.

The complete-grid figures of the report (Figure 1 and 2) come from `studies.figures`; the
heatmap here is its live counterpart: cells stay empty until their trial reports, axes are
log10 α and log10 ε (ticks labelled like the paper's grid values), colours share one scale
from the best value to the median, as in `studies.figures.heatmaps`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from service.dashboard.landscape import Landscape
from studies.figures import COLORS, panel_title, value_label

Figure = dict[str, Any]
Grid = list[list[float | None]]


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


def landscape_figure(panels: Sequence[tuple[str, Landscape, Grid]], title: str) -> Figure:
    """Heatmaps side by side (one per panel) on log axes, one colour scale, best marked ×."""
    gap = 0.08
    width = (1.0 - gap * (len(panels) - 1)) / max(len(panels), 1)
    span = color_range([grid for _, _, grid in panels])
    layout: dict[str, Any] = {
        "title": {"text": title},
        "coloraxis": {
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": "value"}},
            **({"cmin": span[0], "cmax": span[1]} if span else {}),
        },
        "annotations": [],
        "showlegend": False,
        "margin": {"t": 60, "r": 10, "b": 50, "l": 60},
    }
    data: list[dict[str, Any]] = []
    for k, (name, landscape, grid) in enumerate(panels):
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
                "z": grid,
                "coloraxis": "coloraxis",
                "xaxis": xa,
                "yaxis": ya,
                "hoverongaps": False,
                "hovertemplate": "α = 10^%{y:.2f}<br>ε = 10^%{x:.2f}<br>value = %{z:.4g}"
                f"<extra>{name}</extra>",
            }
        )
        best = best_cell(grid)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name}: best",
                "x": [] if best is None else [x[best[1]]],
                "y": [] if best is None else [y[best[0]]],
                "xaxis": xa,
                "yaxis": ya,
                "marker": {"symbol": "x", "color": "red", "size": 12},
                "hovertemplate": f"best of {name}<extra></extra>",
            }
        )
    return {"data": data, "layout": layout}


def best_figure(steps: Sequence[tuple[int, float]], last_number: int | None) -> Figure:
    """Best value so far vs trial number (a step line through each improvement)."""
    x = [n for n, _ in steps]
    y = [v for _, v in steps]
    if steps and last_number is not None and last_number > x[-1]:
        x.append(last_number)
        y.append(y[-1])
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "best so far",
                "x": x,
                "y": y,
                "line": {"shape": "hv", "color": COLORS[1]},
                "hovertemplate": "trial %{x}: best %{y:.4g}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Best value so far"},
            "xaxis": {"title": {"text": "trial number"}, "rangemode": "tozero"},
            "yaxis": {"title": {"text": "best value"}},
            "showlegend": False,
            "margin": {"t": 50, "r": 10, "b": 50, "l": 60},
        },
    }


def curves_figure(curves: Sequence[tuple[str, Sequence[float]]]) -> Figure:
    """Learning curves of selected trials, one line each."""
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": label,
            "x": list(range(1, len(curve) + 1)),
            "y": list(curve),
            "line": {"color": COLORS[k % len(COLORS)]},
        }
        for k, (label, curve) in enumerate(curves)
    ]
    return {
        "data": data,
        "layout": {
            "title": {"text": "Learning curves of selected trials"},
            "xaxis": {"title": {"text": "point reported by the worker"}},
            "yaxis": {"title": {"text": "curve value"}},
            "legend": {"orientation": "h", "y": -0.3, "yanchor": "top"},
            "margin": {"t": 50, "r": 10, "b": 110, "l": 60},
        },
    }
