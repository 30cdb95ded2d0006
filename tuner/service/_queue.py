"""The queue's side of the service: submit and cancel sweeps, and run one the queue handed out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner.errors import SweepExistsError
from tuner.spec import SweepSpec, parse_spec
from tuner.workload import check_workload

if TYPE_CHECKING:
    from tuner.records import SweepStatus
    from tuner.service._reading import SweepQueries
    from tuner.service._running import SweepRunner
    from tuner.service._stores import Stores
    from tuner.store import Sweep

__all__ = ["SweepQueue"]


class SweepQueue:
    """Queued sweeps: :meth:`submit` and :meth:`cancel` write the queue; a runner
    (:class:`~tuner.service.QueueRunner`) calls :meth:`run_queued`."""

    def __init__(self, stores: Stores, queries: SweepQueries, runner: SweepRunner) -> None:
        self._stores = stores
        self._queries = queries
        self._runner = runner

    def submit(self, spec: SweepSpec) -> SweepStatus:
        """Queue a sweep; a runner picks it up.

        Raises:
            SpecError: the workload fails its checks (:func:`tuner.workload.check_workload`).
            SweepExistsError: a sweep of that name is queued or stored already.
        """
        check_workload(spec.workload, spec.workload_args, metric=spec.metric, execution=spec.execution)
        if self._stores.studies.exists(spec.name):
            raise SweepExistsError(f"sweep {spec.name!r} already exists; give the spec another name")
        sweep = self._stores.store.submit(spec.name, spec.model_dump(mode="json"))
        return self._queries.status_of(sweep.name, sweep)

    def cancel(self, ref: str) -> SweepStatus:
        """Cancel a queued sweep at once, or ask a running one to stop.

        Raises:
            SweepNotFoundError: no queued sweep with that id or name.
            SweepStateError: the sweep already ended.
        """
        sweep = self._stores.store.request_cancel(self._queries.queued(ref).id)
        return self._queries.status_of(sweep.name, sweep)

    def run_queued(self, sweep: Sweep) -> None:
        """Run a sweep the queue handed out (state ``running``) and record how it ended.

        A sweep whose study exists (a restart after a crash) is resumed. Errors, and a run in
        which no trial completed, end the sweep as ``failed`` with the error text; a cancel
        request ends it as ``cancelled``.
        """
        store, studies, tracker = self._stores.store, self._stores.studies, self._stores.tracker
        spec = parse_spec(sweep.spec, allow_paths=False)  # queued specs name registered workloads only
        experiment_id = tracker.experiment_id(spec.name, create=True)
        try:
            summary = self._runner.run(
                spec, resume=studies.exists(spec.name), should_stop=lambda: store.get(sweep.id).cancel_requested
            )
        except Exception as e:  # noqa: BLE001 - any failure of one sweep is recorded, the runner goes on
            store.finish(sweep.id, "failed", error=f"{type(e).__name__}: {e}")
            return
        finally:
            run_id = tracker.sweep_run_id(spec.name)
            if run_id:
                store.set_tracking(sweep.id, experiment_id=experiment_id, run_id=run_id)
        if store.get(sweep.id).cancel_requested:
            store.finish(sweep.id, "cancelled")
        elif not summary.best():
            store.finish(
                sweep.id, "failed", error=f"no trial completed (`tuner sweep show {spec.name}` lists the reasons)"
            )
        else:
            store.finish(sweep.id, "completed")
