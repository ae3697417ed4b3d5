"""What the report's figures and the dashboard's live charts share: colours, the marks of a
heatmap (best cell, best α per ε column, diverged cells), their legend, grid-value tick
labels, panel titles and the "waiting for the first result" note of an empty chart."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
#: Diverged cells: one flat grey, outside the Viridis scale of the values.
DIVERGED_COLOR = "#6e6e6e"
DIVERGED = "diverged"
BEST_CELL = "best cell"
BEST_PATH = "best α of each ε column"
BEST_MARKER = {"symbol": "x", "color": "red", "size": 11}
#: White dots ringed in black: visible on every Viridis colour and on a white legend.
PATH_MARKER = {
    "symbol": "circle",
    "color": "white",
    "size": 7,
    "line": {"color": "black", "width": 1.5},
}
#: A horizontal legend centred at the bottom of the figure (under the x axis title, whatever
#: the plot's height: give the layout a bottom margin of `LEGEND_MARGIN`).
LEGEND_BELOW = {
    "orientation": "h",
    "x": 0.5,
    "xanchor": "center",
    "y": 0,
    "yanchor": "bottom",
    "yref": "container",
}
LEGEND_MARGIN = 100
WAITING = "waiting for the first result"

Figure = dict[str, Any]


def value_label(value: float) -> str:
    """A grid value as the paper writes it: 5e-7, 1e-6, 1, 50."""
    mantissa, exponent = f"{value:.0e}".split("e")
    power = int(exponent)
    if 0 <= power <= 2:
        return f"{int(mantissa) * 10**power}"
    return f"{mantissa}e{power}"


def panel_title(text: str, xaxis: str) -> dict[str, Any]:
    """A plotly annotation centred above the subplot whose x axis is `xaxis` (e.g. "x2")."""
    return {
        "text": text,
        "xref": f"{xaxis} domain",
        "yref": "paper",
        "x": 0.5,
        "y": 1.0,
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
    }


def diverged_layer(
    panel: str,
    x: Sequence[Any],
    y: Sequence[Any],
    z: list[list[float | None]],
    axes: str,
    first: bool,
    point: str = "α = %{y}<br>ε = %{x}",
) -> dict[str, Any]:
    """A flat grey heatmap over the diverged cells (`z` holds their values, None elsewhere)."""
    suffix = axes[1:]
    return {
        "type": "heatmap",
        "name": DIVERGED,
        "x": list(x),
        "y": list(y),
        "z": z,
        "colorscale": [[0, DIVERGED_COLOR], [1, DIVERGED_COLOR]],
        "showscale": False,
        "showlegend": first,
        "legendgroup": DIVERGED,
        "hoverongaps": False,
        "xaxis": axes,
        "yaxis": f"y{suffix}",
        "hovertemplate": f"{point}<br>diverged (value %{{z:.4g}})<extra>{panel}</extra>",
    }


def diverged_key() -> dict[str, Any]:
    """The legend's "diverged" entry, a trace with no point (it stays when no cell diverged,
    where plotly drops the legend entry of an empty heatmap)."""
    return {
        "type": "scatter",
        "mode": "markers",
        "name": DIVERGED,
        "legendgroup": DIVERGED,
        "x": [None],
        "y": [None],
        "marker": {"symbol": "square", "color": DIVERGED_COLOR, "size": 12},
        "hoverinfo": "skip",
    }


def waiting_note() -> dict[str, Any]:
    """The annotation an empty chart shows in its middle."""
    return {
        "name": "waiting",
        "text": WAITING,
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "y": 0.5,
        "showarrow": False,
        "font": {"size": 16, "color": "#666"},
    }


def _values(trace: dict[str, Any]) -> Iterable[Any]:
    values = trace.get("z") if trace.get("type") == "heatmap" else trace.get("y")
    for value in values or []:
        if isinstance(value, list | tuple):
            yield from value
        else:
            yield value


def has_data(figure: Figure) -> bool:
    """Whether some trace of the figure holds a value (legend-only traces hold none)."""
    return any(v is not None for trace in figure.get("data", []) for v in _values(trace))


def with_waiting(figure: Figure) -> Figure:
    """The figure, with the waiting note when it holds no value yet (and without it else)."""
    layout = figure.setdefault("layout", {})
    notes = [a for a in layout.get("annotations", []) if a.get("name") != "waiting"]
    if not has_data(figure):
        notes.append(waiting_note())
    layout["annotations"] = notes
    return figure
