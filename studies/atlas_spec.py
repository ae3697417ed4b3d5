"""The separability atlas's protocol: tasks × optimizers under one fixed spec (`kind: atlas`).

An atlas spec expands into ordinary experiments, two per task: the headline (Adam and
AvaGrad on the paper's 21×21 grid) and the others (the remaining optimizers on the coarse
11×11 grid), plus, on the tasks the diagnostics name, AvaGrad at each extra weight decay
with the mechanism diagnostics on. Results carry `spec_hash`, a digest of the parsed spec,
so results produced under another protocol are recognisable.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from studies.space import SearchSpace
from studies.spec_errors import SpecError, SpecIssue, read_spec_data, spec_issues
from studies.specs import (
    OPTIMIZERS,
    BuiltinOptimizerName,
    BuiltinTaskName,
    ExperimentSpec,
    Fidelity,
    FiniteFloat,
    Name,
    OptimizerRef,
    Options,
    ReplaySettings,
    TaskRef,
)

#: Optimizers whose `weight_decay` is decoupled (p ← p·(1 − lr·λ)); every other one adds λ·p
#: to the gradient (L2), as the paper ran them.
DECOUPLED: tuple[str, ...] = ("adamw", "avagradw")
#: The two experiments every task has; other roles are the diagnostics' extra-λ runs.
MAIN_ROLES: tuple[str, ...] = ("headline", "others")
#: Optimizers the mechanism diagnostics describe (γ, v = 0, shares of Σq⁻²).
AVAGRAD_FAMILY: tuple[str, ...] = ("avagrad", "avagradw", "delayed_adam")


class AtlasTask(BaseModel):
    """One task of the atlas with its model size (`config`) and training length."""

    model_config = ConfigDict(extra="forbid")

    name: BuiltinTaskName
    config: Options = Field(default_factory=dict)
    steps: Annotated[int, Field(ge=1, le=1_000_000)]
    batch_size: Annotated[int, Field(ge=1, le=65_536)]


class AtlasGroup(BaseModel):
    """Optimizers measured on one grid (a named preset or explicit values)."""

    model_config = ConfigDict(extra="forbid")

    optimizers: Annotated[
        list[BuiltinOptimizerName], Field(min_length=1, max_length=len(OPTIMIZERS))
    ]
    space: SearchSpace

    @model_validator(mode="after")
    def _grid(self) -> AtlasGroup:
        if not self.space.is_grid:
            raise ValueError("an atlas group needs a grid: `grid` or `alphas` + `epsilons`")
        return self

    @property
    def label(self) -> str:
        """e.g. "21×21"."""
        alphas, epsilons = self.space.grid_axes()
        return f"{len(alphas)}×{len(epsilons)}"


class AtlasDiagnostics(BaseModel):
    """Where the AvaGrad family records its mechanism diagnostics, and the extra runs."""

    model_config = ConfigDict(extra="forbid")

    every: Annotated[int, Field(ge=1)] = Field(description="Steps between records.")
    tasks: list[BuiltinTaskName] = Field(default_factory=list)
    extra_weight_decays: list[Annotated[FiniteFloat, Field(ge=0.0)]] = Field(
        default_factory=list,
        description="AvaGrad also runs at these λ on the diagnostics tasks (the others' grid).",
    )


class AtlasSpec(BaseModel):
    """The whole atlas protocol: fixed before any result is looked at."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["atlas"] = "atlas"
    name: Name
    weight_decay: Annotated[FiniteFloat, Field(ge=0.0)]
    seeds: Annotated[int, Field(ge=1, le=16)]
    tasks: Annotated[list[AtlasTask], Field(min_length=1, max_length=8)]
    headline: AtlasGroup
    others: AtlasGroup
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    diagnostics: AtlasDiagnostics | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AtlasSpec:
        every = self.headline.optimizers + self.others.optimizers
        if len(set(every)) != len(every):
            raise ValueError("an optimizer may appear in the headline or the others, not both")
        head_alphas, head_epsilons = self.headline.space.grid_axes()
        alphas, epsilons = self.others.space.grid_axes()
        if not (set(alphas) <= set(head_alphas) and set(epsilons) <= set(head_epsilons)):
            raise ValueError(
                "the others' grid must be a subgrid of the headline's (the headline "
                "optimizers are ranked on it too)"
            )
        if len({t.name for t in self.tasks}) != len(self.tasks):
            raise ValueError("each task may appear once; remove duplicates")
        if self.diagnostics is not None:
            missing = set(self.diagnostics.tasks) - {t.name for t in self.tasks}
            if missing:
                raise ValueError(f"diagnostics name tasks the atlas lacks: {sorted(missing)}")
        return self

    @property
    def optimizers(self) -> list[str]:
        """Every optimizer, headline first."""
        return self.headline.optimizers + self.others.optimizers

    def task(self, name: str) -> AtlasTask:
        """The task entry called `name`."""
        return next(t for t in self.tasks if t.name == name)

    def experiments(self) -> list[AtlasExperiment]:
        """Every experiment the atlas submits, in running order (task by task)."""
        out = []
        for task in self.tasks:
            diagnosed = self.diagnostics is not None and task.name in self.diagnostics.tasks
            for role, group in zip(MAIN_ROLES, (self.headline, self.others), strict=True):
                optimizers = [
                    OptimizerRef(name=o, weight_decay=self.weight_decay) for o in group.optimizers
                ]
                out.append(self._experiment(task, role, group.space, optimizers, diagnosed))
            if diagnosed:
                assert self.diagnostics is not None
                for decay in self.diagnostics.extra_weight_decays:
                    optimizers = [OptimizerRef(name="avagrad", weight_decay=decay)]
                    role = f"avagrad-wd{decay:g}"
                    out.append(self._experiment(task, role, self.others.space, optimizers, True))
        return out

    def _experiment(
        self,
        task: AtlasTask,
        role: str,
        space: SearchSpace,
        optimizers: list[OptimizerRef],
        diagnosed: bool,
    ) -> AtlasExperiment:
        every = self.diagnostics.every if diagnosed and self.diagnostics else None
        fidelity = Fidelity(steps=task.steps, batch_size=task.batch_size, seeds=self.seeds)
        if every is not None:
            fidelity = fidelity.model_copy(update={"diagnostics_every": min(every, task.steps)})
        spec = ExperimentSpec(
            name=f"{self.name}/{task.name}/{role}",
            task=TaskRef(name=task.name, config=task.config),
            optimizers=optimizers,
            space=space,
            fidelity=fidelity,
            replay=self.replay,
        )
        return AtlasExperiment(task=task.name, role=role, spec=spec)


class AtlasExperiment(BaseModel):
    """One experiment of the atlas: its task, its role and its spec."""

    task: str
    role: str
    spec: ExperimentSpec


def spec_hash(spec: AtlasSpec) -> str:
    """SHA-256 of the parsed spec's canonical JSON: comments and layout do not count."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


ATLAS_SPEC = Path(__file__).with_name("specs") / "atlas.yaml"


def load_atlas(path: str | Path = ATLAS_SPEC) -> AtlasSpec:
    """The atlas spec in a YAML file; SpecError saying what to fix."""
    data = read_spec_data(path)
    try:
        return AtlasSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(str(path), spec_issues(error, AtlasSpec)) from None
    except ValueError as error:
        raise SpecError(str(path), [SpecIssue("", str(error))]) from None
