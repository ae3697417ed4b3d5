"""What users submit: study and experiment specs (pydantic), shared by service and workers.

Known task, optimizer and tuner names, and each task's options, are constants here, so the
server can validate a spec without importing torch or the workers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from studies.deltas import DeltaKind
from studies.objectives import objective_of
from studies.plugin_names import (
    MAX_NAME,
    PLAIN_NAME,
    PluginKind,
    check_import_path,
    is_import_path,
    plugin_names,
)
from studies.space import SearchSpace
from studies.spec_errors import (
    SpecError,
    SpecIssue,
    did_you_mean,
    read_spec_data,
    spec_issues,
    unknown_name,
)

#: The task of a study trained by the user's own loop (`avatune.client`): no avatune worker
#: runs it, and its options are free (they record the loop's settings).
EXTERNAL_TASK = "external"
OPTIMIZERS: tuple[str, ...] = (
    "sgd",
    "adam",
    "adamw",
    "amsgrad",
    "radam",
    "avagrad",
    "avagradw",
    "delayed_adam",
    "adabelief",
)
#: Each optimizer's default ε (optim.registry's, repeated here: the server never imports torch).
DEFAULT_EPS: dict[str, float | None] = {
    "sgd": None,
    "adam": 1e-8,
    "adamw": 1e-8,
    "amsgrad": 1e-8,
    "radam": 1e-8,
    "avagrad": 0.1,
    "avagradw": 0.1,
    "delayed_adam": 1e-8,
    "adabelief": 1e-16,
}
TASKS: tuple[str, ...] = (
    "mnist1d-mlp",
    "mnist1d-cnn",
    "mnist1d-resnet",
    "charlm-lstm",
    "eq11",
    "cifar10-wrn",
    EXTERNAL_TASK,
)
#: The keyword options of each task's constructor that a spec's `task.config` may set, and
#: their types (workers.tasks builds the task with them; tests keep the two in sync).
TASK_OPTIONS: dict[str, dict[str, type]] = {
    "mnist1d-mlp": {},
    "mnist1d-cnn": {},
    "mnist1d-resnet": {"channels": int, "blocks": int},
    "charlm-lstm": {
        "embedding": int,
        "hidden": int,
        "seq_len": int,
        "eval_windows": int,
        "eval_batch": int,
    },
    "eq11": {},
    "cifar10-wrn": {"depth": int, "width": int},
}

#: Bounds of every integer task option (sizes and counts of a proxy model).
TASK_OPTION_RANGE = (1, 65_536)
TUNERS: tuple[str, ...] = ("grid", "random", "tpe", "cmaes", "gld", "cgld")
#: Tuners whose runs cost most (Optuna's model-based samplers): replayed and bootstrapped first.
SLOW_TUNERS: tuple[str, ...] = ("tpe", "cmaes")

#: Trainings one study may ask for.
MAX_BUDGET = 20_000
#: Default budget of a non-grid tuner.
DEFAULT_BUDGET = 50
#: Most proposals a study's spec may allow in flight.
MAX_PARALLELISM = 1024
#: ε of these optimizers lives on another scale: their grid of ε is multiplied by this (§5.2).
EPS_SHIFT: dict[str, float] = {"adabelief": 1e-8}


def _known(kind: str, known: tuple[str, ...]) -> AfterValidator:
    def check(name: str) -> str:
        if name not in known:
            raise ValueError(unknown_name(kind, name, known))
        return name

    return AfterValidator(check)


def _named(kind: PluginKind) -> AfterValidator:
    """The form of a built-in or plugin name, or an import path; whether it names something
    is `unknown_names`'s question (asked at submission, not of stored or leased specs)."""

    def check(name: str) -> str:
        if len(name) > MAX_NAME:
            raise ValueError(f"a {kind} name has at most {MAX_NAME} characters, got {len(name)}")
        if is_import_path(name):
            return check_import_path(name)
        if not PLAIN_NAME.match(name):
            raise ValueError(
                f"malformed {kind} name {name!r}: use letters, digits, '.', '_' and '-', or an "
                "import path package.module:Class"
            )
        return name

    return AfterValidator(check)


#: Names a study or experiment may give (built-in, plugin, or import path).
TaskName = Annotated[str, _named("task")]
OptimizerName = Annotated[str, _named("optimizer")]
#: Only the built-in ones (the atlas's protocol).
BuiltinTaskName = Annotated[str, _known("task", tuple(t for t in TASKS if t != EXTERNAL_TASK))]
BuiltinOptimizerName = Annotated[str, _known("optimizer", OPTIMIZERS)]
TunerName = Annotated[str, _known("tuner", TUNERS)]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000); remove them")
    return value


def text(max_length: int, min_length: int = 0) -> Any:
    """A string type of bounded length without NUL characters (databases refuse them)."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_no_nul),
    ]


Name = text(200, min_length=1)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]
#: A JSON scalar option value (strings bounded, floats finite).
ShortStr = text(200)
Scalar = StrictBool | StrictInt | FiniteFloat | ShortStr | None
OptionKey = text(64)
Options = Annotated[dict[OptionKey, Scalar], Field(max_length=32)]


def _by_name(value: Any) -> Any:
    """Accept a bare name as shorthand for ``{"name": value}``."""
    return {"name": value} if isinstance(value, str) else value


def task_options(task: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` checked against the task's `TASK_OPTIONS` (ints for float options become
    floats); ValueError saying what to change."""
    if task not in TASK_OPTIONS:  # a plugin's task (its worker checks them), or external
        return dict(config)
    known = TASK_OPTIONS[task]
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key not in known:
            if not known:
                raise ValueError(f"task {task} takes no options; remove {key!r}")
            hint = did_you_mean(key, known)
            raise ValueError(
                f"unknown option {key!r} of task {task}; {hint + ' ' if hint else ''}"
                f"its options: {', '.join(known)}"
            )
        out[key] = _option_value(task, key, value, known[key])
    return out


def _option_value(task: str, key: str, value: Any, kind: type) -> Any:
    what = f"option {key!r} of task {task}"
    if kind is float and type(value) in (int, float):
        return float(value)
    if type(value) is not kind:
        raise ValueError(f"{what} must be {_KIND_WORDS[kind]}, got {value!r}")
    low, high = TASK_OPTION_RANGE
    if kind is int and not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, got {value}")
    return value


_KIND_WORDS: dict[type, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "a boolean",
}


class TaskRef(BaseModel):
    """A proxy task and its options (`TASK_OPTIONS`: checked here, so the server refuses
    options no worker could build)."""

    model_config = ConfigDict(extra="forbid")

    name: TaskName
    config: Options = Field(default_factory=dict)

    _shorthand = model_validator(mode="before")(_by_name)

    @field_validator("config")
    @classmethod
    def _known_options(cls, config: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        return config if name is None else task_options(name, config)  # None: name failed


def _beta(value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"betas must lie in [0, 1), got {value}")
    return value


Beta = Annotated[float, AfterValidator(_beta)]


#: A constructor argument's name.
ArgName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class OptimizerRef(BaseModel):
    """An optimizer and its fixed settings (betas, weight decay, extra keyword options).

    `name` is a built-in name, a plugin's (entry point `avatune.optimizers`), or the import
    path of any `torch.optim.Optimizer` subclass, e.g. ``torch.optim:NAdam``; `eps_arg` names
    the constructor argument that is ε there (None: it has none, and only α is searched).
    """

    model_config = ConfigDict(extra="forbid")

    name: OptimizerName
    eps_arg: ArgName | None = Field(
        default="eps",
        description="The constructor argument that is ε (null: the optimizer has none, only α "
        "is searched); built-in optimizers know their own.",
    )
    betas: tuple[Beta, Beta] | None = None
    weight_decay: Annotated[FiniteFloat, Field(ge=0.0)] | None = None
    settings: Options = Field(default_factory=dict)

    _shorthand = model_validator(mode="before")(_by_name)

    @property
    def builtin(self) -> bool:
        """Whether `name` is one of avatune's own optimizers."""
        return self.name in OPTIMIZERS

    @property
    def uses_eps(self) -> bool:
        """Whether the optimizer has an ε to tune (sgd and `eps_arg: null` have none)."""
        return DEFAULT_EPS[self.name] is not None if self.builtin else self.eps_arg is not None

    @model_validator(mode="after")
    def _no_overlap(self) -> OptimizerRef:
        if self.builtin and self.eps_arg != "eps":
            raise ValueError(
                f"{self.name} is built in and knows its ε; remove eps_arg (it is for "
                "optimizers named by import path or plugin)"
            )
        taken = {"lr", "betas", "weight_decay"} | ({"eps"} if self.builtin else set())
        for key in sorted(taken | ({self.eps_arg} if self.eps_arg else set())):
            if key in self.settings:
                raise ValueError(
                    f"settings may not set {key!r}: α and ε are tuned, and betas and "
                    "weight_decay have their own fields"
                )
        if self.name == "sgd" and self.betas is not None:
            raise ValueError("sgd has no betas; remove them")
        return self

    def train_settings(self) -> dict[str, Any]:
        """Keyword settings for the optimizer (no lr or eps)."""
        out: dict[str, Any] = dict(self.settings)
        if self.betas is not None:
            out["betas"] = tuple(self.betas)
        if self.weight_decay is not None:
            out["weight_decay"] = self.weight_decay
        return out


def unknown_name_issue(kind: PluginKind, name: str) -> str | None:
    """Why a plain `name` names no task/optimizer here (built-in or installed plugin), with
    the fix; None when it does, or is an import path (a worker may import it)."""
    known = (TASKS if kind == "task" else OPTIMIZERS) + plugin_names(kind)
    if is_import_path(name) or name in known:
        return None
    return (
        f"{unknown_name(kind, name, known)}; or name a plugin's {kind} by import path "
        "package.module:Class (or install the plugin where the server runs)"
    )


class Fidelity(BaseModel):
    """How much training one trial gets: steps, batch size, and seeds averaged per trial."""

    model_config = ConfigDict(extra="forbid")

    steps: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description="Training steps; the task's default when omitted."
    )
    batch_size: Annotated[int, Field(ge=1, le=65_536)] | None = None
    seeds: Annotated[int, Field(ge=1, le=16)] = Field(
        default=1, description="Seeds trained per trial; the trial's value is their mean."
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = Field(default=0, description="First seed.")
    diagnostics_every: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None,
        description="Opt-in: record AvaGrad's mechanism diagnostics (γ, fraction of v = 0, "
        "each tensor's share of Σq⁻²) every this many steps, for avagrad, avagradw and "
        "delayed_adam (other optimizers record none); at most 100 records per seed reach "
        "the server (evenly spaced, the last among them). Off when omitted.",
    )

    @model_validator(mode="after")
    def _diagnostics_within_steps(self) -> Fidelity:
        every, steps = self.diagnostics_every, self.steps
        if every is not None and steps is not None and every > steps:
            raise ValueError(
                f"diagnostics_every ({every}) exceeds steps ({steps}): no step would record; "
                f"use at most {steps}"
            )
        return self


class TunerSpec(BaseModel):
    """A tuner, its seed (random when omitted) and its options."""

    model_config = ConfigDict(extra="forbid")

    name: TunerName = "grid"
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    config: Options = Field(default_factory=dict)
    parallelism: Annotated[int, Field(ge=1, le=MAX_PARALLELISM)] | None = Field(
        default=None,
        description="Most proposals in flight (unfinished) at once; the tuner's own limit "
        "when omitted: GLD/CGLD one iteration (K + 1), TPE 1, CMA-ES its population, "
        "random unlimited.",
    )

    _shorthand = model_validator(mode="before")(_by_name)


class StudySpec(BaseModel):
    """Tune (α, ε) of one optimizer on one task with one tuner, under a budget of trainings."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["study"] = "study"
    name: Name
    task: TaskRef
    optimizer: OptimizerRef
    space: SearchSpace = Field(default_factory=lambda: SearchSpace(grid="paper"))
    tuner: TunerSpec = Field(default_factory=TunerSpec)
    budget: Annotated[int, Field(ge=1, le=MAX_BUDGET)] | None = Field(
        default=None,
        description="Most distinct trainings; the whole grid for the grid tuner, "
        f"{DEFAULT_BUDGET} otherwise, when omitted.",
    )
    fidelity: Fidelity = Field(default_factory=Fidelity)

    @property
    def searches_eps(self) -> bool:
        """Whether ε is searched: not for optimizers that ignore it (sgd), which search α."""
        return self.optimizer.uses_eps

    @property
    def points(self) -> int | None:
        """Distinct points the tuner can propose (α values alone when ε is not searched);
        None on a continuous space."""
        shape = self.space.grid_shape
        if shape is None:
            return None
        return shape[0] * (shape[1] if self.searches_eps else 1)

    @model_validator(mode="after")
    def _fits(self) -> StudySpec:
        size = self.points
        if self.tuner.name == "grid" and size is None:
            raise ValueError(
                "the grid tuner needs a grid space: give `grid` or `alphas` + `epsilons`"
            )
        if self.tuner.name == "grid" and self.tuner.parallelism is not None:
            raise ValueError("the grid tuner queues every point at once: remove tuner.parallelism")
        if self.budget is None:
            default = min(DEFAULT_BUDGET, size or DEFAULT_BUDGET)
            self.budget = size if self.tuner.name == "grid" else default
        if size is not None and self.budget > size:
            what = "points of the grid" if self.searches_eps else "α values (ε is not searched)"
            raise ValueError(f"budget {self.budget} exceeds the {size} {what}; lower the budget")
        if self.budget > MAX_BUDGET:
            raise ValueError(f"budget too large: {self.budget} (at most {MAX_BUDGET})")
        return self


Delta = Annotated[float, Field(gt=0, le=100)]


def _distinct(deltas: list[float]) -> list[float]:
    if len(set(deltas)) != len(deltas):
        raise ValueError(f"each δ may appear once, got {deltas}; remove the repeats")
    return deltas


Deltas = Annotated[list[Delta], Field(min_length=1, max_length=8), AfterValidator(_distinct)]


class BootstrapSettings(BaseModel):
    """B resampled tables per grid, R tuner replays on each; fewer for TPE and CMA-ES.

    Optuna's TPE and CMA-ES cost 10–50× more per run than the others, so they get
    `slow_tables` × `slow_replays` runs (the first `slow_tables` of the same resamples):
    their intervals are coarser, never narrower than the data allow.
    """

    model_config = ConfigDict(extra="forbid")

    tables: int = Field(default=30, ge=2, le=2000, description="B: resampled tables per grid.")
    replays: int = Field(default=10, ge=1, le=1000, description="R: replays per table.")
    slow_tables: int = Field(default=8, ge=2, le=2000, description="B for TPE and CMA-ES.")
    slow_replays: int = Field(default=3, ge=1, le=1000, description="R for TPE and CMA-ES.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)

    def tables_of(self, tuner: str) -> int:
        """B for `tuner`."""
        return min(self.slow_tables, self.tables) if tuner in SLOW_TUNERS else self.tables

    def replays_of(self, tuner: str) -> int:
        """R for `tuner`."""
        return self.slow_replays if tuner in SLOW_TUNERS else self.replays


class ReplaySettings(BaseModel):
    """How an experiment's report replays the tuners on its complete grids."""

    model_config = ConfigDict(extra="forbid")

    tuners: Annotated[list[TunerName], Field(min_length=1, max_length=len(TUNERS))] = Field(
        default_factory=lambda: list(TUNERS)
    )
    seeds: Annotated[int, Field(ge=1, le=1000)] = 100
    deltas: Deltas | None = Field(
        default=None,
        description="Suboptimality targets δ (the first is the main one) in the task's δ unit: "
        "percentage points of error, or % of f* for bits per character; the task's defaults "
        "when omitted.",
    )
    bootstrap: BootstrapSettings = Field(
        default_factory=BootstrapSettings,
        description="The hierarchical bootstrap behind every interval of the report.",
    )

    def deltas_for(self, task: str) -> list[float]:
        """The δs of a replay on `task`: the explicit ones, else the task's defaults."""
        return list(self.deltas) if self.deltas is not None else list(objective_of(task).deltas)


class ExperimentSpec(BaseModel):
    """The paper's question on one task: a full grid per optimizer, then the tuners replayed."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["experiment"] = "experiment"
    name: Name
    task: TaskRef
    optimizers: Annotated[list[OptimizerRef], Field(min_length=1, max_length=16)]
    space: SearchSpace = Field(default_factory=lambda: SearchSpace(grid="paper"))
    fidelity: Fidelity = Field(default_factory=Fidelity)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    eps_shift: bool = Field(
        default=True, description="Scale the ε grid of AdaBelief by 1e-8 (its ε ≈ Adam's ε²)."
    )

    @model_validator(mode="after")
    def _grid_and_unique(self) -> ExperimentSpec:
        if not self.space.is_grid:
            raise ValueError(
                "an experiment needs a grid space: give `grid` or `alphas` + `epsilons`"
            )
        names = [o.name for o in self.optimizers]
        if len(set(names)) != len(names):
            raise ValueError("each optimizer may appear once in an experiment; remove duplicates")
        total = (self.space.size or 0) * len(self.optimizers)
        if total > MAX_BUDGET:
            raise ValueError(
                f"experiment too large: {total} trainings (at most {MAX_BUDGET}); "
                "use a coarser grid or fewer optimizers"
            )
        if self.replay.deltas is None:  # a copy: the settings object may be shared
            deltas = self.replay.deltas_for(self.task.name)
            self.replay = self.replay.model_copy(update={"deltas": deltas})
        return self

    @property
    def delta_kind(self) -> DeltaKind:
        """How the replay's δs read: the task's kind (absolute pp, or relative % of f*)."""
        return objective_of(self.task.name).delta_kind

    def study_specs(self) -> list[StudySpec]:
        """One grid study per optimizer (AdaBelief's ε grid shifted when `eps_shift`)."""
        alphas, epsilons = self.space.grid_axes()
        specs = []
        for optimizer in self.optimizers:
            scale = EPS_SHIFT.get(optimizer.name, 1.0) if self.eps_shift else 1.0
            space = (
                self.space
                if scale == 1.0
                else SearchSpace(alphas=alphas, epsilons=[_shift(e, scale) for e in epsilons])
            )
            specs.append(
                StudySpec(
                    name=f"{self.name}/{optimizer.name}",
                    task=self.task,
                    optimizer=optimizer,
                    space=space,
                    tuner=TunerSpec(name="grid", seed=0),
                    fidelity=self.fidelity,
                )
            )
        return specs


def _shift(eps: float, scale: float) -> float:
    return float(f"{eps * scale:.12g}")


Spec = StudySpec | ExperimentSpec


def spec_model(data: Any) -> type[StudySpec] | type[ExperimentSpec]:
    """The model a parsed mapping is a spec of (`kind`, else guessed from `optimizers`)."""
    if not isinstance(data, dict):
        raise ValueError("a spec must be a mapping (YAML object) with at least `name` and `task`")
    kind = data.get("kind") or ("experiment" if "optimizers" in data else "study")
    if kind == "experiment":
        return ExperimentSpec
    if kind == "study":
        return StudySpec
    hint = did_you_mean(str(kind), ("study", "experiment"))
    raise ValueError(f"unknown spec kind {kind!r}; {hint or 'use study or experiment'}")


def parse_spec(data: Any) -> Spec:
    """A study or experiment spec from a parsed mapping; pydantic's ValidationError if invalid."""
    return spec_model(data).model_validate(data)


def unknown_names(spec: Spec) -> list[SpecIssue]:
    """Where a submitted spec's plain task or optimizer names name nothing installed here
    (built-in or plugin); import paths are left to the workers that can import them."""
    named: list[tuple[str, PluginKind, str]] = [("task.name", "task", spec.task.name)]
    if isinstance(spec, StudySpec):
        named.append(("optimizer.name", "optimizer", spec.optimizer.name))
    else:
        named += [
            (f"optimizers[{i}].name", "optimizer", o.name) for i, o in enumerate(spec.optimizers)
        ]
    issues = []
    for location, kind, name in named:
        issue = unknown_name_issue(kind, name)
        if issue is not None:
            issues.append(SpecIssue(location, issue))
    return issues


def spec_from_data(data: Any, source: str = "", *, names: bool = True) -> Spec:
    """A spec to submit, from a parsed mapping; SpecError (a ValueError) with readable lines
    if invalid or, with `names`, naming an unknown task or optimizer (`unknown_names`; a
    client of a remote server leaves that to the server, whose plugins may differ)."""
    try:
        model = spec_model(data)
        spec = model.model_validate(data)
    except ValidationError as error:
        raise SpecError(source, spec_issues(error, model)) from None
    except ValueError as error:
        raise SpecError(source, [SpecIssue("", str(error))]) from None
    issues = unknown_names(spec) if names else []
    if issues:
        raise SpecError(source, issues)
    return spec


def spec_from_file(path: str | Path, *, names: bool = True) -> Spec:
    """A study or experiment spec from a YAML (or JSON) file; SpecError saying what to fix
    (no such file, YAML syntax with line and column, unknown fields with suggestions, and
    with `names` unknown task or optimizer names: `spec_from_data`)."""
    return spec_from_data(read_spec_data(path), str(path), names=names)


def load_spec(path: str | Path, *, names: bool = True) -> Spec:
    """A study or experiment spec from a YAML (or JSON) file (`spec_from_file`)."""
    return spec_from_file(path, names=names)


SPECS_DIR = Path(__file__).with_name("specs")


def builtin_spec(name: str) -> Spec:
    """A spec shipped in `studies/specs/` by file stem (e.g. ``quick-mnist1d``)."""
    path = SPECS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SPECS_DIR.glob("*.yaml")))
        raise ValueError(f"no built-in spec {name!r}; choose one of: {known}")
    return load_spec(path)
