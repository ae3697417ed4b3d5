"""An experiment's stored separability report, made ready for the page: Figures 1 and 2 (the
figure dicts of `studies.figures`, shared with `avatune report`), the metrics tables with
confidence intervals, and the verdict sentence.

The stored report holds the metrics and grid tables; the replay runs behind Figure 2 live
in ``<data_dir>/reports/<id>/replay.json``, written when the report was computed. Without
that file the cost bars are drawn from the stored medians and quartiles, and the
suboptimality curves are left out.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from studies import figures
from studies.replay import CostStats, ReplayResult, TableReplay, TunerReplay, delta_key
from studies.report_text import units
from studies.table import GridTable

_CACHE: dict[tuple[str, int, str], dict[str, Any]] = {}
_CACHE_SIZE = 16


def replay_path(data_dir: Path, experiment_id: int) -> Path:
    """Where `service.reports` leaves an experiment's replay.json."""
    return Path(data_dir) / "reports" / str(experiment_id) / "replay.json"


def load_replay(data_dir: Path, experiment_id: int) -> ReplayResult | None:
    """The replay behind the report, when its file is still there and readable."""
    path = replay_path(data_dir, experiment_id)
    try:
        return ReplayResult.load(path)
    except (OSError, ValueError):
        return None


def _stats(cost: dict[str, Any]) -> dict[str, Any]:
    return {
        "costs": [],
        "censored": [],
        "median": cost["median"],
        "q1": cost["q1"],
        "q3": cost["q3"],
        "mean": cost["mean"],
        "n_censored": cost["n_censored"],
    }


def replay_from_metrics(metrics: dict[str, Any]) -> ReplayResult | None:
    """A replay holding only the stored summaries (enough for the cost bars), or None."""
    try:
        main = delta_key(metrics["delta"])
        tables = []
        for name, grid in metrics["tables"].items():
            tuners = {
                tuner: TunerReplay(
                    tuner=tuner,
                    seeds=[],
                    restarts=[],
                    asks=[],
                    traces=[],
                    **_stats(cost),
                    by_delta={
                        key: CostStats(**_stats(by_name[name][tuner]))
                        for key, by_name in metrics["costs_by_delta"].items()
                        if key != main
                    },
                )
                for tuner, cost in metrics["costs_by_delta"][main][name].items()
            }
            tables.append(
                TableReplay(
                    name=name,
                    task=grid["task"],
                    optimizer=grid["optimizer"],
                    shape=tuple(grid["shape"]),
                    f_star=grid["f_star"],
                    tuners=tuners,
                )
            )
        return ReplayResult(
            delta=metrics["delta"],
            deltas=metrics["deltas"],
            delta_kind=units(metrics).delta_kind,
            seeds=metrics["seeds"],
            tables=tables,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _cost_tables(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(metrics["tables"])
    reference = metrics["reference"]
    others = [n for n in names if n != reference]
    main = delta_key(metrics["delta"])
    u = units(metrics)
    out = []
    for key, costs in metrics["costs_by_delta"].items():
        rows = []
        for tuner in costs[names[0]]:
            ratios = (
                [metrics["ratios"][f"{o}/{reference}"].get(tuner) for o in others]
                if key == main
                else []
            )
            rows.append(
                {"tuner": tuner, "costs": [costs[n][tuner] for n in names], "ratios": ratios}
            )
        out.append(
            {
                "delta": float(key),
                "delta_text": u.delta(float(key)),
                "targets": [metrics["tables"][n].get("targets", {}).get(key) for n in names]
                if u.delta_kind == "relative"
                else None,
                "main": key == main,
                "rows": rows,
            }
        )
    return out


def report_view(
    report: dict[str, Any], computed_at: datetime, replay: ReplayResult | None
) -> dict[str, Any]:
    """Figures, tables and verdict of a stored report (`{"metrics", "tables"}`)."""
    metrics = report["metrics"]
    names = list(metrics["tables"])
    tables = [GridTable.model_validate(t) for t in report["tables"]]
    bars = replay or replay_from_metrics(metrics)
    reference = metrics["reference"]
    u = units(metrics)
    return {
        "verdict": metrics.get("verdict", ""),
        "conclusion": metrics.get("conclusion"),
        "conclusion_reason": metrics.get("conclusion_reason", ""),
        "conclusion_rule": metrics.get("conclusion_rule", ""),
        "decided_by": metrics.get("decided_by"),
        "cgld_gain": metrics.get("cgld_gain", {}),
        "cgld_gain_interaction": metrics.get("cgld_gain_interaction", {}),
        "delta": metrics.get("delta"),
        "delta_text": u.delta(metrics["delta"]) if metrics.get("delta") is not None else "δ",
        "units": u,
        "tunability": figures.tunability_curves(metrics)
        if all("stats" in g for g in metrics["tables"].values())
        else None,
        "computed_at": computed_at,
        "names": names,
        "reference": reference,
        "others": [n for n in names if n != reference],
        "seeds": metrics.get("seeds"),
        "grids": metrics["tables"],
        "cost_tables": _cost_tables(metrics),
        "figure1": figures.heatmaps(tables, names),
        "figure2_costs": figures.cost_bars(bars) if bars is not None else None,
        "figure2_curves": figures.suboptimality_curves(replay) if replay is not None else None,
    }


def cached_view(
    experiment_id: int, report: dict[str, Any], computed_at: datetime, data_dir: Path
) -> dict[str, Any]:
    """`report_view`, kept per experiment and report time (a stored report never changes)."""
    key = (str(data_dir), experiment_id, computed_at.isoformat())
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = report_view(report, computed_at, load_replay(data_dir, experiment_id))
    return _CACHE[key]
