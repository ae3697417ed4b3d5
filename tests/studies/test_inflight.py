"""Each tuner's limit on proposals in flight, and the replay that simulates it."""

from __future__ import annotations

import optuna
import pytest

from studies.tuners import grid_distributions, make_sampler
from studies.tuners.domain import Domain
from studies.tuners.inflight import InFlightLimit, cmaes_population, in_flight_limit, iteration_end
from studies.tuners.tabular import run_tabular
from tests.studies.helpers import separable, valley


def _limit(name: str, shape: tuple[int, int], parallelism: int | None = None) -> InFlightLimit:
    sampler = make_sampler(name, seed=0, grid_shape=shape, parallelism=parallelism)
    return in_flight_limit(
        sampler, Domain.from_distributions(grid_distributions(shape)), parallelism
    )


@pytest.mark.parametrize(
    ("name", "shape", "limit"),
    [
        ("gld", (21, 21), 5),  # radii 16, 8, 4, 2, 1
        ("cgld", (21, 21), 5),
        ("gld", (11, 11), 4),  # radii 8, 4, 2, 1
        ("tpe", (21, 21), 1),
        ("cmaes", (21, 21), 6),  # 4 + ⌊3 ln 2⌋
        ("random", (21, 21), None),
        ("grid", (21, 21), None),
    ],
)
def test_each_tuner_declares_its_limit(name: str, shape: tuple[int, int], limit: int) -> None:
    got = _limit(name, shape)
    assert got.limit == limit
    assert got.iteration_barrier == (name in ("gld", "cgld"))


def test_cmaes_population_is_hansens_default() -> None:
    assert [cmaes_population(d) for d in (1, 2, 3, 10)] == [4, 6, 7, 10]
    sampler = make_sampler("cmaes", seed=0, grid_shape=(5, 5), popsize=9)
    domain = Domain.from_distributions(grid_distributions((5, 5)))
    assert in_flight_limit(sampler, domain).limit == 9


def test_parallelism_overrides_the_limit_and_turns_on_the_constant_liar() -> None:
    assert _limit("tpe", (21, 21), 4).limit == 4
    assert _limit("gld", (21, 21), 2) == InFlightLimit(2, iteration_barrier=True)
    assert make_sampler("tpe", seed=0, parallelism=4)._constant_liar
    assert not make_sampler("tpe", seed=0)._constant_liar


def test_allows_stops_at_the_limit_and_at_a_gld_iteration_end() -> None:
    tpe, gld, free = InFlightLimit(1), InFlightLimit(5, iteration_barrier=True), InFlightLimit(None)
    assert tpe.allows(0, False) and not tpe.allows(1, False)
    assert gld.allows(4, False) and not gld.allows(5, False)
    assert not gld.allows(1, True) and gld.allows(0, True)  # a new iteration waits for all
    assert free.allows(10**6, True)


def test_iteration_end_reads_the_stored_gld_state() -> None:
    study = optuna.create_study(sampler=make_sampler("gld", seed=3, grid_shape=(21, 21)))
    ends = []
    for _ in range(12):
        trial = study.ask(grid_distributions((21, 21)))
        ends.append(iteration_end(study._storage.get_trial_system_attrs(trial._trial_id)))
        study.tell(trial, 1.0)
    # the first iteration hands its start point and 5 candidates, the next ones 5 each
    assert ends == [False] * 5 + [True] + [False] * 4 + [True] + [False]
    assert not iteration_end(None) and not iteration_end({})


@pytest.mark.parametrize("name", ["gld", "cgld"])
@pytest.mark.parametrize("surface", [separable, valley])
def test_gld_costs_the_same_one_at_a_time_or_an_iteration_at_a_time(name, surface) -> None:
    """Within an iteration GLD reads no result, so its in-flight limit changes no run."""
    values = surface().astype(float)
    for seed in range(5):
        together = run_tabular(name, values, seed=seed, target=values.min() + 0.5)
        alone = run_tabular(name, values, seed=seed, target=values.min() + 0.5, parallelism=1)
        assert together.trace == alone.trace and together.cost == alone.cost


def test_tpe_in_flight_sees_fewer_results() -> None:
    """Four TPE proposals in flight are asked on fewer results than one at a time: the runs
    differ (the limit is simulated, not ignored)."""
    values = separable().astype(float)
    one = [run_tabular("tpe", values, seed=s, target=0.5).trace for s in range(3)]
    four = [run_tabular("tpe", values, seed=s, target=0.5, parallelism=4).trace for s in range(3)]
    assert one != four
