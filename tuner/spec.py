"""The sweep spec: what a user submits, parsed and validated once at the edge.

A spec is YAML (``examples/digits.yaml``) or the same mapping as a JSON body.
Unknown keys are errors; every message names the field, the bad value and the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from tuner.asha import fitted_asha
from tuner.errors import SpecError
from tuner.samplers import SamplerName
from tuner.search_space import AUTO, Dimension, SearchSpace, auto_search_space, load_search_space

__all__ = ["Asha", "Reevaluate", "Resources", "SweepSpec", "load_spec", "parse_spec"]

#: ``lr_range_test: auto`` runs the test for budgets under this many trials (at 32 the search covers
#: the whole lr range itself). It is not the default: bench/tuning_quality.py on 10 search seeds
#: (docs/tuning-quality.md, 2026-12-05), with and without it, gave ties in all four cells (digits_mlp
#: and char_lm at 8 and 16 trials) twice: with eps searched (worse by median in three cells) and
#: with it left at 1e-8 (better on 25 of 40 seed pairs), so it does not show that it pays.
LR_RANGE_TEST_BELOW = 32
#: Sweep names become MLflow experiment names, study names and folder names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Resources(BaseModel):
    """Resources Ray reserves for each trial (finite numbers: a spec is stored as JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    cpu: float = Field(1.0, gt=0, description="CPU cores per trial.")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial (fractions share one GPU).")

    @property
    def device(self) -> str:
        """Where a trial trains: ``cuda`` when it reserves a GPU (or part of one), else ``cpu``."""
        return "cuda" if self.gpu > 0 else "cpu"

    @property
    def threads(self) -> int:
        """Torch intra-op threads of a trial: its whole reserved CPUs, at least one."""
        return max(1, int(self.cpu))


class Asha(BaseModel):
    """ASHA's settings (Li et al., MLSys 2020), the same for Ray Tune's ``ASHAScheduler`` and the packed driver
    (finite numbers: a spec is stored as JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    grace_period: int = Field(1, ge=1, description="Epochs every trial trains before its first rung.")
    reduction_factor: float = Field(4.0, gt=1, description="Keep the best 1 / reduction_factor of trials at each rung.")


class Reevaluate(BaseModel):
    """Re-train the sweep's best configs with new seeds, and pick the best by the mean."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_k: int = Field(3, ge=1, le=100, description="How many of the best completed trials to re-train.")
    seeds: int = Field(3, ge=1, le=100, description="New seeds per config (seed + 1, seed + 2, ...), max_epochs each.")


class SweepSpec(BaseModel):
    """A tuning sweep: which workload, which search space, how many trials and epochs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="Sweep name: letters, digits, '_', '.', '-'; ≤ 64 chars.")
    workload: str = Field(
        description="A registered workload name (entry-point group adamtune.workloads); on the command line also "
        "package.module:attr or path/to/file.py:attr (relative to the spec's folder): a Workload class or a "
        "function train(trial); or path/to/train.py: a script run as it is, once per trial (script mode)."
    )
    workload_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments of a Workload class, or trial.workload_args of a function; checked against "
        "what the workload declares (its Args model or constructor) before Ray starts.",
    )
    script_args: list[str] = Field(
        default_factory=list,
        description="A script's command line (workload: train.py): sys.argv[1:] while it runs, as "
        "`python train.py ARGS` would have it.",
    )
    excludes: list[str] = Field(
        default_factory=list,
        description="Extra paths (gitignore patterns, relative to the workload file's folder) not to upload to the "
        "Ray workers with a file workload's folder, e.g. data/ or checkpoints/.",
    )
    search_space: SearchSpace = Field(
        description="Bundled name, YAML path, inline mapping, or 'auto': the adam space cut to what n_trials can "
        "tune (under 10 trials lr only; from 10 lr, beta1 and beta2, eps at torch's 1e-8)."
    )
    n_trials: int = Field(16, ge=1, le=10_000, description="Trials to run in total.")
    max_epochs: int = Field(8, ge=1, le=10_000, description="Epochs per trial (ASHA's max_t).")
    metric: str = Field("val_loss", description="Metric the workload reports each epoch.")
    mode: Literal["min", "max"] = "min"
    sampler: SamplerName = Field(
        "auto",
        description="What proposes configs: auto (a Sobol design of max(3, n_trials // 4) configs, then "
        "multivariate TPE), or Optuna's tpe, gp, qmc, random as they are.",
    )
    scheduler: Literal["asha", "none"] = Field("asha", description="Early stopping: ASHA, or none.")
    asha: Asha | None = Field(
        None,
        description="ASHA's grace_period and reduction_factor (scheduler: asha). Unset: fitted to the budget "
        "(grace a quarter of max_epochs; the largest factor of 4, 3, 2 that leaves at least 3 trials at max_epochs).",
    )
    resources_per_trial: Resources = Resources()
    seed: int = Field(0, ge=0, description="Seeds the sampler, model init and batch order.")
    max_failures: int = Field(1, ge=0, le=10, description="Retries of a trial whose worker process dies.")
    execution: Literal["standard", "packed", "auto"] = Field(
        "standard", description="standard: one Ray trial per config; packed: K configs trained as one stacked model."
    )
    pack_size: int = Field(8, ge=1, le=256, description="Trials per pack (execution: packed).")
    baseline: bool = Field(
        True,
        description="Trial 0 trains with torch's default Adam (lr 1e-3, betas (0.9, 0.999), eps 1e-8, "
        "weight_decay 0, constant lr), inside the search space or not, for every epoch; false: no baseline.",
    )

    objective: Literal["last", "best"] = Field(
        "last",
        description="What ranks a trial: its last epoch's metric, or its best epoch's (as Ray Tune's scope='all' "
        "and Keras's restore_best_weights); the export and card say which epoch.",
    )
    fail_fast: int = Field(
        3,
        ge=0,
        le=1000,
        description="Stop the sweep once this many of a run's trials failed with the same reason while none of them "
        "completed or was early-stopped (a bug in the workload, not a bad config); 0: never.",
    )
    lr_range_test: bool | Literal["auto"] = Field(
        False,
        description="Before the trials, one short run (at most one epoch) raises lr exponentially from a tenth of "
        "the space's lr low to ten times its high (Smith 2017, arXiv 1506.01186); lr is then searched within a "
        "factor of 10 of the lr it suggests, inside the space's own range. true needs lr searched log_uniform and a Workload class; auto runs it where "
        f"those hold and n_trials < {LR_RANGE_TEST_BELOW}; false (the default): never, as the benchmark showed no gain "
        "(docs/tuning-quality.md).",
    )
    reevaluate: Reevaluate | None = Field(
        None,
        description="After the trials: re-train the top_k configs with `seeds` new seeds each for max_epochs, and "
        "pick the best by the mean (the Tuning Playbook's advice). Unset: no re-evaluation.",
    )

    @model_validator(mode="after")
    def _check_grace_period(self) -> SweepSpec:
        if self.asha is not None and self.asha.grace_period > self.max_epochs:
            raise ValueError(
                f"asha.grace_period <= max_epochs must hold, but got grace_period={self.asha.grace_period}, "
                f"max_epochs={self.max_epochs}"
            )
        return self

    @model_validator(mode="after")
    def _check_script_args(self) -> SweepSpec:
        from tuner.workload import parse_ref

        if self.script_args and parse_ref(self.workload).kind != "script":
            raise ValueError(
                f"script_args: only a script takes a command line (workload: path/to/train.py), but the workload is "
                f"{self.workload!r}; pass a function's or a Workload's arguments as workload_args"
            )
        return self

    @model_validator(mode="after")
    def _check_packed_algorithm(self) -> SweepSpec:
        algorithms = self.search_space.algorithms
        if self.execution == "packed" and len(algorithms) > 1:
            raise ValueError(
                f"execution: packed trains one algorithm per pack, but the search space searches algorithm over "
                f"{list(algorithms)}; fix params.algorithm to one name, or use execution: standard or auto "
                "(auto runs such a space standard)"
            )
        return self

    @model_validator(mode="after")
    def _check_lr_range_test(self) -> SweepSpec:
        if self.lr_range_test is True and not self._lr_searched_log:
            raise ValueError(
                "lr_range_test needs lr searched log_uniform in the search space (it centres that range), "
                f"but lr is {self.search_space.params.get('lr')!r}; search lr, or set lr_range_test: false"
            )
        return self

    @property
    def _lr_searched_log(self) -> bool:
        lr = self.search_space.params.get("lr")
        return isinstance(lr, Dimension) and lr.log

    def lr_range_wanted(self, *, workload_class: bool) -> bool:
        """Whether a new sweep of this spec starts with the lr range test: ``lr_range_test: true``;
        or ``auto`` with ``n_trials`` under :data:`LR_RANGE_TEST_BELOW`, ``lr`` searched log-uniformly
        and a Workload class (``workload_class``; a function has no per-step loss to read)."""
        if self.lr_range_test != "auto":
            return self.lr_range_test
        return self.n_trials < LR_RANGE_TEST_BELOW and self._lr_searched_log and workload_class

    @property
    def asha_settings(self) -> Asha:
        """ASHA's settings: the spec's ``asha``, or :func:`tuner.asha.fitted_asha` for its budget."""
        if self.asha is not None:
            return self.asha
        grace_period, reduction_factor = fitted_asha(self.n_trials, self.max_epochs)
        return Asha(grace_period=grace_period, reduction_factor=reduction_factor)

    @model_validator(mode="before")
    @classmethod
    def _resolve_auto_space(cls, data: Any) -> Any:
        """``search_space: auto`` becomes the cut for this n_trials. A space it produced stays as it
        is when validated again (a stored sweep keeps its space; :meth:`with_overrides` re-cuts it
        for a new ``n_trials``)."""
        if not isinstance(data, Mapping) or data.get("search_space") != AUTO:
            return data
        n_trials = data.get("n_trials", cls.model_fields["n_trials"].default)
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            return data  # the n_trials rule reports it
        return {**data, "search_space": auto_search_space(n_trials)}

    @field_validator("workload")
    @classmethod
    def _resolve_workload(cls, value: str, info: ValidationInfo) -> str:
        from tuner.workload import normalize

        context = info.context or {}
        return normalize(value, base_dir=context.get("base_dir"), allow_code=context.get("allow_paths", True))

    @field_validator("search_space", mode="before")
    @classmethod
    def _resolve_space(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            context = info.context or {}
            return load_search_space(
                value, base_dir=context.get("base_dir"), allow_paths=context.get("allow_paths", True)
            )
        return value

    def with_overrides(self, **changes: Any) -> SweepSpec:
        """A copy with ``changes`` applied (``None`` values ignored), validated again; an ``auto``
        search space is cut anew for a changed ``n_trials``.

        Raises:
            SpecError: a changed value breaks a rule.
        """
        data = self.model_dump()
        changes = {k: v for k, v in changes.items() if v is not None}
        if self.search_space.name == AUTO and "n_trials" in changes:
            data["search_space"] = AUTO
        data.update(changes)
        return parse_spec(data)


def parse_spec(data: Mapping[str, Any], *, base_dir: Path | None = None, allow_paths: bool = True) -> SweepSpec:
    """Validate a spec mapping (parsed YAML or a JSON body).

    Args:
        data: the spec's keys.
        base_dir: folder that relative ``search_space`` and ``workload`` file paths
            resolve against.
        allow_paths: whether ``search_space`` may name a file and ``workload`` may name
            code (``module:attr``, ``file.py:attr``); false for specs that arrive over
            HTTP (bundled search spaces, inline mappings and registered workloads only).

    Raises:
        SpecError: one line per problem, each ``field: rule, got value``.
    """
    if not isinstance(data, Mapping):
        raise SpecError(f"a sweep spec must be a mapping of keys to values, got {type(data).__name__}")
    try:
        return SweepSpec.model_validate(data, context={"base_dir": base_dir, "allow_paths": allow_paths})
    except ValidationError as e:
        raise SpecError(_describe(e)) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a YAML sweep spec.

    Raises:
        SpecError: the file is missing, is not YAML, or breaks a rule.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(f"cannot read spec {str(path)!r}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(f"spec {str(path)!r} is not valid YAML: {e}".replace("\n", " ")) from None
    return parse_spec(data or {}, base_dir=path.parent)


def _describe(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("fixed", "searched")) or "spec"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key (not part of the spec; check its spelling)")
        elif e["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        elif e["type"] == "value_error":
            lines.append(f"{loc}: {msg}")
        else:
            lines.append(f"{loc}: {msg}, got {_shorten(repr(e['input']))}")
    return "invalid sweep spec: " + "; ".join(lines)


def _shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (an error line stays one readable line)."""
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"
