"""The report's plotly figure dicts (`studies.figures`) drawn with matplotlib, for PNG files.

It understands exactly the traces built there: heatmaps (the values on the colour axis, a
flat-coloured layer of diverged cells), bars with asymmetric error bars and their censored
counts (text traces grouped with them), scatter lines/markers with `tonexty` fills, and
subplot titles given as annotations with ``xref = "xN domain"``. Heatmaps label every α
row and ε column, and a legend under the panels explains their marks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

Figure = dict[str, Any]
#: Height of one heatmap row in inches, so that every α row gets a readable tick label.
ROW_INCHES = 0.2


def render_png(figure: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Draw a figure dict with matplotlib into a PNG file."""
    import matplotlib.pyplot as plt

    fig = draw(figure)
    out = Path(path)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def draw(figure: Figure) -> Any:
    """The matplotlib Figure of a figure dict (the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = figure["data"]
    axes_keys = sorted({t.get("xaxis", "x") for t in data} or {"x"}, key=_axis_number)
    rows = max((len(t["y"]) for t in data if t.get("type") == "heatmap"), default=0)
    height = max(4.6, rows * ROW_INCHES + 2.8)
    fig, axes = plt.subplots(
        1,
        len(axes_keys),
        figsize=(5.2 * len(axes_keys) + 1.0, height),
        squeeze=False,
        layout="constrained",
    )
    by_key = dict(zip(axes_keys, axes[0], strict=True))
    layout = figure.get("layout", {})
    image = None
    filled: dict[str, Any] = {}
    categories: dict[str, tuple[list[str], list[str]]] = {}
    for trace in data:
        key = trace.get("xaxis", "x")
        kind = trace.get("type", "scatter")
        if kind == "heatmap" and "coloraxis" in trace:
            image = _draw_heatmap(by_key[key], trace, layout.get("coloraxis", {}))
            categories[key] = (list(trace["x"]), list(trace["y"]))
        elif kind == "heatmap":
            _draw_flat_cells(by_key[key], trace)
        elif kind == "bar":
            _draw_bars(by_key[key], trace, data)
        elif trace.get("mode") == "text":
            _draw_bar_texts(by_key[key], trace, data)
        else:
            _draw_scatter(by_key[key], trace, filled, categories.get(key))
    for key, ax in by_key.items():
        suffix = key[1:]
        _style_axis(ax, layout.get(f"xaxis{suffix}", {}), layout.get(f"yaxis{suffix}", {}))
        for note in layout.get("annotations", []):
            if note.get("xref") == f"{key} domain":
                ax.set_title(note["text"])
            elif note.get("name") == "waiting":
                ax.text(0.5, 0.5, note["text"], transform=ax.transAxes, ha="center", color="#666")
    if image is not None:
        colorbar = fig.colorbar(image, ax=list(by_key.values()), shrink=0.9)
        colorbar.set_label(_title(layout.get("coloraxis", {}).get("colorbar", {})))
        handles = legend_handles(data)
        if handles:
            fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    else:
        for key, ax in by_key.items():
            extra = [h for t in data if t.get("xaxis", "x") == key for h in _text_handle(t)]
            lines, _ = ax.get_legend_handles_labels()
            if lines or extra:
                ax.legend(handles=lines + extra, fontsize=8)
    title = _title(layout)
    if title:
        fig.suptitle(title)
    return fig


def legend_handles(data: list[dict[str, Any]]) -> list[Any]:
    """Legend entries of a heatmap figure's marks: one per trace shown in the legend."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = []
    for trace in data:
        if not trace.get("showlegend", True) or "coloraxis" in trace:
            continue
        if trace.get("type") == "heatmap":
            handles.append(Patch(label=trace["name"], **_flat_style(trace)))
        elif "markers" in trace.get("mode", ""):
            marker = trace.get("marker", {})
            handles.append(Line2D([], [], linestyle="none", label=trace["name"], **_marker(marker)))
    return handles


def _title(part: dict[str, Any]) -> str:
    return part.get("title", {}).get("text", "")


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
    ax.set_xticks(range(len(trace["x"])), trace["x"], rotation=90, fontsize=7)
    ax.set_yticks(range(len(trace["y"])), trace["y"], fontsize=7)
    return image


def _flat_style(trace: dict[str, Any]) -> dict[str, Any]:
    color = trace.get("colorscale", [[0, "grey"]])[0][1]
    return {"facecolor": color, "edgecolor": "#d0d0d0", "hatch": "xx", "linewidth": 0}


def _draw_flat_cells(ax: Any, trace: dict[str, Any]) -> None:
    """The cells a flat-coloured heatmap (the diverged layer) fills, grey and hatched."""
    from matplotlib.patches import Rectangle

    style = _flat_style(trace)
    for i, row in enumerate(trace["z"]):
        for j, value in enumerate(row):
            if value is not None:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, zorder=2, **style))


def _bar_offset(trace: dict[str, Any], data: list[dict[str, Any]]) -> tuple[float, float]:
    """(offset from the category centre, width) of the bars grouped as `trace`."""
    bars = [t for t in data if t.get("type") == "bar"]
    group = trace.get("offsetgroup", trace.get("name"))
    k = next(i for i, t in enumerate(bars) if t.get("offsetgroup", t.get("name")) == group)
    width = 0.8 / len(bars)
    return (k - (len(bars) - 1) / 2) * width, width


def _draw_bars(ax: Any, trace: dict[str, Any], data: list[dict[str, Any]]) -> None:
    offset, width = _bar_offset(trace, data)
    x = np.arange(len(trace["x"])) + offset
    error = trace.get("error_y", {})
    yerr = [error.get("arrayminus", []), error.get("array", [])] if error else None
    color = trace.get("marker", {}).get("color")
    ax.bar(x, trace["y"], width, yerr=yerr, capsize=3, label=trace.get("name"), color=color)
    ax.set_xticks(np.arange(len(trace["x"])), trace["x"])


def _draw_bar_texts(ax: Any, trace: dict[str, Any], data: list[dict[str, Any]]) -> None:
    """Upright counts above the whiskers of the bars they are grouped with."""
    offset, _ = _bar_offset(trace, data)
    color = trace.get("textfont", {}).get("color")
    for xi, yi, text in zip(
        np.arange(len(trace["x"])) + offset, trace["y"], trace["text"], strict=True
    ):
        if text:
            ax.annotate(
                text, (xi, yi), textcoords="offset points", xytext=(0, 3), ha="center",
                fontsize=7, color=color,
            )  # fmt: skip


def _text_handle(trace: dict[str, Any]) -> list[Any]:
    """A legend entry saying what a text trace's numbers are."""
    if trace.get("mode") != "text" or not trace.get("showlegend", True):
        return []
    from matplotlib.lines import Line2D

    return [Line2D([], [], linestyle="none", marker="$n$", color="black", label=trace["name"])]


def _marker(marker: dict[str, Any]) -> dict[str, Any]:
    """matplotlib marker keywords of a plotly marker (x, filled or open circle)."""
    symbol = marker.get("symbol", "circle")
    color = marker.get("color")
    size = marker.get("size", 6)
    if symbol == "x":
        return {"marker": "x", "color": color, "markersize": size * 0.8, "markeredgewidth": 2}
    edge = marker.get("line", {}).get("color", color)
    face = "none" if symbol == "circle-open" else color
    return {
        "marker": "o",
        "markerfacecolor": face,
        "markeredgecolor": edge,
        "markersize": size * 0.8,
    }


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
        ax.plot(x, y, linestyle="none", zorder=3, **_marker(trace.get("marker", {})))
    elif line.get("width", 1) > 0:
        style = {"solid": "-", "dash": "--", "dot": ":"}.get(line.get("dash", "solid"), "-")
        label = trace.get("name") if trace.get("showlegend", True) else None
        ax.plot(x, y, style, color=color, linewidth=line.get("width", 1.5), label=label)


def _style_axis(ax: Any, xaxis: dict[str, Any], yaxis: dict[str, Any]) -> None:
    ax.set_xlabel(_title(xaxis))
    ax.set_ylabel(_title(yaxis))
    if yaxis.get("type") == "log":
        ax.set_yscale("log")
    if xaxis.get("type") == "log":
        ax.set_xscale("log", base=2)


def _axis_number(key: str) -> int:
    return int(key[1:] or 1)
