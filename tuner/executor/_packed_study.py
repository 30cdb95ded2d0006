"""The sweep's Optuna study, driven by ask/tell for packed execution.

The same study, sampler and records as the standard mode's ``AdamSearch``: TPE
seeded with the spec's seed, configs drawn over :func:`tuner.study.distributions`,
the config as user attributes, one intermediate value per epoch, early stops told
as ``PRUNED``, failures as ``FAIL`` with a ``reason`` user attribute, and ``epochs``
on every finished trial.
Trials a crashed driver left ``RUNNING`` are handed out again first, with their
number and params, so a resumed sweep re-runs them instead of adding new ones.
With the spec's ``baseline``, the first new trial is torch's default Adam
(:mod:`tuner.baseline`).

TPE samples from an in-memory copy of the study (Optuna's ``InMemoryStorage``).
:meth:`PackStudy.ask`, :meth:`~PackStudy.report` and :meth:`~PackStudy.tell` act on
the copy at once and hand the same change of the stored study, as a callable, to
``defer``; the caller runs those in order when it has time (the packed driver: while
its packs train; an SQLite commit costs more than a small model's training step).
Optuna's ``RDBStorage`` would also re-read every running trial several times per
ask (measured: 60-100 ms per ask on SQLite with 16 running); from memory an ask
costs a few ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tuner.executor._outcome import Outcome
from tuner.baseline import BASELINE_ATTR, baseline_config
from tuner.executor._trials import ask_baseline, config_attrs, has_baseline, is_baseline, optuna_state, reopen_interrupted, tell
from tuner.study import distributions

if TYPE_CHECKING:
    import optuna

    from tuner.spec import SweepSpec

__all__ = ["Asked", "PackStudy"]


@dataclass(eq=False)
class Asked:
    """A trial TPE proposed: its Adam config, and its number once its deferred creation ran."""

    config: dict[str, Any]
    sampled: optuna.Trial  # the in-memory copy's trial
    number: int | None = None
    trial_id: int | None = None  # the stored trial's id
    stored_epochs: set[int] = field(default_factory=set)  # epochs a resumed trial recorded before the crash
    baseline: bool = False  # torch's default Adam (its config is not its params)
    reported: set[int] = field(default_factory=set)  # epochs reported in this run (a retried trial repeats them)


class PackStudy:
    """Asks the sweep's study for trials and records their epochs and outcomes.

    Args:
        spec: the sweep's spec; its study must exist in ``storage``.
        storage: the Optuna storage holding the study.
        defer: takes each change of the stored study (a callable); the caller must
            run them in the order given.
    """

    def __init__(
        self, spec: SweepSpec, storage: optuna.storages.BaseStorage, *, defer: Callable[[Callable[[], None]], None]
    ) -> None:
        import optuna
        from optuna.samplers import TPESampler
        from optuna.trial import TrialState

        self._space = spec.search_space
        self._distributions = distributions(spec.search_space)
        self._storage = storage
        study = optuna.load_study(study_name=spec.name, storage=storage)
        self._study_id = storage.get_study_id_from_name(spec.name)
        self._sampling = optuna.create_study(direction=study.direction, sampler=TPESampler(seed=spec.seed))
        for finished in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
            self._sampling.add_trial(finished)
        self._interrupted = reopen_interrupted(study, storage)
        self._baseline_due = spec.baseline and not has_baseline(study)
        self._defer = defer

    def ask(self) -> Asked:
        """A new trial (or one a crashed run left running, with its number)."""
        if self._interrupted:
            frozen, trial_id = self._interrupted.pop(0)
            baseline = is_baseline(frozen)
            self._sampling.enqueue_trial(frozen.params, user_attrs=frozen.user_attrs)
            sampled = self._sampling.ask(frozen.distributions if baseline else self._distributions)
            config = baseline_config(self._space) if baseline else self._config(sampled)
            return Asked(config, sampled, frozen.number, trial_id, set(frozen.intermediate_values), baseline)
        if self._baseline_due:
            self._baseline_due = False
            asked = Asked(baseline_config(self._space), ask_baseline(self._sampling, self._space), baseline=True)
        else:
            sampled = self._sampling.ask(self._distributions)
            asked = Asked(self._config(sampled), sampled)
        self._defer(lambda: self._create(asked))
        return asked

    def report(self, asked: Asked, epoch: int, value: float | None) -> None:
        """Record the trial's metric after ``epoch`` (non-finite values are not recorded)."""
        if value is None or not math.isfinite(value) or epoch in asked.reported:
            return  # non-finite: Trial.report would refuse it; reported: a retried trial's repeat
        asked.reported.add(epoch)
        asked.sampled.report(value, epoch)
        if epoch not in asked.stored_epochs:
            self._defer(lambda: self._storage.set_trial_intermediate_value(asked.trial_id, epoch, value))

    def tell(self, asked: Asked, outcome: Outcome) -> None:
        """End the trial: ``COMPLETE`` with its value, ``PRUNED`` or ``FAIL`` (with a reason)."""
        self._sampling.tell(asked.sampled, outcome.value if outcome.state == "completed" else None, state=optuna_state(outcome))
        self._defer(lambda: tell(self._storage, asked.trial_id, outcome))

    def _config(self, sampled: optuna.Trial) -> dict[str, Any]:
        return self._space.to_adam_config(sampled.params)

    def _create(self, asked: Asked) -> None:
        import optuna

        params = asked.sampled.params
        template = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING,
            params=params,
            distributions={name: self._distributions[name] for name in params},
            user_attrs={**config_attrs(asked.config), **({BASELINE_ATTR: True} if asked.baseline else {})},
        )  # user attributes created with the trial: no extra write
        asked.trial_id = self._storage.create_new_trial(self._study_id, template_trial=template)
        asked.number = self._storage.get_trial_number_from_id(asked.trial_id)
