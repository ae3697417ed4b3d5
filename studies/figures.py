"""What each figure of the separability report shows, as plotly figure dicts (JSON-able).

The dashboard hands these dicts to plotly.js; `render_png` (`studies.figure_png`) draws
the same dicts with matplotlib for report files. Axis and colour-bar labels name the
task's objective and unit (`studies.objectives`).

- Figure 1 `heatmaps`: the objective over the (α, ε) grid, one panel per optimizer,
  shared colour scale, best α of each ε column (the best-α drift path), the best cell and
  the diverged cells (every seed diverged) in grey, with a legend for the marks.
- Figure 2 `cost_bars`: trials to δ-success per tuner and optimizer: median, quartile
  whiskers, censored runs counted above the whiskers (and in the hover).
- Figure 2 `suboptimality_curves`: median best-so-far suboptimality vs trials for GLD and
  CGLD per optimizer, with interquartile bands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studies.deltas import delta_gap, delta_text, delta_unit
from studies.figure_png import draw, render_png
from studies.figure_style import (
    BEST_CELL,
    BEST_MARKER,
    BEST_PATH,
    COLORS,
    LEGEND_BELOW,
    LEGEND_MARGIN,
    PATH_MARKER,
    diverged_layer,
    panel_title,
    value_label,
    with_waiting,
)
from studies.objectives import UNKNOWN, Objective, objective_of
from studies.replay import ReplayResult
from studies.separability import best_alphas, objective
from studies.table import GridTable

__all__ = ["COLORS", "draw", "panel_title", "render_png", "value_label"]

Figure = dict[str, Any]
DASHES = {"gld": "solid", "cgld": "dash"}
FLOOR = 0.01  # suboptimality drawn on a log axis: 0 shows as this floor


def heatmap(table: GridTable, name: str | None = None) -> Figure:
    """Figure 1 for one table."""
    return heatmaps([table], [name] if name else None)


def wholly_diverged(table: GridTable) -> np.ndarray:
    """[i_alpha, j_eps]: cells where every seed diverged (their value is chance, not a result)."""
    if table.diverged_seeds is not None:
        return np.asarray(table.diverged_seeds, dtype=bool).all(axis=0)
    if table.error_seeds is None and table.diverged is not None:
        return np.asarray(table.diverged, dtype=bool)
    return np.zeros(table.shape, dtype=bool)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def heatmaps(tables: Sequence[GridTable], names: Sequence[str] | None = None) -> Figure:
    """Figure 1: heatmaps of the objective side by side, one shared colour scale."""
    names = list(names) if names else [t.optimizer for t in tables]
    goal = objective_of(tables[0].task)
    grids = [objective(t) for t in tables]
    masks = [wholly_diverged(t) for t in tables]
    kept = np.concatenate([g[~m] for g, m in zip(grids, masks, strict=True)])
    pooled = kept if kept.size else np.concatenate([g.ravel() for g in grids])
    low, high = float(pooled.min()), float(np.median(pooled))
    gap = 0.06
    width = (1.0 - gap * (len(tables) - 1)) / len(tables)
    layout: dict[str, Any] = {
        "title": {"text": f"{_capital(goal.label)} over the (α, ε) grid"},
        "coloraxis": {
            "colorscale": "Viridis",
            "cmin": low,
            "cmax": max(high, low + 1e-9),
            "colorbar": {"title": {"text": goal.label}},
        },
        "annotations": [],
        "showlegend": True,
        "legend": LEGEND_BELOW,
        "margin": {"b": LEGEND_MARGIN},
    }
    unit = f" {goal.unit}" if goal.unit else ""
    data: list[dict[str, Any]] = []
    shown_diverged = False
    for k, (table, grid, mask, name) in enumerate(zip(tables, grids, masks, names, strict=True)):
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
        values = _rounded(grid)
        data.append(
            {
                "type": "heatmap",
                "name": name,
                "x": x,
                "y": y,
                "z": _masked(values, mask, keep=False),
                "coloraxis": "coloraxis",
                "xaxis": xa,
                "yaxis": ya,
                "showlegend": False,
                "hoverongaps": False,
                "hovertemplate": f"α=%{{y}}<br>ε=%{{x}}<br>{goal.name}=%{{z:.4g}}{unit}"
                f"<extra>{name}</extra>",
            }
        )
        if mask.any():
            z = _masked(values, mask, keep=True)
            data.append(diverged_layer(name, x, y, z, xa, not shown_diverged))
            shown_diverged = True
        path = best_alphas(grid)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": BEST_PATH,
                "legendgroup": BEST_PATH,
                "showlegend": k == 0,
                "x": x,
                "y": [y[i] for i in path],
                "xaxis": xa,
                "yaxis": ya,
                "marker": PATH_MARKER,
                "hovertemplate": f"best α of column ε=%{{x}}: %{{y}}<extra>{name}</extra>",
            }
        )
        best_i, best_j = np.unravel_index(int(np.argmin(grid)), grid.shape)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": BEST_CELL,
                "legendgroup": BEST_CELL,
                "showlegend": k == 0,
                "x": [x[best_j]],
                "y": [y[best_i]],
                "xaxis": xa,
                "yaxis": ya,
                "marker": BEST_MARKER,
                "hovertemplate": f"best cell: α=%{{y}}, ε=%{{x}}<extra>{name}</extra>",
            }
        )
    return with_waiting({"data": data, "layout": layout})


def _masked(values: list[list[float]], mask: np.ndarray, keep: bool) -> list[list[float | None]]:
    """The values where `mask` is `keep`, None elsewhere."""
    return [
        [v if bool(m) == keep else None for v, m in zip(row, flags, strict=True)]
        for row, flags in zip(values, mask, strict=True)
    ]


def _objective(result: ReplayResult) -> Objective:
    return objective_of(result.tables[0].task) if result.tables else UNKNOWN


def cost_bars(replay: ReplayResult | Mapping[str, Any], delta: float | None = None) -> Figure:
    """Figure 2 (left): trials to δ-success, median per tuner and optimizer, quartile whiskers.

    Censored runs (never within δ) are counted above each whisker, upright, one text trace
    per optimizer grouped with its bars, with a legend entry saying what the numbers are.
    """
    result = _replay(replay)
    delta = result.delta if delta is None else delta
    goal = _objective(result)
    runs = result.seeds
    data: list[dict[str, Any]] = []
    counts: list[dict[str, Any]] = []
    for k, table in enumerate(result.tables):
        tuners = list(table.tuners)
        stats = [table.tuners[t].at(delta) for t in tuners]
        color = COLORS[k % len(COLORS)]
        censored = [s.n_censored for s in stats]
        data.append(
            {
                "type": "bar",
                "name": table.name,
                "offsetgroup": table.name,
                "x": tuners,
                "y": [s.median for s in stats],
                "marker": {"color": color},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [s.q3 - s.median for s in stats],
                    "arrayminus": [s.median - s.q1 for s in stats],
                },
                "customdata": [[s.q1, s.q3, n] for s, n in zip(stats, censored, strict=True)],
                "textposition": "none",
                "hovertemplate": "%{x}: median %{y:.4g} trials, quartiles %{customdata[0]:.4g}"
                f"–%{{customdata[1]:.4g}}<br>%{{customdata[2]}} of {runs} runs censored"
                f"<extra>{table.name}</extra>",
            }
        )
        if any(censored):
            counts.append(
                {
                    "type": "scatter",
                    "mode": "text",
                    "name": f"n above a bar: runs censored (of {runs})",
                    "legendgroup": "censored",
                    "showlegend": not counts,
                    "offsetgroup": table.name,
                    "x": tuners,
                    "y": [s.q3 if np.isfinite(s.q3) else s.median for s in stats],
                    "text": [str(n) if n else "" for n in censored],
                    "textposition": "top center",
                    "textfont": {"size": 11, "color": color},
                    "cliponaxis": False,
                    "hoverinfo": "skip",
                }
            )
    if result.delta_kind == "relative":
        within = f"{delta:g} % of the grid's best (f*)"
    else:
        within = f"{f'{delta:g} {goal.gap_unit}'.strip()} of the grid's best"
    layout = {
        "title": {"text": f"Trials to within {within} ({runs} seeded runs)"},
        "barmode": "group",
        "scattermode": "group",
        "legend": LEGEND_BELOW,
        "margin": {"b": LEGEND_MARGIN},
        "xaxis": {"title": {"text": "tuner"}},
        "yaxis": {"title": {"text": "distinct evaluations (median, quartiles)"}},
    }
    return with_waiting({"data": data + counts, "layout": layout})


def suboptimality_curves(
    replay: ReplayResult | Mapping[str, Any],
    tuners: Sequence[str] = ("gld", "cgld"),
    max_trials: int | None = None,
) -> Figure:
    """Figure 2 (right): median best-so-far suboptimality vs trials (log), IQR bands."""
    result = _replay(replay)
    goal = _objective(result)
    data: list[dict[str, Any]] = []
    for k, table in enumerate(result.tables):
        color = COLORS[k % len(COLORS)]
        for tuner in tuners:
            if tuner not in table.tuners:
                continue
            runs = table.tuners[tuner]
            if not runs.costs or not runs.traces:
                continue
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
    data += _delta_lines(result, goal, longest)
    floor = ", ".join(u for u in (goal.gap_unit, f"floor {FLOOR:g}") if u)
    layout = {
        "title": {"text": f"Suboptimality (best {goal.name} − grid minimum) vs trials"},
        "xaxis": {"title": {"text": "distinct evaluations"}},
        "yaxis": {
            "title": {"text": f"suboptimality ({floor})"},
            "type": "log",
        },
    }
    return with_waiting({"data": data, "layout": layout})


def _delta_lines(result: ReplayResult, goal: Objective, longest: int) -> list[dict[str, Any]]:
    """A dotted line at each δ's gap above f*: one per table when δ is relative (% of f*)."""
    unit = delta_unit(result.delta_kind, goal.gap_unit)
    relative = result.delta_kind == "relative"
    lines = []
    for delta in result.deltas:
        for table in result.tables if relative else [None]:
            f_star = table.f_star if table is not None else 0.0
            gap = float(delta_gap(delta, f_star, result.delta_kind))
            name = delta_text(delta, unit) + (f" ({table.name})" if table is not None else "")
            lines.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": name,
                    "x": [1, longest],
                    "y": [gap, gap],
                    "line": {"color": "grey", "dash": "dot", "width": 1},
                }
            )
    return lines


def tunability_curves(metrics: Mapping[str, Any]) -> Figure:
    """Expected best objective after k random trials per optimizer, with 95 % bootstrap bands."""
    tables = metrics["tables"]
    goal = objective_of(next(iter(tables.values()), {}).get("task", ""))
    data: list[dict[str, Any]] = []
    for k, (name, grid) in enumerate(tables.items()):
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
        "title": {"text": f"Tunability: expected best {goal.name} after k random trials"},
        "xaxis": {"title": {"text": "k (random trials on the grid)"}, "type": "log"},
        "yaxis": {"title": {"text": f"expected best {goal.label}"}},
    }
    return with_waiting({"data": data, "layout": layout})


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
