"""Warm start: known-good Adam configs enqueued in the study before the sampler takes over.

With the spec's ``warm_start``, a sweep's first new trials (after the baseline, if any) train
with :data:`WARM_START_CONFIGS`: AlgoPerf's self-tuning point and, when the sweep has no
baseline, torch's default Adam. Each is projected into the search space: its value for each
searched hyperparameter is clipped into the searched range (a choice outside the choices is
left to the sampler), and what the space does not search keeps the space's fixed value. The
trials go through Optuna's own ``Study.enqueue_trial``, carry the user attribute
``warm_start`` (the config's name) and are never enqueued twice in one study (a resumed
sweep finds them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.search_space import ADAM_DEFAULTS, SCHEDULE_DEFAULTS, Choice, SearchSpace

if TYPE_CHECKING:
    import optuna

__all__ = ["WARM_START_ATTR", "WARM_START_CONFIGS", "enqueue_warm_start", "missing_warm_starts", "warm_start_params"]

#: The Optuna trial user attribute naming a warm-start trial's config.
WARM_START_ATTR = "warm_start"

#: Known-good configs by name, as trial configs (``beta1``, not ``one_minus_beta1``).
#: ``algoperf-self-tuning``: the single point of AlgoPerf's self-tuning NAdamW baseline
#: (Dahl et al., 2023, arXiv 2306.07179; mlcommons/algorithmic-efficiency; figures in
#: ../shared/data/algoperf-adam.md). ``torch-default``: ``torch.optim.Adam``'s defaults.
WARM_START_CONFIGS: dict[str, dict[str, Any]] = {
    "algoperf-self-tuning": {
        "lr": 0.0017486387539278373,
        "beta1": 1 - 0.06733926164,
        "beta2": 0.9955159689799007,
        "eps": 1e-8,
        "weight_decay": 0.08121616522670176,
        "warmup_fraction": 0.02,
        "schedule": "cosine",
    },
    "torch-default": {**ADAM_DEFAULTS, **SCHEDULE_DEFAULTS},
}


def warm_start_params(space: SearchSpace, config: dict[str, Any]) -> dict[str, Any]:
    """``config``'s values as the study records ``space``'s searched entries
    (``one_minus_beta2 = 1 - beta2``), each clipped into its range; a choice not among
    the choices is left out (the sampler draws it)."""
    params: dict[str, Any] = {}
    for name, entry in space.searched().items():
        key = name.removeprefix("one_minus_")
        value = config[key]
        if isinstance(entry, Choice):
            if value in entry.choices:
                params[name] = value
            continue
        value = float(f"{1.0 - value:.12g}") if name != key else float(value)
        params[name] = min(max(value, entry.low), entry.high)
    return params


def missing_warm_starts(study: optuna.Study, *, baseline: bool) -> list[str]:
    """Names of the warm-start configs the sweep's stored ``study`` holds in no trial yet (any
    state, waiting included), in :data:`WARM_START_CONFIGS` order; ``torch-default`` only
    for a sweep without a ``baseline`` (which trains those defaults already)."""
    held = {t.user_attrs.get(WARM_START_ATTR) for t in study.get_trials(deepcopy=False)}
    return [n for n in WARM_START_CONFIGS if n not in held and not (baseline and n == "torch-default")]


def enqueue_warm_start(study: optuna.Study, space: SearchSpace, names: list[str]) -> None:
    """Enqueue the warm-start configs ``names`` in ``study`` (``Study.enqueue_trial``: its next
    ``ask`` calls return them, in order), with the user attribute ``warm_start``."""
    for name in names:
        study.enqueue_trial(warm_start_params(space, WARM_START_CONFIGS[name]), user_attrs={WARM_START_ATTR: name})
