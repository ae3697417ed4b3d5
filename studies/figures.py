"""What each figure of the separability report shows, as plotly figure dicts (JSON-able).

The dashboard hands these dicts to plotly.js; `render_png` draws the same dicts with
matplotlib for report files (it understands exactly the traces built here: heatmap, bar
with asymmetric error bars, scatter lines/markers with `tonexty` fills, and subplot
titles given as annotations with ``xref = "xN domain"``).

- Figure 1 `heatmaps`: validation error over the (α, ε) grid, one panel per optimizer,
  shared colour scale, best α of each ε column (the best-α drift path) and the best cell.
- Figure 2 `cost_bars`: trials to δ-success per tuner and optimizer: median, quartile
  whiskers, censored runs counted in the hover/label text.
- Figure 2 `suboptimality_curves`: median best-so-far suboptimality vs trials for GLD and
  CGLD per optimizer, with interquartile bands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studies.replay import ReplayResult
from studies.separability import best_alphas, objective
from studies.table import GridTable

Figure = dict[str, Any]
COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
DASHES = {"gld": "solid", "cgld": "dash"}
FLOOR = 0.01  # suboptimality drawn on a log axis: 0 shows as this floor


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


def heatmap(table: GridTable, name: str | None = None) -> Figure:
    """Figure 1 for one table."""
    return heatmaps([table], [name] if name else None)


def heatmaps(tables: Sequence[GridTable], names: Sequence[str] | None = None) -> Figure:
    """Figure 1: validation-error heatmaps side by side, one shared colour scale."""
    names = list(names) if names else [t.optimizer for t in tables]
    grids = [objective(t) for t in tables]
    pooled = np.concatenate([g.ravel() for g in grids])
    low, high = float(pooled.min()), float(np.median(pooled))
    gap = 0.06
    width = (1.0 - gap * (len(tables) - 1)) / len(tables)
    layout: dict[str, Any] = {
        "title": {"text": "Validation error (%) over the (α, ε) grid"},
        "coloraxis": {
            "colorscale": "Viridis",
            "cmin": low,
            "cmax": max(high, low + 1e-9),
            "colorbar": {"title": {"text": "error %"}},
        },
        "annotations": [],
        "showlegend": False,
    }
    data: list[dict[str, Any]] = []
    for k, (table, grid, name) in enumerate(zip(tables, grids, names, strict=True)):
        suffix = "" if k == 0 else str(k + 1)
        xa, ya = f"x{suffix}", f"y{suffix}"
        x = [value_label(e) for e in table.epsilons]
        y = [value_label(a) for a in table.alphas]
        left = k * (width + gap)
        layout[f"xaxis{suffix}"] = {
            "domain": [left, left + width],
            "anchor": ya,
            "title": {"text": "ε"},
            "type": "category",
        }
        layout[f"yaxis{suffix}"] = {"anchor": xa, "title": {"text": "α"}, "type": "category"}
        layout["annotations"].append(panel_title(name, xa))
        data.append(
            {
                "type": "heatmap",
                "name": name,
                "x": x,
                "y": y,
                "z": _rounded(grid),
                "coloraxis": "coloraxis",
                "xaxis": xa,
                "yaxis": ya,
                "hovertemplate": "α=%{y}<br>ε=%{x}<br>error=%{z:.2f}%<extra>" + name + "</extra>",
            }
        )
        path = best_alphas(grid)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name}: best α per ε",
                "x": x,
                "y": [y[i] for i in path],
                "xaxis": xa,
                "yaxis": ya,
                "marker": {"symbol": "circle-open", "color": "white", "size": 7},
            }
        )
        best_i, best_j = np.unravel_index(int(np.argmin(grid)), grid.shape)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name}: best",
                "x": [x[best_j]],
                "y": [y[best_i]],
                "xaxis": xa,
                "yaxis": ya,
                "marker": {"symbol": "x", "color": "red", "size": 11},
            }
        )
    return {"data": data, "layout": layout}


def cost_bars(replay: ReplayResult | Mapping[str, Any], delta: float | None = None) -> Figure:
    """Figure 2 (left): trials to δ-success, median per tuner and optimizer, quartile whiskers."""
    result = _replay(replay)
    delta = result.delta if delta is None else delta
    data = []
    for k, table in enumerate(result.tables):
        tuners = list(table.tuners)
        stats = [table.tuners[t].at(delta) for t in tuners]
        medians = [s.median for s in stats]
        data.append(
            {
                "type": "bar",
                "name": table.name,
                "x": tuners,
                "y": medians,
                "marker": {"color": COLORS[k % len(COLORS)]},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [s.q3 - s.median for s in stats],
                    "arrayminus": [s.median - s.q1 for s in stats],
                },
                "text": [f"{s.n_censored} cens." if s.n_censored else "" for s in stats],
                "hovertemplate": "%{x}: median %{y}<br>%{text}<extra>" + table.name + "</extra>",
            }
        )
    layout = {
        "title": {"text": f"Trials to {delta:g} pp suboptimality ({result.seeds} seeded runs)"},
        "barmode": "group",
        "xaxis": {"title": {"text": "tuner"}},
        "yaxis": {"title": {"text": "distinct evaluations (median, quartiles)"}},
    }
    return {"data": data, "layout": layout}


def suboptimality_curves(
    replay: ReplayResult | Mapping[str, Any],
    tuners: Sequence[str] = ("gld", "cgld"),
    max_trials: int | None = None,
) -> Figure:
    """Figure 2 (right): median best-so-far suboptimality vs trials (log), IQR bands."""
    result = _replay(replay)
    data: list[dict[str, Any]] = []
    for k, table in enumerate(result.tables):
        color = COLORS[k % len(COLORS)]
        for tuner in tuners:
            if tuner not in table.tuners:
                continue
            runs = table.tuners[tuner]
            curves = _padded(runs.traces, max_trials or int(np.percentile(runs.costs, 90)) + 1)
            if curves.size == 0:
                continue
            trials = list(range(1, curves.shape[1] + 1))
            q1, median, q3 = np.maximum(np.percentile(curves, [25, 50, 75], axis=0), FLOOR)
            label = f"{table.name} {tuner.upper()}"
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": trials,
                    "y": _rounded(q3),
                    "line": {"width": 0, "color": color},
                    "showlegend": False,
                    "hoverinfo": "skip",
                    "name": f"{label} q3",
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": trials,
                    "y": _rounded(q1),
                    "line": {"width": 0, "color": color},
                    "fill": "tonexty",
                    "fillcolor": _alpha(color, 0.15),
                    "showlegend": False,
                    "hoverinfo": "skip",
                    "name": f"{label} q1",
                }
            )
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": label,
                    "x": trials,
                    "y": _rounded(median),
                    "line": {"color": color, "dash": DASHES.get(tuner, "dot"), "width": 2},
                }
            )
    longest = max((len(t["x"]) for t in data), default=1)
    for delta in result.deltas:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"δ = {delta:g}",
                "x": [1, longest],
                "y": [delta, delta],
                "line": {"color": "grey", "dash": "dot", "width": 1},
            }
        )
    layout = {
        "title": {"text": "Suboptimality (pp of error) vs trials"},
        "xaxis": {"title": {"text": "distinct evaluations"}},
        "yaxis": {
            "title": {"text": f"best error − grid minimum (pp, floor {FLOOR:g})"},
            "type": "log",
        },
    }
    return {"data": data, "layout": layout}


def tunability_curves(metrics: Mapping[str, Any]) -> Figure:
    """Expected best error after k random trials per optimizer, with 95 % bootstrap bands."""
    data: list[dict[str, Any]] = []
    for k, (name, grid) in enumerate(metrics["tables"].items()):
        curve = grid["stats"]["tunability"]
        color = COLORS[k % len(COLORS)]
        band = {"fill": "tonexty", "fillcolor": _alpha(color, 0.2)}
        for edge in ("hi", "lo"):  # the band: "lo" fills down to it from "hi"
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": curve["ks"],
                    "y": curve[edge],
                    "line": {"width": 0, "color": color},
                    "showlegend": False,
                    "hoverinfo": "skip",
                    "name": f"{name} {edge}",
                    **(band if edge == "lo" else {}),
                }
            )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": curve["ks"],
                "y": curve["expected"],
                "line": {"color": color, "width": 2},
            }
        )
    layout = {
        "title": {"text": "Tunability: expected best error after k random trials"},
        "xaxis": {"title": {"text": "k (random trials on the grid)"}, "type": "log"},
        "yaxis": {"title": {"text": "expected best validation error (%)"}},
    }
    return {"data": data, "layout": layout}


def render_png(figure: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Draw a figure dict of this module with matplotlib into a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_keys = sorted({t.get("xaxis", "x") for t in figure["data"]}, key=_axis_number)
    fig, axes = plt.subplots(
        1, len(axes_keys), figsize=(5.2 * len(axes_keys) + 1.0, 4.6), squeeze=False
    )
    by_key = dict(zip(axes_keys, axes[0], strict=True))
    layout = figure.get("layout", {})
    image = None
    filled: dict[str, Any] = {}
    categories: dict[str, tuple[list[str], list[str]]] = {}
    for trace in figure["data"]:
        key = trace.get("xaxis", "x")
        kind = trace.get("type", "scatter")
        if kind == "heatmap":
            image = _draw_heatmap(by_key[key], trace, layout.get("coloraxis", {}))
            categories[key] = (list(trace["x"]), list(trace["y"]))
        elif kind == "bar":
            _draw_bars(by_key[key], trace, figure["data"])
        else:
            _draw_scatter(by_key[key], trace, filled, categories.get(key))
    for key, ax in by_key.items():
        suffix = key[1:]
        _style_axis(ax, layout.get(f"xaxis{suffix}", {}), layout.get(f"yaxis{suffix}", {}))
        for note in layout.get("annotations", []):
            if note.get("xref") == f"{key} domain":
                ax.set_title(note["text"])
        if (
            any(
                t.get("showlegend", True)
                and t.get("type") != "heatmap"
                and "name" in t
                and t.get("xaxis", "x") == key
                for t in figure["data"]
            )
            and image is None
        ):
            ax.legend(fontsize=8)
    if image is not None:
        colorbar = fig.colorbar(image, ax=list(by_key.values()), shrink=0.9)
        colorbar.set_label("error %")
    title = layout.get("title", {}).get("text")
    if title:
        fig.suptitle(title)
    out = Path(path)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _draw_heatmap(ax: Any, trace: dict[str, Any], coloraxis: dict[str, Any]) -> Any:
    z = np.asarray(trace["z"], dtype=float)
    image = ax.imshow(
        z,
        origin="lower",
        aspect="auto",
        cmap="viridis",
        vmin=coloraxis.get("cmin"),
        vmax=coloraxis.get("cmax"),
    )
    ax.set_xticks(range(0, len(trace["x"]), 2), trace["x"][::2], rotation=90, fontsize=7)
    ax.set_yticks(range(0, len(trace["y"]), 2), trace["y"][::2], fontsize=7)
    return image


def _draw_bars(ax: Any, trace: dict[str, Any], data: list[dict[str, Any]]) -> None:
    bars = [t for t in data if t.get("type") == "bar"]
    k, n = bars.index(trace), len(bars)
    width = 0.8 / n
    x = np.arange(len(trace["x"])) + (k - (n - 1) / 2) * width
    error = trace.get("error_y", {})
    yerr = [error.get("arrayminus", []), error.get("array", [])] if error else None
    color = trace.get("marker", {}).get("color")
    ax.bar(x, trace["y"], width, yerr=yerr, capsize=3, label=trace.get("name"), color=color)
    for xi, yi, text in zip(x, trace["y"], trace.get("text", []), strict=False):
        if text:
            ax.annotate(
                text,
                (xi, yi),
                textcoords="offset points",
                xytext=(0, 2),
                ha="center",
                fontsize=6,
                rotation=90,
            )
    ax.set_xticks(np.arange(len(trace["x"])), trace["x"])


def _draw_scatter(
    ax: Any,
    trace: dict[str, Any],
    filled: dict[str, Any],
    categories: tuple[list[str], list[str]] | None,
) -> None:
    x, y = trace["x"], trace["y"]
    if categories is not None:
        x = [categories[0].index(v) for v in x]
        y = [categories[1].index(v) for v in y]
    key = trace.get("xaxis", "x")
    line = trace.get("line", {})
    color = line.get("color") or trace.get("marker", {}).get("color")
    if trace.get("fill") == "tonexty" and key in filled:
        ax.fill_between(x, filled[key], y, color=color, alpha=0.15, linewidth=0)
    filled[key] = y
    if "markers" in trace.get("mode", "lines"):
        marker = trace.get("marker", {})
        symbol = {"x": "x", "circle-open": "o"}.get(marker.get("symbol"), "o")
        size = (marker.get("size", 6) ** 2) / 2
        if symbol == "o":
            ax.scatter(
                x,
                y,
                marker="o",
                facecolors="none",
                edgecolors=marker.get("color"),
                s=size,
                zorder=3,
            )
        else:
            ax.scatter(x, y, marker=symbol, color=marker.get("color"), s=size, zorder=3)
    elif line.get("width", 1) > 0:
        style = {"solid": "-", "dash": "--", "dot": ":"}.get(line.get("dash", "solid"), "-")
        label = trace.get("name") if trace.get("showlegend", True) else None
        ax.plot(x, y, style, color=color, linewidth=line.get("width", 1.5), label=label)


def _style_axis(ax: Any, xaxis: dict[str, Any], yaxis: dict[str, Any]) -> None:
    ax.set_xlabel(xaxis.get("title", {}).get("text", ""))
    ax.set_ylabel(yaxis.get("title", {}).get("text", ""))
    if yaxis.get("type") == "log":
        ax.set_yscale("log")
    if xaxis.get("type") == "log":
        ax.set_xscale("log", base=2)


def _axis_number(key: str) -> int:
    return int(key[1:] or 1)


def _padded(traces: list[list[float]], length: int) -> np.ndarray:
    rows = [t[:length] + [t[-1]] * (length - len(t)) for t in traces if t]
    return np.asarray(rows, dtype=float)


def _rounded(values: np.ndarray) -> list[Any]:
    return np.round(np.asarray(values, dtype=float), 4).tolist()


def _alpha(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _replay(replay: ReplayResult | Mapping[str, Any]) -> ReplayResult:
    return replay if isinstance(replay, ReplayResult) else ReplayResult.model_validate(replay)
