"""Small sweep studies built without training (helpers, imported by the analysis, report and dashboard tests).

Trials are added with ``optuna.trial.create_trial`` over the project's own distributions
(:func:`tuner.study.distributions`), and the study holds its spec as ``StudyStore`` writes it.
"""

from __future__ import annotations

import math
import random
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from tuner.baseline import baseline_params
from tuner.search_space import SearchSpace, load_search_space
from tuner.spec import parse_spec
from tuner.study import StudyStore, distributions

#: A space searching a categorical too: ``schedule`` among three names.
WITH_SCHEDULES: dict[str, Any] = {
    "name": "with-schedules",
    "params": {
        **load_search_space("adamw-warmup-cosine")["params"],
        "schedule": {"choices": ["constant", "cosine", "linear"]},
    },
}

SpaceRef = str | dict[str, Any]


def space(ref: SpaceRef) -> SearchSpace:
    """A bundled search space by name, or an inline mapping, validated."""
    return SearchSpace.model_validate(load_search_space(ref) if isinstance(ref, str) else ref)


def spec(name: str, space_name: SpaceRef, *, metric: str = "val_loss", n_trials: int = 16) -> dict[str, Any]:
    """A valid sweep spec (JSON form, as ``StudyStore`` records it)."""
    data = {"name": name, "workload": "digits_mlp", "search_space": space_name, "metric": metric, "n_trials": n_trials}
    return parse_spec(data).model_dump(mode="json")


def new_study(storage: Any, name: str, space_name: SpaceRef, *, metric: str = "val_loss") -> optuna.Study:
    """An empty sweep study holding its spec, in ``storage`` (``None``: in memory)."""
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize")
    study.set_user_attr("spec", spec(name, space_name, metric=metric))
    return study


def add_baseline(study: optuna.Study, space_name: SpaceRef, value: float = 0.5) -> dict[str, Any]:
    """Trial 0: torch's defaults, with only the params whose default lies in the search range."""
    dists = distributions(space(space_name))
    params = baseline_params(space(space_name))
    study.add_trial(
        create_trial(
            params=params,
            distributions={k: dists[k] for k in params},
            value=value,
            intermediate_values={1: value + 0.3, 2: value},
            user_attrs={"baseline": True, "epochs": 2},
        )
    )
    return params


def add_trials(study: optuna.Study, space_name: SpaceRef, n: int, *, seed: int = 0, pruned_every: int = 0) -> None:
    """``n`` sampled trials whose value depends mostly on ``lr`` (every ``pruned_every``-th early-stopped)."""
    dists = distributions(space(space_name))
    rng = random.Random(seed)
    for i in range(n):
        params = {k: _sample(d, rng) for k, d in dists.items()}
        value = (math.log10(params["lr"]) + 2.5) ** 2 + 0.05 * rng.random()
        pruned = pruned_every and i % pruned_every == pruned_every - 1
        epochs = 1 if pruned else 3
        study.add_trial(
            create_trial(
                params=params,
                distributions=dists,
                state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                value=None if pruned else value,
                intermediate_values={e: value + 1 / e for e in range(1, epochs + 1)},
                user_attrs={"epochs": epochs},
            )
        )


def sweep_in_home(home: Any, name: str, space_name: SpaceRef = "adam", n: int = 6) -> None:
    """A sweep's study in ``home/optuna.db`` as ``StudyStore`` creates it, with a baseline and ``n`` trials."""
    store = StudyStore(f"sqlite:///{home}/optuna.db")
    store.create(parse_spec(spec(name, space_name)))
    study = optuna.load_study(study_name=name, storage=store.storage)
    add_baseline(study, space_name)
    add_trials(study, space_name, n)
    store.storage.engine.dispose()


def _sample(dist: optuna.distributions.BaseDistribution, rng: random.Random) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return rng.choice(dist.choices)
    if dist.log:
        return math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
    return rng.uniform(dist.low, dist.high)
