"""Re-evaluation: re-train a sweep's top configs with new seeds and pick the best by mean."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from tuner.errors import SweepStateError
from tuner.records import Outcome
from tuner.service._reading import PARENT_CARDS
from tuner.service._results import log_results
from tuner.spec import parse_spec

if TYPE_CHECKING:
    from tuner.records import SweepSummary
    from tuner.service._reading import SweepQueries
    from tuner.service._stores import Stores

__all__ = ["ReevaluationCallback", "Reevaluation"]

#: Told as each re-evaluation run ends: trial number, seed, outcome.
ReevaluationCallback = Callable[[int, int, Outcome], None]


class Reevaluation:
    """Re-trains the top configs of stored sweeps (:meth:`reevaluate`), or of a sweep whose trials
    just ended (:meth:`run`)."""

    def __init__(self, stores: Stores, queries: SweepQueries) -> None:
        self._stores = stores
        self._queries = queries

    def reevaluate(
        self, ref: str, *, top_k: int = 3, seeds: int = 3, on_done: ReevaluationCallback | None = None
    ) -> SweepSummary:
        """Re-train the sweep's ``top_k`` best completed trials with ``seeds`` new seeds each, for
        every epoch; the recommended config (best configs, the card, the report) becomes the best
        by mean. Runs already recorded are not repeated, so an interrupted call resumes.

        Each run is an MLflow child run of the sweep (``adamtune.kind = reevaluation``), and its
        final value is recorded in the study (:attr:`SweepSummary.reevaluations`). The seeds are
        the sweep's ``seed + 1 … seed + seeds``: never the one the trials trained with.

        Args:
            ref: the sweep's name or queue id.
            top_k: how many of the best completed trials (by their sweep value).
            seeds: new seeds per trial.
            on_done: called as each run ends, with the trial number, seed and outcome.

        Returns:
            The sweep's summary afterwards.

        Raises:
            SweepNotFoundError: no such sweep.
            SweepStateError: no trial has completed.
        """
        tracker = self._stores.tracker
        name, _ = self._queries.find(ref)
        summary = self._queries.summary(name)
        if not summary.best():
            raise SweepStateError(
                f"sweep {name!r} has no completed trial to re-evaluate; `tuner sweep show {name}` says why"
            )
        parent = tracker.sweep_run_id(name) or tracker.start_sweep(name, summary.spec)
        summary = self.run(summary, parent, top_k=top_k, seeds=seeds, on_done=on_done)
        log_results(self._stores, summary, parent)
        tracker.log_sweep_results(
            parent,
            files={
                "best_config.json": json.dumps({"best": self._queries.cards(summary, PARENT_CARDS)}, indent=2).encode()
            },
        )
        tracker.describe_sweep(parent, summary)  # the description names the new recommendation
        return summary

    def run(
        self, summary: SweepSummary, parent: str, *, top_k: int, seeds: int, on_done: ReevaluationCallback | None
    ) -> SweepSummary:
        """Re-train ``summary``'s ``top_k`` best with ``seeds`` new seeds each (those not recorded
        yet), as child runs of the MLflow run ``parent``; returns the summary afterwards."""
        from tuner.executor import Rerun, rerun

        stores = self._stores
        spec = parse_spec(summary.spec)
        runs = [
            Rerun(trial.number, seed, {**trial.config, "baseline": trial.baseline})
            for trial in summary.best(top_k)
            for seed in range(spec.seed + 1, spec.seed + 1 + seeds)
            if seed not in summary.reevaluations.get(trial.number, {})
        ]

        def done(run: Rerun, epochs: list[tuple[int, dict[str, float]]], outcome: Outcome) -> None:
            run_id = stores.tracker.start_reevaluation(summary.name, parent, run.number, run.seed, run.config)
            stores.tracker.log_trial(run_id, epochs, state=outcome.state, reason=outcome.reason)
            value = outcome.value if outcome.state == "completed" else None
            stores.studies.record_reevaluation(summary.name, run.number, run.seed, value)
            if on_done is not None:
                on_done(run.number, run.seed, outcome)

        rerun(spec, runs, on_done=done, ray_address=stores.settings.ray_address)
        return stores.studies.summary(summary.name)
