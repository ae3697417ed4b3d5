"""Optuna's own tuners, configured the way avatune runs them (grid, random, TPE, CMA-ES)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optuna.exceptions import ExperimentalWarning
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GridSampler,
    RandomSampler,
    TPESampler,
)

from studies.tuners.domain import GRID_PARAMS

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState


class GridSearchSampler(GridSampler):
    """Optuna's GridSampler, usable with ask/tell: the tell that exhausts the grid won't raise."""

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        try:
            super().after_trial(study, trial, state, values)
        except RuntimeError as error:  # Study.stop() outside optimize(): nothing to stop
            if "Study.stop" not in str(error):
                raise


def grid_sampler(
    *, seed: int | None = None, grid_shape: tuple[int, int] | None = None, **config: Any
) -> BaseSampler:
    """Every point of the index grid once, in a seeded random order (Optuna GridSampler)."""
    space = config.pop("search_space", None)
    if space is None:
        if grid_shape is None:
            raise ValueError("the grid tuner needs grid_shape (or search_space of values)")
        space = {name: list(range(n)) for name, n in zip(GRID_PARAMS, grid_shape, strict=True)}
    _no_extra("grid", config)
    return GridSearchSampler(space, seed=seed)


def random_sampler(*, seed: int | None = None, **config: Any) -> BaseSampler:
    """Independent uniform draws (Optuna RandomSampler)."""
    config.pop("grid_shape", None)
    _no_extra("random", config)
    return RandomSampler(seed=seed)


def tpe_sampler(
    *, seed: int | None = None, parallelism: int | None = None, **config: Any
) -> BaseSampler:
    """Tree-structured Parzen estimator (Optuna TPESampler, its defaults unless configured),
    with the constant liar when more than one proposal may be in flight."""
    config.pop("grid_shape", None)
    config.setdefault("constant_liar", (parallelism or 1) > 1)
    return TPESampler(seed=seed, **config)


def cmaes_sampler(*, seed: int | None = None, **config: Any) -> BaseSampler:
    """CMA-ES (Optuna CmaEsSampler, its defaults unless configured; integers are rounded)."""
    config.pop("grid_shape", None)
    config.setdefault("warn_independent_sampling", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return CmaEsSampler(seed=seed, **config)


def _no_extra(name: str, config: dict[str, Any]) -> None:
    if config:
        raise ValueError(f"the {name} tuner takes no options {sorted(config)}")
