"""Declarative search spaces over Adam's hyperparameters, the lr schedule and the Adam family.

A search space maps each hyperparameter (``lr``, ``beta1``, ``beta2``, ``eps``,
``weight_decay``, ``warmup_fraction``) either to a fixed number or to a
:class:`Dimension` (a distribution with bounds), ``schedule`` to a fixed name
(``constant``, ``cosine``, ``linear``) or to a :class:`Choice` among names, and
``algorithm`` likewise to ``adam`` (the default), ``nadam`` or ``adamax``
(``torch.optim.NAdam`` with torch's ``momentum_decay``, ``torch.optim.Adamax``), e.g.
``algorithm: {choices: [adam, nadam]}``.
``beta1``/``beta2`` are best searched through ``transform: one_minus``: the sampler
draws ``1 - beta`` on a log scale, so ``beta2 = 0.999`` and ``0.9999`` are a factor
10 apart, as their averaging horizons (1 / (1 - beta2) steps) are. Unset
hyperparameters take the defaults of :class:`workers.config.AdamConfig` (``torch.optim.Adam``'s
and a constant lr without warm-up); the schedule's formula is in :mod:`workers.schedule`.

``auto`` (:func:`auto_search_space`) is the bundled ``adam`` space cut to what a budget of
``n_trials`` can tune: ``lr`` alone under 10 trials, all of it from 10.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from workers.config import ALGORITHMS, RULES, SCHEDULES, AdamConfig

__all__ = [
    "AUTO",
    "Choice",
    "Dimension",
    "SearchSpace",
    "auto_search_space",
    "bundled_search_spaces",
    "load_search_space",
]

HyperparameterName = Literal["lr", "beta1", "beta2", "eps", "weight_decay", "warmup_fraction", "schedule", "algorithm"]
#: hyperparameters whose values are names (a fixed name or a Choice), with the names they take
_NAMED: dict[str, tuple[str, ...]] = {"schedule": SCHEDULES, "algorithm": ALGORITHMS}


class Dimension(BaseModel):
    """One searched hyperparameter.

    ``distribution`` is ``uniform`` or ``log_uniform`` over ``[low, high]``;
    with ``transform: one_minus`` the sampled value ``x`` is used as ``1 - x``
    (for betas), and the study records it as ``one_minus_<name>``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    distribution: Literal["uniform", "log_uniform"]
    low: float
    high: float
    transform: Literal["identity", "one_minus"] = "identity"

    @model_validator(mode="after")
    def _check_bounds(self) -> Dimension:
        if not self.low < self.high:
            raise ValueError(f"low < high must hold, but got low={self.low}, high={self.high}")
        if self.distribution == "log_uniform" and self.low <= 0:
            raise ValueError(f"log_uniform needs low > 0, but got low={self.low}; use uniform or a positive low")
        return self

    @property
    def log(self) -> bool:
        """Whether the sampler draws on a log scale."""
        return self.distribution == "log_uniform"

    def apply(self, x: float) -> float:
        """Map a sampled value to the hyperparameter's value (``1 - x`` for ``one_minus``)."""
        return 1.0 - x if self.transform == "one_minus" else x


class Choice(BaseModel):
    """One categorical hyperparameter: the sampler picks one of ``choices``.

    For ``schedule`` and ``algorithm`` only, e.g. ``schedule: {choices: [constant, cosine]}``; the
    study records the picked name under the hyperparameter's own name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    choices: tuple[str, ...] = Field(min_length=1, description="The names to pick from, each once.")

    @model_validator(mode="after")
    def _check_unique(self) -> Choice:
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"each choice must appear once, but got choices={list(self.choices)}")
        return self


def _value_kind(v: Any) -> str:
    if isinstance(v, str):
        return "name"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "fixed"
    return "choice" if isinstance(v, Choice) or (isinstance(v, Mapping) and "choices" in v) else "searched"


Entry = Annotated[
    Annotated[float, Tag("fixed")]
    | Annotated[str, Tag("name")]
    | Annotated[Dimension, Tag("searched")]
    | Annotated[Choice, Tag("choice")],
    Discriminator(_value_kind),
]


def _yaml_hint(entry: Any) -> str:
    """A hint for a number YAML read as text (PyYAML reads ``1e-3`` as a string; ``1.0e-3`` is a float)."""
    try:
        float(entry)
    except (TypeError, ValueError):
        return ""
    return f"; YAML reads {entry} as text: write it with a dot, e.g. 1.0e-3"


def _study_name(key: str, entry: Dimension | Choice) -> str:
    """The name the study records a searched entry under (``one_minus_beta2`` for a transformed beta)."""
    return f"one_minus_{key}" if isinstance(entry, Dimension) and entry.transform == "one_minus" else key


class SearchSpace(BaseModel):
    """A validated search space (``search_spaces/*.yaml`` or an inline mapping in a spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("inline", description="Where the space came from (file stem or 'inline').")
    description: str = ""
    params: dict[HyperparameterName, Entry] = Field(min_length=1)
    decoupled_weight_decay: bool = Field(False, description="AdamW semantics for weight_decay.")
    amsgrad: bool = False

    @model_validator(mode="after")
    def _check_values(self) -> SearchSpace:
        for key, entry in self.params.items():
            ok, rule = RULES[key]  # the same rules a trial config meets (workers.config)
            if key in _NAMED and not isinstance(entry, (str, Choice)):
                raise ValueError(
                    f"params.{key}: got {entry!r}, but it takes a name ({', '.join(_NAMED[key])}) or {{choices: [...]}}"
                )
            if key not in _NAMED and isinstance(entry, (str, Choice)):
                raise ValueError(
                    f"params.{key}: got {entry!r}, but {key} takes a number or a {{distribution, low, high}} mapping "
                    "(names and choices are for schedule and algorithm only)" + _yaml_hint(entry)
                )
            if isinstance(entry, Choice):
                for choice in entry.choices:
                    if not ok(choice):
                        raise ValueError(f"params.{key}.choices: {key}={choice!r} breaks the rule: {rule}")
            elif isinstance(entry, Dimension):
                if entry.transform == "one_minus" and key not in ("beta1", "beta2"):
                    raise ValueError(f"params.{key}: transform one_minus applies to beta1/beta2 only")
                for bound in ("low", "high"):
                    value = entry.apply(getattr(entry, bound))
                    if not ok(value):
                        raise ValueError(f"params.{key}.{bound}: {key}={value:g} breaks the rule: {rule}")
            elif not ok(entry):
                shown = repr(entry) if isinstance(entry, str) else f"{entry:g}"
                raise ValueError(f"params.{key}: {key}={shown} breaks the rule: {rule}")
        algorithms = self.algorithms
        if self.amsgrad and algorithms != ("adam",):
            raise ValueError(f"amsgrad: true is an option of Adam only, but params.algorithm takes {list(algorithms)}")
        if self.decoupled_weight_decay and "adamax" in algorithms:
            raise ValueError(
                "decoupled_weight_decay: true, but params.algorithm takes adamax, which has no decoupled "
                "weight decay (torch.optim.Adamax)"
            )
        return self

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The algorithms this space's trials train with: ``("adam",)`` unless ``params.algorithm``
        names one or more."""
        entry = self.params.get("algorithm", "adam")
        return entry.choices if isinstance(entry, Choice) else (str(entry),)

    @property
    def base_algorithm(self) -> str:
        """The algorithm this space fixes, or ``adam`` where it searches ``algorithm``: the
        baseline's (:func:`tuner.baseline.baseline_config`) and the lr range test's."""
        algorithms = self.algorithms
        return algorithms[0] if len(algorithms) == 1 else "adam"

    def centred_lr(self, lr: float, *, factor: float = 10.0) -> SearchSpace:
        """This space with ``lr`` searched log-uniformly over ``[lr / factor, lr * factor]`` within its
        own bounds (the lr range test's centring, :mod:`workers.lr_range`): the space's range is the
        limit, the test narrows it. Where less than a factor ``factor`` of that is left (the test
        pointed outside the space), the space is kept as it is. Other entries unchanged.

        Raises:
            ValueError: ``lr`` is not searched log-uniformly here, ``lr <= 0`` or ``factor <= 1``.
        """
        entry = self.params.get("lr")
        if not (isinstance(entry, Dimension) and entry.log):
            raise ValueError(f"lr must be searched log_uniform to centre its range, but the space has lr: {entry!r}")
        if not (lr > 0 and factor > 1):
            raise ValueError(f"lr > 0 and factor > 1 must hold, but got {lr=}, {factor=}")
        low, high = max(entry.low, lr / factor), min(entry.high, lr * factor)
        if high < low * factor:
            return self
        centred = entry.model_copy(update={"low": low, "high": high})  # inside bounds that met the rules
        return self.model_copy(update={"params": {**self.params, "lr": centred}})

    def searched(self) -> dict[str, Dimension | Choice]:
        """Searched entries keyed by the name the study records (``one_minus_beta2``, ``schedule``)."""
        return {_study_name(key, e): e for key, e in self.params.items() if isinstance(e, (Dimension, Choice))}

    def to_adam_config(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """Turn the study's sampled values into a trial config.

        Args:
            sampled: values keyed as in :meth:`searched` (floats; a name for a :class:`Choice`).

        Returns:
            ``{"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad",
            "decoupled_weight_decay", "warmup_fraction", "schedule"}``: plain
            floats/bools and the schedule's name, the defaults of
            :class:`workers.config.AdamConfig` filled in (an unsearched ``lr`` at the trial's
            algorithm's torch default: 2e-3 for nadam and adamax, :meth:`AdamConfig.torch_defaults`),
            plus ``algorithm`` (and ``momentum_decay`` at torch's default for ``nadam``) where it
            is not ``adam`` (not validated again: the space's values, bounds and choices meet its rules).

        Raises:
            KeyError: a searched entry is missing from ``sampled``.
        """
        entry = self.params.get("algorithm")
        algorithm = str(sampled["algorithm"]) if isinstance(entry, Choice) else self.base_algorithm
        config = AdamConfig.torch_defaults(
            algorithm, amsgrad=self.amsgrad, decoupled_weight_decay=self.decoupled_weight_decay
        ).to_config()
        for key, entry in self.params.items():
            if isinstance(entry, Dimension):
                config[key] = entry.apply(float(sampled[_study_name(key, entry)]))
            elif isinstance(entry, Choice):
                config[key] = str(sampled[key])
            else:
                config[key] = entry if isinstance(entry, str) else float(entry)
        if config.get("algorithm") == "adam":  # as AdamConfig.to_config: the key only where it is not adam
            del config["algorithm"]
        return config


#: The spec's ``search_space: auto``: a budget-aware cut of the ``adam`` space.
AUTO = "auto"
# (fewest trials, hyperparameter). The Google Tuning Playbook (google-research/tuning_playbook;
# ../shared/data/algoperf-adam.md) tunes only lr under 10 trials, adds beta1 at 10-25, eps
# from 25 and beta2 far beyond. bench/tuning_quality.py (docs/tuning-quality.md, "How good are the configs it
# finds") kept its first band: at 8 trials lr alone beat the whole adam space on digits_mlp
# (0.095 vs 0.210 val_loss) and char_lm (2.95 vs 3.28 bpc). Its later bands did not help: lr +
# beta1 at 16 trials lost 4 of 5 seeds on char_lm (3.18 vs 3.08 bpc), lr + beta1 + eps at 32
# lost on digits_mlp (0.109 vs 0.097) and char_lm (2.92 vs 2.86). So from 10 trials auto
# searches lr and both betas.
# eps never (math.inf: left at torch's 1e-8), as AlgoPerf's baselines fix it.
# bench/tuning_quality.py, 5 seeds, 2026-12-05, auto with vs without eps: char_lm at 32 trials
# 2.9196 vs 2.8655 bpc (better on 5 of 5 seeds; with eps it was behind the Ray Tune script's
# 2.8609); the other cells within the seeds' spread (digits_mlp 0.0983 vs 0.0965 at 16, 0.0937 vs
# 0.0939 at 32; char_lm 2.8664 vs 2.8738 at 16; examples/own_model 0.0975 vs 0.0986, 0.0970 vs 0.0966).
_AUTO_ORDER = ((1, "lr"), (10, "beta1"), (10, "beta2"), (math.inf, "eps"))


def auto_search_space(n_trials: int) -> dict[str, Any]:
    """The ``auto`` space for a budget of ``n_trials``: the bundled ``adam`` space's ranges for
    the hyperparameters that budget can tune (``_AUTO_ORDER``: ``lr`` alone under 10 trials,
    ``lr``, ``beta1`` and ``beta2`` from 10, ``eps`` never), the rest left out (so at torch's
    defaults).

    Returns:
        A raw mapping named ``auto`` (validate it with ``SearchSpace.model_validate``).
    """
    adam = load_search_space("adam")
    searched = [key for fewest, key in _AUTO_ORDER if n_trials >= fewest]
    fixed = [key for _, key in _AUTO_ORDER if key not in searched]
    return {
        **adam,
        "name": AUTO,
        "description": f"auto for {n_trials} trials: {', '.join(searched)} searched as in 'adam'"
        + (f"; {', '.join(fixed)} at torch's defaults" if fixed else ""),
        "params": {key: adam["params"][key] for key in searched},
    }


def bundled_search_spaces() -> list[str]:
    """Names of the search spaces shipped in ``search_spaces/`` (``adam``, ``adamw``, …); ``auto``
    (:func:`auto_search_space`) is not a file and not listed."""
    from importlib.resources import files

    return sorted(p.name.removesuffix(".yaml") for p in files("search_spaces").iterdir() if p.name.endswith(".yaml"))


def load_search_space(ref: str, *, base_dir: Path | None = None, allow_paths: bool = True) -> dict[str, Any]:
    """Read a search space mapping by bundled name (``adam``) or YAML path.

    Args:
        ref: a bundled name, or a path (relative paths resolve against ``base_dir``).
        base_dir: folder of the spec that names the space.
        allow_paths: whether ``ref`` may be a path (false: bundled names only).

    Returns:
        The raw mapping with ``name`` set; validate it with ``SearchSpace.model_validate``.

    Raises:
        ValueError: no bundled space or file of that name; the file is not a YAML mapping.
    """
    from importlib.resources import files

    import yaml

    bundled = files("search_spaces") / f"{ref}.yaml"
    if ref in bundled_search_spaces():  # a name, never probed as a path (a 7,000-character one fails to stat)
        text, name = bundled.read_text(), ref
    elif not allow_paths:
        raise ValueError(
            f"no bundled search space {ref!r}: use one of {', '.join(bundled_search_spaces())} "
            "or an inline mapping with a 'params' key"
        )
    else:
        path = Path(ref) if base_dir is None else base_dir / ref
        try:
            text, name = path.read_text(), path.stem
        except OSError as e:
            raise ValueError(
                f"no search space {ref!r} ({e.strerror}): bundled ones are {', '.join(bundled_search_spaces())}, "
                "or give a path to a YAML file"
            ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"search space {ref!r} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"search space {ref!r} must be a YAML mapping with a 'params' key")
    return {"name": name, **data}
