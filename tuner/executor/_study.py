"""The study protocol: one sweep's asks, rungs, tells and continuations, the same for both executors.

:class:`SweepStudy` owns every decision the search makes; an executor only trains what
it is given and passes results back:

- **ask**: a trial to start: first trials a crashed run left ``RUNNING`` (same number and
  params), then the baseline (torch's default Adam), then configs from the spec's sampler
  (:mod:`tuner.samplers`: an initial Sobol design, then a model), and at the end of the
  budget *continuations*: an early-stopped trial that beat every completed trial at the
  rung where it stopped is trained again with the same config to ``max_epochs``, so the
  recommendation is never limited to trials ASHA happened to let through (training is
  seeded: its curve repeats, then goes on).
- **report**: a trial's value after an epoch; the answer is whether ASHA stops it there
  (:class:`tuner.asha.Rungs`; the baseline and continuations are never stopped, and a rung
  stops none until the completed trials seen show that it ranks configs as their final
  values do: :meth:`tuner.asha.Rungs.trusted`).
- **tell**: a trial ended (completed, early-stopped, failed). Its value is its last epoch's, or
  with ``objective: best`` its best epoch's (recorded as the trial's ``value_epoch``).

**Reproducible by construction.** Trials are ordered by when they were asked
(*positions*). The sampler learns finished trials strictly in that order, and the ask
at position ``q`` sees exactly positions ``< q - window + 1`` (``window``: how many
trials run at once); when one of those is still running, :meth:`SweepStudy.ask` answers
``None`` (ask again after the next tell). ASHA judges position ``q`` against those same
trials only. So what a trial is given and whether it is stopped depend on the spec and
the seed, not on which worker finished first. The baseline is a reference, not a sample:
the sampler never learns from it and no rung counts it.

The sampler works on an in-memory copy of the study (Optuna's ``InMemoryStorage``: an ask
from memory costs a few ms where ``RDBStorage`` re-reads every running trial). Each
change of the stored study goes to ``defer`` as a callable, run in order by the caller
(at once in standard execution; the packed driver runs them while its packs train).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tuner.asha import Rungs
from tuner.baseline import BASELINE_ATTR, baseline_config, baseline_params
from tuner.records import Outcome
from tuner.samplers import build_sampler, design_point, design_size
from tuner.study import (
    CONFIG_ATTRS,
    CONFIG_TEXT_ATTR,
    CONTINUES_ATTR,
    EPOCHS_ATTR,
    REASON_ATTR,
    VALUE_EPOCH_ATTR,
    config_text,
    distributions,
)

if TYPE_CHECKING:
    import optuna

    from tuner.spec import SweepSpec

__all__ = ["Asked", "SweepStudy"]

Kind = Literal["sampled", "baseline", "resumed", "continued"]


@dataclass(eq=False)
class Asked:
    """A trial the study handed out (or, with an empty ``config``, one an earlier run finished).

    Attributes:
        config: the Adam config it trains with (:meth:`tuner.search_space.SearchSpace.to_adam_config`).
        params: its values as the study records them (``one_minus_beta1``, …).
        kind: ``sampled``, ``baseline``, ``resumed`` (left running by a crashed run) or
            ``continued`` (an early-stopped config trained again to ``max_epochs``).
        position: its place in this run's order (``None`` for the baseline).
        visible: positions below this count are what the sampler learned and ASHA compares with.
        number: the study's trial number, once its creation is written.
        continues: the number of the early-stopped trial it continues (``continued`` only).
    """

    config: dict[str, Any]
    params: dict[str, Any]
    kind: Kind
    position: int | None = None
    visible: int = 0
    number: int | None = None
    trial_id: int | None = None
    continues: Asked | None = None
    sampled: Any = None  # the in-memory copy's optuna.Trial (None for the baseline)
    stored_epochs: frozenset[int] = frozenset()  # epochs a resumed trial stored before the crash
    reported: dict[int, float] = field(default_factory=dict)  # epoch -> finite value, first report each
    outcome: Outcome | None = None
    rung_values: dict[float, float] = field(default_factory=dict)  # rung -> value, set when it ends

    @property
    def judged(self) -> bool:
        """Whether ASHA may stop it (not the baseline, not a continuation)."""
        return self.kind in ("sampled", "resumed")


class SweepStudy:
    """Asks the sweep's study for trials and records their epochs and outcomes (see the module).

    Args:
        spec: the sweep's spec; its study must exist in ``storage``.
        storage: the Optuna storage holding the study.
        n_trials: trials to start in this run (fewer than ``spec.n_trials`` on resume).
        window: how many trials may run at once (Ray Tune's concurrency, a pack's slots).
        defer: takes each change of the stored study; the caller runs them in the order
            given. Default: run at once.

    Raises:
        ValueError: ``window < 1``.
    """

    def __init__(
        self,
        spec: SweepSpec,
        storage: optuna.storages.BaseStorage,
        *,
        n_trials: int,
        window: int,
        defer: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        import optuna
        from optuna.trial import TrialState

        if window < 1:
            raise ValueError(f"window >= 1 must hold, but got {window=}")
        self._spec, self._space, self._storage = spec, spec.search_space, storage
        self._distributions = distributions(spec.search_space)
        self._window = window
        self._defer = defer or (lambda write: write())
        self._rungs = (
            Rungs(
                max_epochs=spec.max_epochs,
                mode=spec.mode,
                grace_period=spec.asha_settings.grace_period,
                reduction_factor=spec.asha_settings.reduction_factor,
            )
            if spec.scheduler == "asha"
            else None
        )
        stored = optuna.load_study(study_name=spec.name, storage=storage)
        self._study_id = storage.get_study_id_from_name(spec.name)
        self._memory = optuna.create_study(direction=stored.direction, sampler=build_sampler(spec.sampler, spec.seed))
        trials = stored.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
        self._known = [  # finished in earlier runs, as this run's trials look once told
            Asked(
                {},
                dict(t.params),
                "continued" if CONTINUES_ATTR in t.user_attrs else "sampled",
                number=t.number,
                reported=dict(t.intermediate_values),
                outcome=Outcome(_state_name(t.state), t.value, len(t.intermediate_values)),
                rung_values=self._rungs.rung_values(t.intermediate_values) if self._rungs is not None else {},
            )
            for t in finished
            if not t.user_attrs.get(BASELINE_ATTR)
        ]
        for t in finished:
            if not t.user_attrs.get(BASELINE_ATTR):
                self._memory.add_trial(t)
        self._continued = {t.user_attrs[CONTINUES_ATTR] for t in trials if CONTINUES_ATTR in t.user_attrs}
        self._resumable = self._interrupted(trials)
        self._baseline_due = spec.baseline and not any(t.user_attrs.get(BASELINE_ATTR) for t in trials)
        self._samples = sum(not t.user_attrs.get(BASELINE_ATTR) for t in trials)  # the next design point's index
        self._design = design_size(spec.sampler, spec.n_trials) if self._distributions else 0
        self._asks_left = n_trials
        self._reserve = max(1, spec.n_trials // 8) if self._rungs is not None else 0  # last asks: continuations first
        self._order: list[Asked] = []  # this run's trials by position
        self._told = 0  # positions the sampler has learned
        self._fail_fast = spec.fail_fast
        self._failures: dict[str, int] = {}  # reason -> this run's trials that failed with it
        self._succeeded = False  # one of this run's trials completed or was early-stopped
        self._stopped: str | None = None

    @property
    def asks_left(self) -> int:
        """Trials this run may still start (0 once :attr:`stopped`)."""
        return 0 if self._stopped is not None else self._asks_left

    @property
    def stopped(self) -> str | None:
        """Why the run stopped asking before its budget (``fail_fast``: ``spec.fail_fast`` of its trials
        failed with the same reason and none completed or was early-stopped), else ``None``."""
        return self._stopped

    def ask(self) -> Asked | None:
        """The next trial to start, or ``None``: the budget is spent, or a trial the next ask must
        learn from is still running (ask again after the next :meth:`tell`)."""
        if self.asks_left <= 0:
            return None
        if self._resumable:
            asked = self._resumable.pop(0)
        elif self._baseline_due:
            self._baseline_due = False
            asked = Asked(baseline_config(self._space), baseline_params(self._space), "baseline")
            self._defer(lambda: self._create(asked))
        else:
            asked = self._next()
            if asked is None:
                return None
            self._defer(lambda: self._create(asked))
        if asked.kind != "baseline":
            asked.position = len(self._order)
            asked.visible = max(0, asked.position - self._window + 1) if asked.kind != "resumed" else 0
            self._order.append(asked)
        self._asks_left -= 1
        return asked

    def report(self, asked: Asked, epoch: int, value: float | None) -> bool:
        """Record the trial's metric after ``epoch`` (1-based); returns whether ASHA stops it here.

        A non-finite value is not recorded (``Trial.report`` would refuse it; the trial fails);
        an epoch reported before (a retried trial repeats its epochs) is kept as first reported.
        """
        if value is None or not math.isfinite(value) or epoch in asked.reported:
            return False
        asked.reported[epoch] = value
        if epoch not in asked.stored_epochs:
            self._defer(lambda: self._storage.set_trial_intermediate_value(asked.trial_id, epoch, value))
        rung = self._rungs.rung_at(epoch) if self._rungs is not None and asked.judged else None
        if rung is None:
            return False
        seen = self._seen(asked.visible)
        if not self._rungs.stops(value, [t.rung_values[rung] for t in seen if rung in t.rung_values]):
            return False
        # the rung judges only once the completed trials show it ranks configs as their ends do
        ended = [t for t in seen if t.outcome.state == "completed" and t.outcome.value is not None]
        return self._rungs.trusted([(t.rung_values[rung], t.outcome.value) for t in ended if rung in t.rung_values])

    def tell(self, asked: Asked, outcome: Outcome) -> None:
        """End the trial: ``COMPLETE`` with its value, ``PRUNED`` with its last value, or ``FAIL``;
        user attributes ``epochs`` and, if any, ``reason``. The sampler learns it in position order."""
        if asked.outcome is not None:
            return
        epoch = None
        if self._spec.objective == "best" and outcome.state != "failed" and asked.reported:
            epoch = self._best_epoch(asked.reported)
            outcome = dataclasses.replace(outcome, value=asked.reported[epoch])
        asked.outcome = outcome
        self._check_failing(outcome)
        if self._rungs is not None:
            asked.rung_values = self._rungs.rung_values(asked.reported)
        self._defer(lambda: self._tell_stored(asked.trial_id, outcome, value_epoch=epoch))

    def _best_epoch(self, reported: dict[int, float]) -> int:
        """The epoch of the best reported value (the earliest of equals): ``objective: best``."""
        sign = -1.0 if self._spec.mode == "min" else 1.0
        return max(sorted(reported), key=lambda e: sign * reported[e])

    def _check_failing(self, outcome: Outcome) -> None:
        """Stop asking once ``fail_fast`` of this run's trials failed with one reason and none succeeded."""
        if outcome.state != "failed":
            self._succeeded = True
            return
        reason = outcome.reason or "no reason recorded"
        self._failures[reason] = count = self._failures.get(reason, 0) + 1
        if self._fail_fast and count >= self._fail_fast and not self._succeeded and self._stopped is None:
            self._stopped = f"its first {count} failed trials failed with the same reason and none succeeded: {reason}"

    # -- asking ------------------------------------------------------------------------------

    def _next(self) -> Asked | None:
        """A sampled config or a continuation for the next position, once the window allows it."""
        position = len(self._order)
        if not self._learn(max(0, position - self._window + 1)):
            return None
        if self._asks_left <= self._reserve:
            continued = self._continuation(max(0, position - self._window + 1))
            if continued is not None:
                self._memory.enqueue_trial(continued.params)
                sampled = self._memory.ask(self._distributions)
                return Asked(
                    self._space.to_adam_config(sampled.params),
                    dict(sampled.params),
                    "continued",
                    continues=continued,
                    sampled=sampled,
                )
        if len(self._known) + self._told < self._design:
            self._memory.enqueue_trial(design_point(self._distributions, self._samples, self._spec.seed))
        sampled = self._memory.ask(self._distributions)
        self._samples += 1
        return Asked(self._space.to_adam_config(sampled.params), dict(sampled.params), "sampled", sampled=sampled)

    def _learn(self, upto: int) -> bool:
        """Tell the sampler positions ``< upto``, in order; false if one of them is still running."""
        from optuna.trial import TrialState

        while self._told < upto:
            asked = self._order[self._told]
            if asked.outcome is None:
                return False
            for epoch, value in sorted(asked.reported.items()):
                asked.sampled.report(value, epoch)
            state = {"completed": TrialState.COMPLETE, "early-stopped": TrialState.PRUNED, "failed": TrialState.FAIL}
            value = asked.outcome.value if asked.outcome.state == "completed" else None
            self._memory.tell(asked.sampled, value, state=state[asked.outcome.state])
            self._told += 1
        return True

    def _seen(self, visible: int) -> list[Asked]:
        """The finished trials a trial with ``visible`` learns from: earlier runs', then positions ``< visible``."""
        return [*self._known, *self._order[:visible]]

    def _continuation(self, visible: int) -> Asked | None:
        """The early-stopped trial to continue: among those seen, not yet continued and not
        themselves continuations, one whose value at the rung where it stopped beats the value
        the best completed trial (by its final value; the baseline aside) had at that rung, so
        at that fidelity it looked better than the config the sweep would recommend. The best
        value at the highest rung first; any early-stopped trial qualifies when none completed.
        """
        seen = self._seen(visible)
        leader = None
        for t in seen:
            if t.outcome.state == "completed" and (
                leader is None or self._rungs.better(t.outcome.value, leader.outcome.value)
            ):
                leader = t
        rivals = leader.rung_values if leader is not None else {}
        already = {id(a.continues) for a in self._order if a.continues is not None}
        best: tuple[float, float, Asked] | None = None
        for t in seen:
            if (
                t.outcome.state != "early-stopped"
                or t.kind == "continued"
                or id(t) in already
                or not t.reported
                or t.number in self._continued
            ):
                continue
            epoch = max(t.reported)
            rung, value = self._rungs.rung_at(epoch), t.reported[epoch]
            if rung is None or (
                leader is not None and (rung not in rivals or not self._rungs.better(value, rivals[rung]))
            ):
                continue
            if best is None or rung > best[0] or (rung == best[0] and self._rungs.better(value, best[1])):
                best = (rung, value, t)
        return best[2] if best else None

    def _interrupted(self, trials: list[optuna.trial.FrozenTrial]) -> list[Asked]:
        """Trials a crashed run left ``RUNNING``, to hand out first; one created without its
        params (an older adamtune wrote them one by one) is retired as failed."""
        from optuna.trial import TrialState

        resumable = []
        for t in trials:
            if t.state != TrialState.RUNNING:
                continue
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, t.number)
            baseline = bool(t.user_attrs.get(BASELINE_ATTR))
            if not baseline and not self._distributions.keys() <= t.params.keys():
                reason = "the run that started it was interrupted before its config was recorded"
                self._defer(lambda tid=trial_id, r=reason: self._tell_stored(tid, Outcome("failed", None, 0, r)))
                continue
            kind: Kind = "baseline" if baseline else "continued" if CONTINUES_ATTR in t.user_attrs else "resumed"
            sampled = None
            if not baseline:
                self._memory.enqueue_trial(t.params)
                sampled = self._memory.ask(self._distributions)
            config = baseline_config(self._space) if baseline else self._space.to_adam_config(t.params)
            resumable.append(
                Asked(
                    config,
                    dict(t.params),
                    kind,
                    number=t.number,
                    trial_id=trial_id,
                    sampled=sampled,
                    stored_epochs=frozenset(t.intermediate_values),
                )
            )
        return resumable

    # -- the stored study --------------------------------------------------------------------

    def _create(self, asked: Asked) -> None:
        """Create the stored trial with its params and user attributes in one write."""
        import optuna

        attrs: dict[str, Any] = {
            key: asked.config[key] for key in CONFIG_ATTRS if key in asked.config
        }  # no algorithm key: adam
        attrs[CONFIG_TEXT_ATTR] = config_text(asked.config)  # for optuna-dashboard: 4 significant digits
        if asked.kind == "baseline":
            attrs[BASELINE_ATTR] = True
        if asked.continues is not None:
            attrs[CONTINUES_ATTR] = asked.continues.number
        template = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING,
            params=asked.params,
            distributions={name: self._distributions[name] for name in asked.params},
            user_attrs=attrs,
        )
        asked.trial_id = self._storage.create_new_trial(self._study_id, template_trial=template)
        asked.number = self._storage.get_trial_number_from_id(asked.trial_id)

    def _tell_stored(self, trial_id: int, outcome: Outcome, *, value_epoch: int | None = None) -> None:
        """End the stored trial (writes the storage directly: ``Study.tell`` re-reads the trial
        twice to check it, which costs more than the writes on SQLite; ``classify`` checked it).
        ``value_epoch``: the epoch its value was reported at, where not its last (``objective: best``)."""
        from optuna.trial import TrialState

        self._storage.set_trial_user_attr(trial_id, EPOCHS_ATTR, outcome.epochs)
        if value_epoch is not None:
            self._storage.set_trial_user_attr(trial_id, VALUE_EPOCH_ATTR, value_epoch)
        if outcome.reason:
            self._storage.set_trial_user_attr(trial_id, REASON_ATTR, outcome.reason)
        state = {"completed": TrialState.COMPLETE, "early-stopped": TrialState.PRUNED, "failed": TrialState.FAIL}[
            outcome.state
        ]
        values = None if outcome.state == "failed" or outcome.value is None else [outcome.value]
        self._storage.set_trial_state_values(trial_id, state, values)


def _state_name(state: optuna.trial.TrialState) -> str:
    """The outcome state (``completed``, ``early-stopped``, ``failed``) of a finished Optuna state."""
    return {"COMPLETE": "completed", "PRUNED": "early-stopped"}.get(state.name, "failed")
