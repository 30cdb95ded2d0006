"""Running a sweep: checks, stores, Ray, the executor, resume's repair of MLflow runs, the
lr range test, re-evaluation, and the analysis and best configs on the parent run."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

from tuner.errors import SpecError, SweepExistsError, SweepFailedError, SweepInterruptedError
from tuner.executor import Observers, SweepObserver, connect, execute, lr_range, lr_range_here
from tuner.records import MlflowIds
from tuner.review import warm_analysis
from tuner.service._reading import PARENT_CARDS
from tuner.service._results import log_results
from tuner.spec import SweepSpec, parse_spec
from tuner.storage import check_stores
from tuner.workload import check_workload

if TYPE_CHECKING:
    from pathlib import Path

    import optuna

    from tuner.records import SweepSummary
    from tuner.service._reading import SweepQueries
    from tuner.service._reevaluation import Reevaluation, ReevaluationCallback
    from tuner.service._stores import Stores

__all__ = ["Executor", "PhaseCallback", "ProgressFactory", "ResultCallback", "SweepRunner"]

#: Builds the progress observer of a run from the spec and the trials already finished.
ProgressFactory = Callable[[SweepSpec, int], AbstractContextManager[SweepObserver]]
#: Told, in words, each wait of a run that no progress view covers ("starting Ray…", "making the
#: analysis…"), just before it starts: the caller decides whether and where to show it.
PhaseCallback = Callable[[str], None]
#: Told the sweep's summary once its trials (and re-evaluations) are done, before the analysis is
#: made and logged: ``tuner sweep run`` prints its result then, off the analysis's path.
ResultCallback = Callable[["SweepSummary"], None]


class Executor(Protocol):
    """Runs a sweep's new trials: :func:`tuner.executor.execute`'s signature (tests and benchmarks
    pass their own, e.g. ``functools.partial(execute, reuse_actors=False)``)."""

    def __call__(
        self,
        spec: SweepSpec,
        *,
        can_pack: bool,
        n_trials: int,
        storage: optuna.storages.BaseStorage,
        observer: SweepObserver,
        ray_storage: Path,
        ray_address: str | None,
        should_stop: Callable[[], bool] | None,
    ) -> str | None: ...


class SweepRunner:
    """Runs sweeps to completion on ``stores`` with ``executor`` (:func:`tuner.executor.execute`
    unless given), re-evaluating with ``reevaluation`` where the spec asks."""

    def __init__(
        self, stores: Stores, queries: SweepQueries, reevaluation: Reevaluation, *, executor: Executor | None = None
    ) -> None:
        self._stores = stores
        self._queries = queries
        self._reevaluation = reevaluation
        self._execute: Executor = executor or execute

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
        """Run a sweep to completion (blocking) and attach its analysis and best configs to the parent run.

        With the spec's ``reevaluate``, the top configs are then re-trained with new seeds
        (:class:`~tuner.service.Reevaluation`) before the best is picked. The workload is imported
        and checked once, here; the executor is told whether it can pack.

        Args:
            spec: the validated spec.
            resume: continue the stored sweep of the same name: finished trials are
                kept, trials left running by a crash are re-run (same number, same
                config), and trials start until ``spec.n_trials`` have finished.
            progress: builds an observer that shows progress (none by default).
            should_stop: polled while trials run; true cancels the sweep (running
                trials stop and are recorded as failed, no new ones start).
            on_reevaluated: called as each re-evaluation run ends (progress).
            release: once the trials are done, disconnect from Ray (a local Ray stops) on a
                thread while the analysis is made: for a process that runs one sweep and exits
                (``tuner sweep run``, then :meth:`SweepService.close`), not for a server.
            on_phase: told each wait outside the trials, in words, as it starts (starting or
                connecting to Ray, the lr range test, re-evaluation, making the analysis).
            on_result: told the summary once the trials and re-evaluations are done, before the
                analysis is made and logged to the parent run (about 1-2 s; this call returns
                after it); what it raises ends the run there, the parent run left running.

        Returns:
            The sweep's summary after the run.

        Raises:
            SpecError: the workload fails its checks (:func:`tuner.workload.check_workload`:
                import, kind, ``workload_args``, metric, packing).
            SweepExistsError: the sweep exists and ``resume`` is false.
            StoreError: ``TUNER_HOME`` or a store cannot be written (:func:`tuner.storage.check_stores`;
                before any trial, and nothing was created).
            SweepInterruptedError: Ray stopped early (Ctrl-C) without a cancel.
            SweepFailedError: ``spec.fail_fast`` trials failed with one reason and none succeeded; the
                sweep stopped asking (the study and MLflow hold the trials; ``--resume`` continues).
            TrackingError: writing the trials' MLflow runs failed (the study holds the trials).
        """
        stores = self._stores
        phase = on_phase or (lambda message: None)
        phase(f"checking the workload {spec.workload}…")  # the first line: importing it and torch takes seconds
        info = check_workload(spec.workload, spec.workload_args, metric=spec.metric, execution=spec.execution)
        if spec.lr_range_test is True and not info.facts and not (resume and stores.studies.exists(spec.name)):
            raise SpecError(
                f"invalid sweep spec: lr_range_test: needs a Workload class, but {spec.workload} is a function "
                "train(trial) (the test reads each step's training loss, which only a Workload's own loop has); "
                "set lr_range_test: false"
            )
        data, facts = info.fingerprint, {**info.facts, "data": info.fingerprint}
        check_stores(stores.settings, write=True)
        if not resume and stores.studies.exists(spec.name):
            raise SweepExistsError(
                f"sweep {spec.name!r} already exists; pass --resume to continue it, or give the spec another name"
            )
        address = stores.settings.ray_address
        # With local Ray the lr range test runs here, on the workload built to check it, while Ray
        # starts (a Ray task would first start a worker process: ~4 s); on a cluster, on a worker.
        test_here = (
            address is None
            and info.built is not None
            and not (resume and stores.studies.exists(spec.name))
            and spec.lr_range_wanted(workload_class=True)
        )
        if test_here:
            phase("running the lr range test while Ray starts…")
        phase("starting Ray…" if address is None else f"connecting to Ray at {address}…")
        # MLflow's store opens in the writer process while Ray starts on this thread: a local Ray's
        # processes are tied to the thread that started them (Linux's parent-death signal).
        writer = stores.writer  # started here: MLflow loads there, never in this process
        with ThreadPoolExecutor(2, thread_name_prefix="beside-ray") as pool:
            writer_ready = pool.submit(writer.flush)
            range_ready = pool.submit(lr_range_here, spec, info.built) if test_here else None
            connect(spec, stores.settings.ray_address)
            writer_ready.result()
            if range_ready is not None:
                range_ready.exception()  # waited for here; raised where the sweep asks for it
        can_pack, workload_class = info.can_pack, bool(info.facts)
        del info  # the built workload (its data) is not held while the trials run
        return self._run(
            spec,
            data,
            facts,
            can_pack=can_pack,
            workload_class=workload_class,
            range_found=range_ready,
            progress=progress,
            should_stop=should_stop,
            on_reevaluated=on_reevaluated,
            release=release,
            phase=phase,
            on_result=on_result,
        )

    def _run(
        self,
        spec: SweepSpec,
        data: dict[str, str],
        facts: dict[str, Any],
        *,
        can_pack: bool,
        workload_class: bool,
        range_found: Future[dict[str, Any]] | None,
        progress: ProgressFactory | None,
        should_stop: Callable[[], bool] | None,
        on_reevaluated: ReevaluationCallback | None,
        release: bool,
        phase: PhaseCallback,
        on_result: ResultCallback | None,
    ) -> SweepSummary:
        stores = self._stores
        studies, tracker, settings = stores.studies, stores.tracker, stores.settings
        if studies.exists(spec.name):  # resume (run() refused it otherwise)
            stored = studies.summary(spec.name)
            # The study's own space and rungs, whatever the new n_trials would cut or fit: a study
            # whose space changed midway would hold trials its sampler cannot read.
            kept = parse_spec(stored.spec)
            spec = kept.model_copy(update={"n_trials": spec.n_trials, "asha": kept.asha_settings})
            done = stored.finished
            studies.set_workload_facts(spec.name, facts)
            tracker.experiment_id(spec.name, create=True)  # tags an older adamtune's experiment
            parent = tracker.sweep_run_id(spec.name) or tracker.start_sweep(
                spec.name, spec.model_dump(mode="json"), data=data
            )
            self._end_trial_runs(stored, parent)
        else:
            found = None
            wanted = spec.lr_range_wanted(workload_class=workload_class)
            if wanted:
                if range_found is None:
                    phase("running the lr range test…")
                try:
                    spec, found = self._centre_lr(spec, range_found)
                except SpecError as e:
                    if spec.lr_range_test is True:  # asked for: its failure is the answer
                        raise
                    phase(f"lr range test skipped, lr searched over the space's whole range: {e}")
                    wanted = False
            spec = spec.model_copy(update={"lr_range_test": wanted})  # a new sweep stores what it did
            studies.create(spec, workload_facts=facts, lr_range=found)
            done = 0
            parent = tracker.start_sweep(spec.name, spec.model_dump(mode="json"), data=data)
        tracked = MlflowIds(tracker.experiment_id(spec.name), parent)
        studies.record_mlflow(spec.name, tracked)  # readers need not open MLflow for them

        remaining = spec.n_trials - done
        stopped = None
        if remaining > 0:
            # The analysis's one-time imports and first drawing (~1.7 s here) are paid beside the
            # trials, off the path from the last trial to the summary.
            threading.Thread(target=_warm_analysis, name="warm-analysis", daemon=True).start()
            view = progress(spec, done) if progress else nullcontext(None)
            tracking = stores.writer.events(spec.name, parent)
            try:
                with view as observer:
                    stopped = self._execute(
                        spec,
                        can_pack=can_pack,
                        n_trials=remaining,
                        storage=studies.storage,
                        observer=Observers(tracking, *([observer] if observer else [])),
                        ray_storage=settings.ray_storage,
                        ray_address=settings.ray_address,
                        should_stop=should_stop,
                    )
            finally:
                tracking.close()
        summary = studies.summary(spec.name)
        if stopped is not None and not (should_stop and should_stop()):  # a cancel's failures are not the workload's
            raise SweepFailedError(
                f"sweep {spec.name!r} stopped after {summary.finished} of {spec.n_trials} trials: {stopped}. Fix the "
                f"workload (`tuner sweep show {spec.name}` lists each trial's reason), then `tuner sweep run SPEC "
                "--resume` continues it; the spec's fail_fast sets how many alike failures stop a sweep (0: never)"
            )
        if summary.finished < spec.n_trials and not (should_stop and should_stop()):
            raise SweepInterruptedError(
                f"sweep {spec.name!r} stopped after {summary.finished} of {spec.n_trials} trials; "
                "`tuner sweep run SPEC --resume` continues it"
            )
        if spec.reevaluate is not None and summary.best() and not (should_stop and should_stop()):
            phase(f"re-evaluating the top {spec.reevaluate.top_k} configs with {spec.reevaluate.seeds} new seeds each…")
            summary = self._reevaluation.run(
                summary, parent, top_k=spec.reevaluate.top_k, seeds=spec.reevaluate.seeds, on_done=on_reevaluated
            )
        releasing = threading.Thread(target=self._release, name="release") if release else None
        if releasing is not None:
            releasing.start()  # Ray's shutdown (~1.3 s), overlapped with the analysis below
        if on_result is not None:
            on_result(summary)
        phase("making the analysis…")
        log_results(stores, summary, parent)
        summary = self._record_mlflow(summary, tracked)
        tracker.finish_sweep(parent, summary, self._queries.cards(summary, PARENT_CARDS))
        if releasing is not None:
            releasing.join()
        return summary

    def _centre_lr(self, spec: SweepSpec, ran: Future[Any] | None) -> tuple[SweepSpec, dict[str, Any]]:
        """Centre the spec's lr range on the lr range test's suggestion: the test ``ran`` already
        (in this process, :func:`tuner.executor.lr_range_here`), else it runs now on a Ray worker
        (:func:`tuner.executor.lr_range`); returns the new spec and what the test found
        (:attr:`SweepSummary.lr_range`).

        Raises:
            SpecError: the test could not run.
        """
        found = ran.result() if ran is not None else lr_range(spec, ray_address=self._stores.settings.ray_address)
        space = spec.search_space.centred_lr(found.suggested)
        lr = space.params["lr"]
        return spec.model_copy(update={"search_space": space}), {
            "steps": len(found.lrs),
            "epochs": found.epochs,
            "lr_min": found.lrs[0],
            "lr_max": found.lrs[-1],
            "steepest": found.steepest,
            "suggested": found.suggested,
            "low": lr.low,
            "high": lr.high,
        }

    def _release(self) -> None:
        """Disconnect from Ray (a local Ray's shutdown takes about a second here)."""
        from tuner.executor import disconnect

        disconnect()

    def _record_mlflow(self, summary: SweepSummary, tracked: MlflowIds) -> SweepSummary:
        """Copy the ended sweep's trial run ids and the last ``adam_*`` diagnostics of its
        :data:`PARENT_CARDS` recommended trials (which the config cards show) to its study beside
        ``tracked`` (the experiment and parent run ids; :class:`~tuner.records.MlflowIds`); returns
        ``summary`` holding them."""
        tracker = self._stores.tracker
        runs = tracker.trial_run_ids(summary.name)
        recommended = [t.number for t in summary.pick(PARENT_CARDS) if t.number in runs]
        diagnostics = {n: tracker.last_metrics(runs[n], "adam_") for n in recommended}
        tracked = dataclasses.replace(tracked, trial_runs=runs, diagnostics=diagnostics)
        self._stores.studies.record_mlflow(summary.name, tracked)
        return dataclasses.replace(summary, mlflow=tracked)

    def _end_trial_runs(self, summary: SweepSummary, parent: str) -> None:
        """Give every finished trial of a resumed sweep its ended MLflow run, from the study.

        The study is the record: a crash can kill the driver after a trial was told to
        Optuna but before the MLflow writer ended its run (or started it). Such a run is
        ended now with the study's state and reason; a missing one is created with the
        trial's config and last value.
        """
        tracker = self._stores.tracker
        runs = tracker.trial_runs(summary.name)
        metric = summary.spec["metric"]
        for trial in summary.trials:
            if trial.state == "running" or not trial.config:
                continue  # re-run by this run
            run_id, state = runs.get(trial.number, (None, None))
            if state is not None:
                continue
            if run_id is None:
                config = {**trial.config, "baseline": trial.baseline}
                run_id = tracker.start_trial(summary.name, parent, trial.number, config, replace=False)
                if trial.value is not None:
                    tracker.log_epoch(run_id, {metric: trial.value}, trial.epochs)
            tracker.end_trial(run_id, trial.state, trial.reason)


def _warm_analysis() -> None:
    """:func:`tuner.review.warm_analysis`, its failure left to the analysis itself (which notes
    what it could not draw)."""
    try:
        warm_analysis()
    except Exception:  # noqa: BLE001 - a thread's error would only be printed; the analysis reports it
        return
