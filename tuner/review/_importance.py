"""Hyperparameter importance by PED-ANOVA and fANOVA (Optuna's evaluators).

fANOVA fits a random forest (64 trees, seed 0: a 32-trial sweep takes ~0.1 s); PED-ANOVA
compares the top 10 % of trials against all of them and warns when that selects too few,
and those warnings become notes. An evaluator that fails (e.g. fANOVA on equal values:
zero variance) is left out with a note; nothing is raised.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import optuna

#: Fewest usable trials the importance and the parameter plots need.
MIN_TRIALS = 2


def importance(study: optuna.Study, params: list[str], notes: list[str]) -> dict[str, dict[str, float]]:
    """Importance of ``params`` by each evaluator over ``study``'s trials, most important first.

    Args:
        study: the usable trials only (completed, each with every param in ``params``).
        params: the searched params, as the study records them.
        notes: receives why an evaluator was skipped, and its warnings.

    Returns:
        ``{"ped_anova": {param: value}, "fanova": {...}}``, values summing to 1; evaluators
        that could not run are absent, and with fewer than 2 params or trials it is empty.
    """
    n = len(study.trials)
    if len(params) < 2:
        notes.append(f"importance needs at least 2 searched params; this sweep searches {len(params)}")
        return {}
    if n < MIN_TRIALS:
        notes.append(f"importance needs at least {MIN_TRIALS} completed trials with searched params; got {n}")
        return {}
    result = {}
    for name, evaluator in _evaluators().items():
        values = _evaluate(study, params, name, evaluator, notes)
        if values is not None:
            result[name] = values
    return result


def _evaluators() -> dict[str, Callable[[], optuna.importance.BaseImportanceEvaluator]]:
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    return {"ped_anova": PedAnovaImportanceEvaluator, "fanova": lambda: FanovaImportanceEvaluator(seed=0)}


def _evaluate(
    study: optuna.Study,
    params: list[str],
    name: str,
    evaluator: Callable[[], optuna.importance.BaseImportanceEvaluator],
    notes: list[str],
) -> dict[str, float] | None:
    from optuna.exceptions import ExperimentalWarning
    from optuna.importance import get_param_importances

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = get_param_importances(study, evaluator=evaluator(), params=params)
        except (ValueError, RuntimeError, ZeroDivisionError, FloatingPointError) as e:
            notes.append(f"{name} importance skipped: {e}")
            return None
    values = {p: float(v) for p, v in values.items()}
    if not values or not all(math.isfinite(v) for v in values.values()):
        notes.append(f"{name} importance skipped: undefined on these {len(study.trials)} trials (e.g. all values equal)")
        return None
    for message in dict.fromkeys(str(w.message) for w in caught if not issubclass(w.category, ExperimentalWarning)):
        notes.append(f"{name}: {message}")
    return values
