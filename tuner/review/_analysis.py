"""Read a sweep's study, pick the usable trials, and assemble its :class:`Analysis`.

Parameter plots and importance use every trial that trained, completed *and* early-stopped
(an ASHA sweep stops most of them): each one carrying every searched param and a value is
copied into an in-memory study at one value per trial, :func:`common_rung`'s: the metric at
the highest epoch every such trial reached (the first rung, where the scheduler compared
them all), or, when they share none, each trial's last reported value. The plots' value axis
says which (``val_loss at epoch 1``). The baseline trial (torch's default Adam) carries only
the params whose default lies inside the search range, so it may be left out of those; the
optimization history and the learning curves show every trial.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuner.review._importance import importance
from tuner.review._plots import NUMBER_ATTR, display_order, plots, warm_up
from tuner.search_space import SearchSpace
from tuner.study import SPEC_ATTR

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Analysis:
    """A sweep's plots and hyperparameter importance.

    Attributes:
        plots: PNG bytes by plot name (keys of :data:`~tuner.review.PLOT_TITLES`), in display order.
        importance: ``{"fanova": {param: value}}`` (one method, :data:`~tuner.review._importance.METHOD`),
            params as the study records them (``lr``, ``one_minus_beta2``, ``schedule``); values
            sum to 1, most important first. Empty below :data:`~tuner.review._importance.MIN_IMPORTANCE_TRIALS`
            trials or when it could not run.
        notes: why a plot or an importance was skipped or may be unreliable.
        value_label: what the parameter plots and importance compare, e.g. ``val_loss at epoch 1``.
        n_trials: the trials they use (completed and early-stopped).
        params: the searched params as the study records them, in display order (Adam's: lr,
            ``one_minus_beta1``, ``one_minus_beta2``, eps, ...): the parallel coordinates' axes,
            left to right, before the value.
        continued: per epoch, the worst value among the trials that trained past it (what an
            early-stopped trial at that epoch had to beat; a rung's cutoff as far as the study shows).
    """

    plots: dict[str, bytes] = field(default_factory=dict)
    importance: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    value_label: str = ""
    n_trials: int = 0
    params: tuple[str, ...] = ()
    continued: dict[int, float] = field(default_factory=dict)


def analyze(storage: optuna.storages.BaseStorage, study_name: str, *, recommended: int | None = None) -> Analysis:
    """Plot the study ``study_name`` and compute its hyperparameter importance.

    Args:
        storage: the Optuna storage holding the sweep's study.
        study_name: the sweep's name.
        recommended: the trial the learning curves highlight (default: the best completed one).

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
    metric = spec.get("metric", "Objective Value")
    trained = [t for t in trials if searched <= t.params.keys() and _last_value(t) is not None]
    rung = common_rung(trained)
    label = f"{metric} at epoch {rung}" if rung is not None else f"{metric} (each trial's last epoch)"
    usable = optuna.create_study(direction=study.direction)  # in memory
    usable.add_trials(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE,
            value=t.intermediate_values[rung] if rung is not None else _last_value(t),
            params=t.params,
            distributions=t.distributions,
            user_attrs={**t.user_attrs, NUMBER_ATTR: t.number},  # renumbered from 0 in the new study
        )
        for t in trained
    )
    params = sorted(searched, key=display_order)
    notes: list[str] = []
    if len(trained) < len(trials):
        notes.append(
            f"parameter plots and importance use {len(trained)} of {len(trials)} trials (the others failed, "
            "reported no value or lack a searched param)"
        )
    importances = importance(usable, params, notes)
    best = _recommended(study, recommended)
    drawn = plots(study, usable, params, importances, metric, label, notes, highlight=best)
    return Analysis(
        plots=drawn,
        importance=importances,
        notes=tuple(notes),
        value_label=label,
        n_trials=len(trained),
        params=tuple(params),
        continued=_continued(trials, study.direction),
    )


def warm_analysis() -> None:
    """Import and exercise what :func:`analyze` needs the first time (matplotlib and Optuna's
    plots, fANOVA and scikit-learn's forest under it), so that a sweep's analysis, made after its
    last trial, costs only its own drawing: :class:`tuner.service.SweepRunner` calls this on a
    thread beside the trials. Safe beside an :func:`analyze` on another thread (pyplot is locked)."""
    importlib.import_module("optuna.importance")
    warm_up()


def common_rung(trials: list[optuna.trial.FrozenTrial]) -> int | None:
    """The highest epoch at which every one of ``trials`` reported a value; ``None`` when they share none
    (or a trial reported no epoch)."""
    epochs = [set(t.intermediate_values) for t in trials]
    if not epochs or not all(epochs):
        return None
    shared = set.intersection(*epochs)
    return max(shared) if shared else None


def _last_value(trial: optuna.trial.FrozenTrial) -> float | None:
    """A completed trial's value; an early-stopped one's last epoch's; ``None`` for others."""
    from optuna.trial import TrialState

    if trial.state == TrialState.COMPLETE:
        return trial.value
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return None


def _recommended(study: optuna.Study, number: int | None) -> int | None:
    if number is not None:
        return number
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not done:
        return None
    best = min if study.direction == StudyDirection.MINIMIZE else max
    return best(done, key=lambda t: t.value).number


def _continued(trials: list[optuna.trial.FrozenTrial], direction: Any) -> dict[int, float]:
    """Per epoch, the worst value among the trials that went on past it."""
    from optuna.study import StudyDirection

    worst = max if direction == StudyDirection.MINIMIZE else min
    out: dict[int, float] = {}
    for t in trials:
        last = max(t.intermediate_values, default=0)
        for epoch, value in t.intermediate_values.items():
            if epoch < last:
                out[epoch] = value if epoch not in out else worst(out[epoch], value)
    return dict(sorted(out.items()))


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
