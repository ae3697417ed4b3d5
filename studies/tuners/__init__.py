"""Tuners as Optuna samplers: grid, random, TPE, CMA-ES (Optuna's) and GLD, CGLD (ours).

Search-space convention (service, workers and replay alike): on a grid the params are
``i_alpha`` / ``j_eps`` (IntDistribution over indices); on a continuous space
``log10_alpha`` / ``log10_eps`` (FloatDistribution in log10 units).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optuna.samplers import BaseSampler

from studies.tuners.domain import (
    GRID_PARAMS,
    LOG_PARAMS,
    Domain,
    grid_distributions,
    log_distributions,
)
from studies.tuners.factories import cmaes_sampler, grid_sampler, random_sampler, tpe_sampler
from studies.tuners.gld import STATE_ATTR, CoordinateGLDSampler, GLDSampler

TUNERS: tuple[str, ...] = ("grid", "random", "tpe", "cmaes", "gld", "cgld")


def _gld(cls: type[GLDSampler]) -> Callable[..., BaseSampler]:
    def make(
        *, seed: int | None = None, grid_shape: tuple[int, int] | None = None, **config: Any
    ) -> BaseSampler:
        if grid_shape is not None and "search_space" not in config:
            config["search_space"] = grid_distributions(grid_shape)
        return cls(seed=seed, **config)

    return make


_FACTORIES: dict[str, Callable[..., BaseSampler]] = {
    "grid": grid_sampler,
    "random": random_sampler,
    "tpe": tpe_sampler,
    "cmaes": cmaes_sampler,
    "gld": _gld(GLDSampler),
    "cgld": _gld(CoordinateGLDSampler),
}


def make_sampler(
    name: str,
    *,
    seed: int | None = None,
    grid_shape: tuple[int, int] | None = None,
    parallelism: int | None = None,
    **config: Any,
) -> BaseSampler:
    """A fresh sampler for tuner `name`, seeded; `grid_shape` puts it on the index grid;
    `parallelism` (proposals in flight) turns on TPE's constant liar when above 1."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown tuner {name!r}; known tuners: {', '.join(TUNERS)}")
    if name == "tpe":
        config["parallelism"] = parallelism
    return factory(seed=seed, grid_shape=grid_shape, **config)


__all__ = [
    "GRID_PARAMS",
    "LOG_PARAMS",
    "STATE_ATTR",
    "TUNERS",
    "CoordinateGLDSampler",
    "Domain",
    "GLDSampler",
    "grid_distributions",
    "log_distributions",
    "make_sampler",
]
