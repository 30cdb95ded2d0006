"""The read models of sweeps: names, status, summary, trials, best configs, card, comparison, report.

Reading creates no store (see :meth:`Stores.readable`): ``tuner sweep show`` in an empty
folder writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.errors import SweepNotFoundError, SweepStateError, UserInputError
from tuner.records import SweepStatus, SweepSummary, TrialRecord
from tuner.review import Comparison, adam_card, analyze, compare, config_card, render_report

if TYPE_CHECKING:
    from tuner.service._stores import Stores
    from tuner.store import Sweep

__all__ = ["PARENT_CARDS", "SweepQueries"]

#: How many recommended configs a sweep's parent run carries (``best_config.json``); their MLflow
#: run ids and diagnostics are also copied to its study (:class:`tuner.records.MlflowIds`).
PARENT_CARDS = 5


class SweepQueries:
    """Answers about stored sweeps, from the queue, the studies and, for what a study does not
    hold (:class:`tuner.records.MlflowIds`), the MLflow store.

    A sweep is named by ``ref``: its queue id or its name (a sweep run directly has no
    queue entry).
    """

    def __init__(self, stores: Stores) -> None:
        self._stores = stores

    def names(self) -> list[str]:
        """Names of all sweeps: queued ones and those run directly."""
        stores = self._stores
        studies = stores.studies.names() if stores.readable("studies") else []
        queued = [s.name for s in stores.store.list()] if stores.readable("store") else []
        return sorted(set(studies) | set(queued))

    def status(self, ref: str) -> SweepStatus:
        """The sweep with queue id or name ``ref``.

        Raises:
            SweepNotFoundError: no such sweep.
        """
        return self.status_of(*self.find(ref))

    def statuses(self, state: str | None = None) -> list[SweepStatus]:
        """Every sweep's status, optionally only those in ``state``."""
        found = [self.status(name) for name in self.names()]
        return [s for s in found if state is None or s.state == state]

    def summary(self, name: str) -> SweepSummary:
        """The stored sweep ``name`` with every trial.

        Raises:
            SweepNotFoundError: no such sweep.
        """
        if not self.has_study(name):
            raise self._not_found(name)
        return self._stores.studies.summary(name)

    def trials(self, ref: str) -> list[TrialRecord]:
        """Every trial of the sweep with queue id or name ``ref``, by number (none while it is queued).

        Raises:
            SweepNotFoundError: no such sweep.
        """
        name, _ = self.find(ref)
        return list(self._stores.studies.summary(name).trials) if self.has_study(name) else []

    def best(self, ref: str, *, top: int = 1) -> list[dict[str, Any]]:
        """Config cards of the ``top`` best completed trials, best first (see :func:`tuner.review.config_card`).

        Raises:
            SweepNotFoundError: no such sweep.
            SweepStateError: no trial has completed yet.
        """
        name, _ = self.find(ref)
        cards = self.cards(self._stores.studies.summary(name), top) if self.has_study(name) else []
        if not cards:
            raise SweepStateError(f"sweep {name!r} has no completed trial yet; `tuner sweep show {name}` says why")
        return cards

    def cards(self, summary: SweepSummary, top: int) -> list[dict[str, Any]]:
        """Config cards of ``summary``'s ``top`` recommended trials, with their MLflow run ids where readable."""
        picked = summary.pick(top)
        run_ids = self._trial_runs(summary, [t.number for t in picked])
        return [config_card(summary, t, run_ids.get(t.number)) for t in picked]

    def _trial_runs(self, summary: SweepSummary, numbers: list[int]) -> dict[int, str]:
        """MLflow run ids of the sweep's trials, trial number -> run id: those its study holds
        when they cover ``numbers`` (no MLflow opened), else read from MLflow where readable."""
        stores, stored = self._stores, summary.mlflow.trial_runs
        if all(n in stored for n in numbers):
            return stored
        return stores.tracker.trial_run_ids(summary.name) if stores.readable("tracker") else {}

    def card(self, ref: str, *, batch_size: int | None = None) -> dict[str, Any]:
        """The Adam config card of the recommended trial (:func:`tuner.review.adam_card`): the best
        completed trial, or the best by mean once re-evaluated.

        Args:
            ref: the sweep's name or queue id.
            batch_size: add a config transferred to this batch size (square-root rule).

        Raises:
            SweepNotFoundError: no such sweep.
            SweepStateError: no trial has completed yet.
            UserInputError: ``batch_size`` cannot be transferred to (see :func:`tuner.review.adam_card`).
        """
        stores = self._stores
        name, _ = self.find(ref)
        summary = stores.studies.summary(name) if self.has_study(name) else None
        picked = summary.pick() if summary else []
        if not picked:
            raise SweepStateError(f"sweep {name!r} has no completed trial yet; `tuner sweep show {name}` says why")
        trial = picked[0]
        run_id = self._trial_runs(summary, [trial.number]).get(trial.number)
        diagnostics = summary.mlflow.diagnostics.get(trial.number)
        if diagnostics is None:
            diagnostics = stores.tracker.last_metrics(run_id, "adam_") if run_id else {}
        try:
            return adam_card(summary, trial, mlflow_run_id=run_id, diagnostics=diagnostics, batch_size=batch_size)
        except ValueError as e:
            raise UserInputError(str(e)) from None

    def comparison(self, ref: str) -> Comparison | None:
        """The recommended trial against the sweep's baseline (torch's default Adam); ``None``
        without a completed baseline.

        Raises:
            SweepNotFoundError: no such sweep.
        """
        name, _ = self.find(ref)
        if not self.has_study(name):
            return None
        summary = self._stores.studies.summary(name)
        return compare(summary, next(iter(summary.pick()), None))

    def report(self, ref: str, *, top_k: int = 10) -> str:
        """The sweep's report page (:func:`tuner.review.render_report`): one self-contained HTML file.

        Raises:
            SweepNotFoundError: no such sweep.
        """
        name, _ = self.find(ref)
        summary = self.summary(name)
        card = self.card(name) if summary.best() else None
        comparison = self.comparison(name)
        recommended = next(iter(summary.pick()), None)
        return render_report(
            summary,
            analyze(
                self._stores.studies.storage, name, recommended=None if recommended is None else recommended.number
            ),
            card=card,
            comparison=None if comparison is None else str(comparison),
            top_k=top_k,
        )

    def find(self, ref: str) -> tuple[str, Sweep | None]:
        """The name of the sweep with queue id or name ``ref``, and its queue entry (``None``
        for a sweep run directly).

        Raises:
            SweepNotFoundError: no such sweep.
        """
        try:
            sweep = self.queued(ref)
        except SweepNotFoundError:
            if not self.has_study(ref):
                raise self._not_found(ref) from None
            return ref, None
        return sweep.name, sweep

    def queued(self, ref: str) -> Sweep:
        """The queue entry with id or name ``ref``.

        Raises:
            SweepNotFoundError: none (or nothing was queued here yet).
        """
        stores = self._stores
        if not stores.readable("store"):
            raise SweepNotFoundError(f"no sweep has id or name {ref!r}; none was queued here yet")
        try:
            return stores.store.get(ref)
        except SweepNotFoundError:
            return stores.store.get_by_name(ref)

    def has_study(self, name: str) -> bool:
        """Whether a study named ``name`` is stored (reading creates no store)."""
        return self._stores.readable("studies") and self._stores.studies.exists(name)

    def _not_found(self, ref: str) -> SweepNotFoundError:
        known = ", ".join(self.names()) or "none yet"
        return SweepNotFoundError(f"no sweep named {ref!r}; known sweeps: {known}")

    def status_of(self, name: str, sweep: Sweep | None) -> SweepStatus:
        """The status of sweep ``name`` with its queue entry ``sweep`` (``None``: run directly)."""
        stores = self._stores
        summary = stores.studies.summary(name) if self.has_study(name) else None
        spec = summary.spec if summary else sweep.spec
        counts = {s: (summary.count(s) if summary else 0) for s in ("completed", "early-stopped", "failed", "running")}
        best = summary.pick() if summary else []
        comparison = compare(summary, best[0]) if best else None
        finished = counts["completed"] + counts["early-stopped"] + counts["failed"]
        if sweep is not None:
            state = sweep.state
            experiment_id, run_id = sweep.mlflow_experiment_id, sweep.mlflow_run_id
        else:
            state = "incomplete" if finished < spec["n_trials"] else "completed" if counts["completed"] else "failed"
            experiment_id, run_id = (summary.mlflow.experiment_id, summary.mlflow.run_id) if summary else (None, None)
            if run_id is None and stores.readable("tracker"):  # a sweep from before its study held them
                experiment_id, run_id = stores.tracker.experiment_id(name), stores.tracker.sweep_run_id(name)
        return SweepStatus(
            name=name,
            state=state,
            workload=spec["workload"],
            metric=spec["metric"],
            mode=spec["mode"],
            n_trials=spec["n_trials"],
            trials=counts,
            id=sweep.id if sweep else None,
            best={"trial": best[0].number, "value": best[0].value, "config": best[0].config} if best else None,
            baseline=None if comparison is None else {**comparison.as_dict(), "summary": str(comparison)},
            error=sweep.error if sweep else None,
            cancel_requested=sweep.cancel_requested if sweep else False,
            mlflow_experiment_id=experiment_id,
            mlflow_run_id=run_id,
            created_at=sweep.created_at.isoformat() if sweep else None,
            finished_at=sweep.finished_at.isoformat() if sweep and sweep.finished_at else None,
        )
