"""The sweep service: the one face the CLI, the REST API and :func:`tuner.sweep` call.

It wires the service's parts on one set of :class:`Stores` (the queue, the Optuna studies,
the MLflow store and its writer process) and forwards to them: :class:`SweepRunner` runs a
sweep, :class:`SweepQueue` submits, cancels and runs queued ones, :class:`Reevaluation`
re-trains the top configs, :class:`SweepQueries` answers reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tuner.service._queue import SweepQueue
from tuner.service._reading import SweepQueries
from tuner.service._reevaluation import Reevaluation, ReevaluationCallback
from tuner.service._running import Executor, PhaseCallback, ProgressFactory, ResultCallback, SweepRunner
from tuner.service._stores import Stores

if TYPE_CHECKING:
    from tuner.records import SweepStatus, SweepSummary, TrialRecord
    from tuner.review import Comparison
    from tuner.settings import Settings
    from tuner.spec import SweepSpec
    from tuner.store import Sweep, SweepStore
    from tuner.study import StudyStore
    from tuner.tracking import Tracker, TrackingWriter

__all__ = ["SweepService"]


class SweepService:
    """Sweeps across the queue, the Optuna studies and the MLflow store.

    Reading (names, status, trials, best) creates no store: a store whose SQLite file
    does not exist yet reads as empty, so ``tuner sweep show`` in an empty folder
    writes nothing. Running and submitting create the stores they need.

    Args:
        settings: where the stores and the Ray cluster are.
        stores: the stores to work on (tests build :class:`Stores` with their own); by
            default ``Stores(settings)``, each opened on first use.
        executor: runs a sweep's trials (:func:`tuner.executor.execute` by default).
    """

    def __init__(self, settings: Settings, *, stores: Stores | None = None, executor: Executor | None = None) -> None:
        self.settings = settings
        self.stores = stores or Stores(settings)
        self._queries = SweepQueries(self.stores)
        self._reevaluation = Reevaluation(self.stores, self._queries)
        self._runner = SweepRunner(self.stores, self._queries, self._reevaluation, executor=executor)
        self._queue = SweepQueue(self.stores, self._queries, self._runner)

    @property
    def store(self) -> SweepStore:
        """The sweep queue (``tuner.db``)."""
        return self.stores.store

    @property
    def studies(self) -> StudyStore:
        """The Optuna studies (one per sweep)."""
        return self.stores.studies

    @property
    def tracker(self) -> Tracker:
        """The MLflow store (one experiment per sweep)."""
        return self.stores.tracker

    @property
    def writer(self) -> TrackingWriter:
        """The child process that writes trials to MLflow while sweeps run."""
        return self.stores.writer

    def open(self) -> None:
        """Open the stores and start the MLflow writer now (:meth:`Stores.open`)."""
        self.stores.open()

    def close(self) -> None:
        """Stop the MLflow writer process once what it was sent is written (a later call that
        needs it starts a new one): for a process done with its sweep (``tuner sweep run``,
        :func:`tuner.sweep`)."""
        self.stores.close_writer()

    # -- running (SweepRunner, Reevaluation) ----------------------------------------------

    def run(
        self,
        spec: SweepSpec,
        *,
        resume: bool = False,
        progress: ProgressFactory | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_reevaluated: ReevaluationCallback | None = None,
        release: bool = False,
        on_phase: PhaseCallback | None = None,
        on_result: ResultCallback | None = None,
    ) -> SweepSummary:
        """Run a sweep to completion (blocking); see :meth:`SweepRunner.run`."""
        return self._runner.run(
            spec,
            resume=resume,
            progress=progress,
            should_stop=should_stop,
            on_reevaluated=on_reevaluated,
            release=release,
            on_phase=on_phase,
            on_result=on_result,
        )

    def reevaluate(
        self, ref: str, *, top_k: int = 3, seeds: int = 3, on_done: ReevaluationCallback | None = None
    ) -> SweepSummary:
        """Re-train the sweep's top configs with new seeds; see :meth:`Reevaluation.reevaluate`."""
        return self._reevaluation.reevaluate(ref, top_k=top_k, seeds=seeds, on_done=on_done)

    # -- the queue (SweepQueue) -----------------------------------------------------------

    def run_queued(self, sweep: Sweep) -> None:
        """Run a sweep the queue handed out and record how it ended; see :meth:`SweepQueue.run_queued`."""
        self._queue.run_queued(sweep)

    def submit(self, spec: SweepSpec) -> SweepStatus:
        """Queue a sweep; see :meth:`SweepQueue.submit`."""
        return self._queue.submit(spec)

    def cancel(self, ref: str) -> SweepStatus:
        """Cancel a queued sweep, or ask a running one to stop; see :meth:`SweepQueue.cancel`."""
        return self._queue.cancel(ref)

    # -- reading (SweepQueries) -----------------------------------------------------------

    def names(self) -> list[str]:
        """Names of all sweeps: queued ones and those run directly."""
        return self._queries.names()

    def status(self, ref: str) -> SweepStatus:
        """The sweep with queue id or name ``ref``; see :meth:`SweepQueries.status`."""
        return self._queries.status(ref)

    def statuses(self, state: str | None = None) -> list[SweepStatus]:
        """Every sweep's status, optionally only those in ``state``."""
        return self._queries.statuses(state)

    def summary(self, name: str) -> SweepSummary:
        """The stored sweep ``name`` with every trial; see :meth:`SweepQueries.summary`."""
        return self._queries.summary(name)

    def trials(self, ref: str) -> list[TrialRecord]:
        """Every trial of the sweep, by number; see :meth:`SweepQueries.trials`."""
        return self._queries.trials(ref)

    def best(self, ref: str, *, top: int = 1) -> list[dict[str, Any]]:
        """Config cards of the ``top`` best completed trials; see :meth:`SweepQueries.best`."""
        return self._queries.best(ref, top=top)

    def card(self, ref: str, *, batch_size: int | None = None) -> dict[str, Any]:
        """The Adam config card of the recommended trial; see :meth:`SweepQueries.card`."""
        return self._queries.card(ref, batch_size=batch_size)

    def comparison(self, ref: str) -> Comparison | None:
        """The recommended trial against the baseline; see :meth:`SweepQueries.comparison`."""
        return self._queries.comparison(ref)

    def report(self, ref: str, *, top_k: int = 10) -> str:
        """The sweep's self-contained HTML report page; see :meth:`SweepQueries.report`."""
        return self._queries.report(ref, top_k=top_k)
