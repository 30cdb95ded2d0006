"""The sweep's Optuna study, driven by ask/tell for packed execution.

The same study, sampler and records as the standard mode's ``AdamSearch``: TPE
seeded with the spec's seed, configs drawn over :func:`tuner.study.distributions`,
one intermediate value per epoch, early stops told as ``PRUNED``, failures as
``FAIL`` with a ``reason`` user attribute, and ``epochs`` on every finished trial.
Trials a crashed driver left ``RUNNING`` are handed out again first, with their
number and params, so a resumed sweep re-runs them instead of adding new ones.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from tuner.executor._outcome import Outcome
from tuner.executor._trials import reopen_interrupted, tell
from tuner.study import distributions

if TYPE_CHECKING:
    import optuna

    from tuner.spec import SweepSpec

__all__ = ["PackStudy"]


class PackStudy:
    """Asks the sweep's study for trials and records their epochs and outcomes.

    Args:
        spec: the sweep's spec; its study must exist in ``storage``.
        storage: the Optuna storage holding the study.
    """

    def __init__(self, spec: SweepSpec, storage: optuna.storages.BaseStorage) -> None:
        import optuna
        from optuna.samplers import TPESampler

        self._space = spec.search_space
        self._distributions = distributions(spec.search_space)
        self._study = optuna.load_study(study_name=spec.name, storage=storage, sampler=TPESampler(seed=spec.seed))
        self._interrupted = reopen_interrupted(self._study, storage)
        self._trials: dict[int, optuna.Trial] = {}
        self._reported: dict[int, set[int]] = {}  # epochs a resumed trial recorded before the crash

    def ask(self) -> tuple[int, dict[str, Any]]:
        """A new trial (or one a crashed run left running): its number and Adam config."""
        if self._interrupted:
            frozen, trial = self._interrupted.pop(0)
            self._reported[frozen.number] = set(frozen.intermediate_values)
        else:
            trial = self._study.ask(fixed_distributions=self._distributions)
        self._trials[trial.number] = trial
        return trial.number, self._space.to_adam_config(trial.params)

    def report(self, number: int, epoch: int, value: float | None) -> None:
        """Record trial ``number``'s metric after ``epoch`` (non-finite values are not recorded)."""
        if value is None or not math.isfinite(value):
            return
        if epoch not in self._reported.get(number, ()):
            self._trials[number].report(value, epoch)

    def tell(self, number: int, outcome: Outcome) -> None:
        """End trial ``number``: ``COMPLETE`` with its value, ``PRUNED`` or ``FAIL`` (with a reason)."""
        self._reported.pop(number, None)
        tell(self._study, self._trials.pop(number), outcome)
