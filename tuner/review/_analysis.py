"""Read a sweep's study, pick the usable trials, and assemble its :class:`Analysis`.

Parameter plots and importance use the *usable* trials only: completed, with a value and
every searched param, copied into an in-memory study. The baseline trial (torch's default
Adam) carries only the params whose default lies inside the search range, so it may be
left out of those; the optimization history and intermediate values show every trial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tuner.review._importance import importance
from tuner.review._plots import display_order, plots
from tuner.search_space import SearchSpace
from tuner.study import SPEC_ATTR

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Analysis:
    """A sweep's plots and hyperparameter importance.

    Attributes:
        plots: PNG bytes by plot name (keys of :data:`~tuner.review.PLOT_TITLES`), in display order.
        importance: ``{"ped_anova": {param: value}, "fanova": {...}}``, params as the study
            records them (``lr``, ``one_minus_beta2``, ``schedule``); values sum to 1 per
            evaluator, most important first. An evaluator that could not run is absent.
        notes: why a plot or an importance was skipped or may be unreliable.
    """

    plots: dict[str, bytes] = field(default_factory=dict)
    importance: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def analyze(storage: optuna.storages.BaseStorage, study_name: str) -> Analysis:
    """Plot the study ``study_name`` and compute its hyperparameter importance.

    Args:
        storage: the Optuna storage holding the sweep's study.
        study_name: the sweep's name.

    Returns:
        The analysis; parts that cannot be computed are skipped with a note.

    Raises:
        KeyError: no study called ``study_name`` in ``storage`` (Optuna's error).
    """
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    spec = study.user_attrs.get(SPEC_ATTR)
    spec = spec if isinstance(spec, dict) else {}
    searched = _searched(spec, trials)
    usable = optuna.create_study(direction=study.direction)  # in memory
    usable.add_trials(
        t for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None and searched <= t.params.keys()
    )
    params = sorted(searched, key=display_order)
    notes: list[str] = []
    importances = importance(usable, params, notes)
    drawn = plots(study, usable, params, importances, spec.get("metric", "Objective Value"), notes)
    return Analysis(plots=drawn, importance=importances, notes=tuple(notes))


def analysis_metrics(analysis: Analysis) -> dict[str, float]:
    """Importances as MLflow metrics: ``importance_<evaluator>_<param>`` → value."""
    return {f"importance_{ev}_{param}": v for ev, values in analysis.importance.items() for param, v in values.items()}


def analysis_files(analysis: Analysis) -> dict[str, bytes]:
    """Artifacts to log: ``analysis/<plot>.png`` and ``analysis/importance.json`` (importance and notes)."""
    files = {f"analysis/{name}.png": png for name, png in analysis.plots.items()}
    payload = {"importance": analysis.importance, "notes": list(analysis.notes)}
    files["analysis/importance.json"] = json.dumps(payload, indent=2).encode()
    return files


def _searched(spec: dict, trials: list[optuna.trial.FrozenTrial]) -> set[str]:
    """Searched params as the study records them: from the sweep's spec, else every trial's params."""
    if "search_space" in spec:
        return set(SearchSpace.model_validate(spec["search_space"]).searched())
    return {name for t in trials for name in t.params}

