"""The sweep service: submits, runs, lists, shows, cancels and exports sweeps.

It is the one place that knows all three stores: the queue (``tuner.store``,
our SQL tables), the studies (Optuna) and the tracker (MLflow). The CLI and the
REST API are thin faces over it.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from tuner.baseline import Comparison, compare
from tuner.errors import SpecError, SweepExistsError, SweepInterruptedError, SweepNotFoundError, SweepStateError, UserInputError
from tuner.executor import Observers, Outcome, SweepObserver, connect
from tuner.export import config_card
from tuner.records import SweepStatus, SweepSummary, TrialRecord
from tuner.settings import Settings
from tuner.spec import SweepSpec, parse_spec
from tuner.storage import check_stores
from tuner.study import StudyStore
from tuner.tracking import Tracker
from tuner.workload import check_workload

if TYPE_CHECKING:
    from tuner.store import Sweep, SweepStore
    from tuner.tracking_writer import TrackingWriter

__all__ = ["ProgressFactory", "ReevaluationCallback", "SweepService"]

#: Builds the progress observer of a run from the spec and the trials already finished.
ProgressFactory = Callable[[SweepSpec, int], AbstractContextManager[SweepObserver]]
#: Told as each re-evaluation run ends: trial number, seed, outcome.
ReevaluationCallback = Callable[[int, int, Outcome], None]


class SweepService:
    """Sweeps across the queue, the Optuna studies and the MLflow store.

    Reading (names, status, trials, best) creates no store: a store whose SQLite file
    does not exist yet reads as empty, so ``tuner sweep show`` in an empty folder
    writes nothing. Running and submitting create the stores they need.

    Args:
        settings: where the stores and the Ray cluster are.
        store, studies, tracker: injected stores (tests pass their own); built
            from ``settings`` on first use otherwise.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: SweepStore | None = None,
        studies: StudyStore | None = None,
        tracker: Tracker | None = None,
    ) -> None:
        self.settings = settings
        for name, value in (("store", store), ("studies", studies), ("tracker", tracker)):
            if value is not None:
                self.__dict__[name] = value  # pre-fill the cached_property

    @cached_property
    def store(self) -> SweepStore:
        """The sweep queue (``tuner.db``)."""
        from tuner.store import SweepStore

        return SweepStore(self.settings.database_url)

    @cached_property
    def studies(self) -> StudyStore:
        """The Optuna studies (one per sweep)."""
        return StudyStore(self.settings.study_storage)

    @cached_property
    def tracker(self) -> Tracker:
        """The MLflow store (one experiment per sweep)."""
        return Tracker(self.settings.tracking_uri, self.settings.artifact_root, retry_seconds=self.settings.mlflow_retry_seconds)

    def open(self) -> None:
        """Open the three stores and start the MLflow writer now rather than on first use.

        ``tuner serve`` calls it before its threads start: building a store lazily is
        not thread-safe, and a bad URL then fails at start, not at the first request.

        Raises:
            StoreError: ``TUNER_HOME`` or a store cannot be written (:func:`tuner.storage.check_stores`).
        """
        check_stores(self.settings, write=True)
        for name in ("store", "studies", "tracker", "writer"):
            getattr(self, name)  # a cached_property: the first access builds it
        self.writer.flush()  # up and connected

    @cached_property
    def writer(self) -> TrackingWriter:
        """The child process that writes trials to MLflow while sweeps run."""
        from tuner.tracking_writer import TrackingWriter

        return TrackingWriter(
            self.settings.tracking_uri, self.settings.artifact_root, retry_seconds=self.settings.mlflow_retry_seconds
        )

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        spec: SweepSpec,
        *,
        resume: bool = False,
        progress: ProgressFactory | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_reevaluated: ReevaluationCallback | None = None,
        release: bool = False,
    ) -> SweepSummary:
        """Run a sweep to completion (blocking) and attach its analysis and best configs to the parent run.

        With the spec's ``reevaluate``, the top configs are then re-trained with new seeds
        (:meth:`reevaluate`) before the best is picked.

        Args:
            spec: the validated spec.
            resume: continue the stored sweep of the same name: finished trials are
                kept, trials left running by a crash are re-run (same number, same
                config), and trials start until ``spec.n_trials`` have finished.
            progress: builds an observer that shows progress (none by default).
            should_stop: polled while trials run; true cancels the sweep (running
                trials stop and are recorded as failed, no new ones start).
            on_reevaluated: called as each re-evaluation run ends (progress).
            release: once the trials are done, stop the MLflow writer process and disconnect
                from Ray (a local Ray stops) on a thread while the analysis is made: for a
                process that runs one sweep and exits (``tuner sweep run``), not for a server.

        Returns:
            The sweep's summary after the run.

        Raises:
            SpecError: the workload fails its checks (:func:`tuner.workload.check_workload`:
                import, kind, ``workload_args``, metric, packing).
            SweepExistsError: the sweep exists and ``resume`` is false.
            StoreError: ``TUNER_HOME`` or a store cannot be written (:func:`tuner.storage.check_stores`;
                before any trial, and nothing was created).
            SweepInterruptedError: Ray stopped early (Ctrl-C) without a cancel.
            TrackingError: writing the trials' MLflow runs failed (the study holds the trials).
        """
        info = check_workload(spec.workload, spec.workload_args, metric=spec.metric, execution=spec.execution)
        if spec.lr_range_test and not info.facts and not (resume and self.studies.exists(spec.name)):
            raise SpecError(
                f"invalid sweep spec: lr_range_test: needs a Workload class, but {spec.workload} is a function "
                "train(trial) (the test reads each step's training loss, which only a Workload's own loop has); "
                "set lr_range_test: false"
            )
        data, facts = info.fingerprint, {**info.facts, "data": info.fingerprint}
        check_stores(self.settings, write=True)
        if not resume and self.studies.exists(spec.name):
            raise SweepExistsError(
                f"sweep {spec.name!r} already exists; pass --resume to continue it, or give the spec another name"
            )
        # MLflow's store opens on a thread while Ray starts on this one: a local Ray's processes
        # are tied to the thread that started them (Linux's parent-death signal), so not a pool's.
        with ThreadPoolExecutor(1, thread_name_prefix="open-tracker") as pool:
            tracker_ready = pool.submit(lambda: self.tracker)
            connect(spec, self.settings.ray_address)
            tracker_ready.result()
        return self._run(spec, data, facts, progress=progress, should_stop=should_stop,
                         on_reevaluated=on_reevaluated, release=release)

    def _run(
        self,
        spec: SweepSpec,
        data: dict[str, str],
        facts: dict[str, Any],
        *,
        progress: ProgressFactory | None,
        should_stop: Callable[[], bool] | None,
        on_reevaluated: ReevaluationCallback | None,
        release: bool,
    ) -> SweepSummary:
        if self.studies.exists(spec.name):  # resume (run() refused it otherwise)
            stored = self.studies.summary(spec.name)
            # The study's own space and rungs, whatever the new n_trials would cut or fit: a study
            # whose space changed midway would hold trials its sampler cannot read.
            kept = parse_spec(stored.spec)
            spec = kept.model_copy(update={"n_trials": spec.n_trials, "asha": kept.asha_settings})
            done = stored.finished
            self.studies.set_workload_facts(spec.name, facts)
            self.tracker.experiment_id(spec.name, create=True)  # tags an older adamtune's experiment
            parent = self.tracker.sweep_run_id(spec.name) or self.tracker.start_sweep(
                spec.name, spec.model_dump(mode="json"), data=data
            )
            self._end_trial_runs(stored, parent)
        else:
            found = None
            if spec.lr_range_test:
                spec, found = self._centre_lr(spec)
            self.studies.create(spec, workload_facts=facts, lr_range=found)
            done = 0
            parent = self.tracker.start_sweep(spec.name, spec.model_dump(mode="json"), data=data)

        remaining = spec.n_trials - done
        if remaining > 0:
            from tuner.executor import execute

            view = progress(spec, done) if progress else nullcontext(None)
            tracking = self.writer.events(spec.name, parent)
            try:
                with view as observer:
                    execute(
                        spec,
                        n_trials=remaining,
                        storage=self.studies.storage,
                        observer=Observers(tracking, *([observer] if observer else [])),
                        ray_storage=self.settings.ray_storage,
                        ray_address=self.settings.ray_address,
                        should_stop=should_stop,
                    )
            finally:
                tracking.close()
        summary = self.studies.summary(spec.name)
        if summary.finished < spec.n_trials and not (should_stop and should_stop()):
            raise SweepInterruptedError(
                f"sweep {spec.name!r} stopped after {summary.finished} of {spec.n_trials} trials; "
                "`tuner sweep run SPEC --resume` continues it"
            )
        if spec.reevaluate is not None and summary.best() and not (should_stop and should_stop()):
            summary = self._reevaluate(summary, parent, top_k=spec.reevaluate.top_k, seeds=spec.reevaluate.seeds, on_done=on_reevaluated)
        releasing = threading.Thread(target=self._release, name="release") if release else None
        if releasing is not None:
            releasing.start()  # ~1-2 s each, overlapped with the analysis below
        self._log_results(summary, parent)
        self.tracker.finish_sweep(parent, summary, self._cards(summary, 5))
        if releasing is not None:
            releasing.join()
        return summary

    def _centre_lr(self, spec: SweepSpec) -> tuple[SweepSpec, dict[str, Any]]:
        """Run the lr range test (:func:`tuner.executor.lr_range`) and centre the spec's lr range on
        its suggestion; returns the new spec and what the test found (:attr:`SweepSummary.lr_range`)."""
        from tuner.executor import lr_range

        found = lr_range(spec, ray_address=self.settings.ray_address)
        space = spec.search_space.centred_lr(found.suggested)
        lr = space.params["lr"]
        return spec.model_copy(update={"search_space": space}), {
            "steps": len(found.lrs), "epochs": found.epochs, "lr_min": found.lrs[0], "lr_max": found.lrs[-1],
            "steepest": found.steepest, "suggested": found.suggested, "low": lr.low, "high": lr.high,
        }

    def _release(self) -> None:
        """Stop the MLflow writer process (its events are written) and disconnect from Ray."""
        from tuner.executor import disconnect

        if "writer" in self.__dict__:
            self.writer.close()
        disconnect()

    def _log_results(self, summary: SweepSummary, parent: str) -> None:
        """Log the sweep's analysis to its parent run: plots and importance (:mod:`tuner.analysis`),
        the recommended config's values as ``best_<key>`` metrics, and the baseline comparison as
        ``baseline_<metric>`` and ``change_vs_baseline_percent``."""
        from tuner.analysis import analysis_files, analysis_metrics, analyze

        analysis = analyze(self.studies.storage, summary.name)
        metrics = analysis_metrics(analysis)
        picked = summary.pick()
        if picked:
            config = picked[0].config
            metrics.update({f"best_{k}": v for k, v in config.items() if isinstance(v, float)})
            stats = summary.seed_stats(picked[0].number)
            if stats is not None:
                metric = summary.spec["metric"]
                metrics.update({f"reevaluated_{metric}_mean": stats.mean, f"reevaluated_{metric}_std": stats.std})
        comparison = compare(summary, picked[0] if picked else None)
        if comparison is not None:
            metrics[f"baseline_{comparison.metric}"] = comparison.baseline
            metrics["change_vs_baseline_percent"] = comparison.change * 100
        self.tracker.log_sweep_results(parent, metrics=metrics, files=analysis_files(analysis))

    def reevaluate(
        self, ref: str, *, top_k: int = 3, seeds: int = 3, on_done: ReevaluationCallback | None = None
    ) -> SweepSummary:
        """Re-train the sweep's ``top_k`` best completed trials with ``seeds`` new seeds each, for
        every epoch; the recommended config (:meth:`best`, the card, the report) becomes the best
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
        name, _ = self._find(ref)
        summary = self.summary(name)
        if not summary.best():
            raise SweepStateError(f"sweep {name!r} has no completed trial to re-evaluate; `tuner sweep show {name}` says why")
        parent = self.tracker.sweep_run_id(name) or self.tracker.start_sweep(name, summary.spec)
        summary = self._reevaluate(summary, parent, top_k=top_k, seeds=seeds, on_done=on_done)
        self._log_results(summary, parent)
        self.tracker.log_sweep_results(parent, files={"best_config.json": json.dumps({"best": self._cards(summary, 5)}, indent=2).encode()})
        return summary

    def _reevaluate(
        self, summary: SweepSummary, parent: str, *, top_k: int, seeds: int, on_done: ReevaluationCallback | None
    ) -> SweepSummary:
        from tuner.executor import Rerun, rerun

        spec = parse_spec(summary.spec)
        runs = [
            Rerun(trial.number, seed, {**trial.config, "baseline": trial.baseline})
            for trial in summary.best(top_k)
            for seed in range(spec.seed + 1, spec.seed + 1 + seeds)
            if seed not in summary.reevaluations.get(trial.number, {})
        ]

        def done(run: Rerun, epochs: list[tuple[int, dict[str, float]]], outcome: Outcome) -> None:
            run_id = self.tracker.start_reevaluation(summary.name, parent, run.number, run.seed, run.config)
            self.tracker.log_trial(run_id, epochs, state=outcome.state, reason=outcome.reason)
            value = outcome.value if outcome.state == "completed" else None
            self.studies.record_reevaluation(summary.name, run.number, run.seed, value)
            if on_done is not None:
                on_done(run.number, run.seed, outcome)

        rerun(spec, runs, on_done=done, ray_address=self.settings.ray_address)
        return self.studies.summary(summary.name)

    def _end_trial_runs(self, summary: SweepSummary, parent: str) -> None:
        """Give every finished trial of a resumed sweep its ended MLflow run, from the study.

        The study is the record: a crash can kill the driver after a trial was told to
        Optuna but before the MLflow writer ended its run (or started it). Such a run is
        ended now with the study's state and reason; a missing one is created with the
        trial's config and last value.
        """
        runs = self.tracker.trial_runs(summary.name)
        metric = summary.spec["metric"]
        for trial in summary.trials:
            if trial.state == "running" or not trial.config:
                continue  # re-run by this run
            run_id, state = runs.get(trial.number, (None, None))
            if state is not None:
                continue
            if run_id is None:
                config = {**trial.config, "baseline": trial.baseline}
                run_id = self.tracker.start_trial(summary.name, parent, trial.number, config, replace=False)
                if trial.value is not None:
                    self.tracker.log_epoch(run_id, {metric: trial.value}, trial.epochs)
            self.tracker.end_trial(run_id, trial.state, trial.reason)

    def run_queued(self, sweep: Sweep) -> None:
        """Run a sweep the queue handed out (state ``running``) and record how it ended.

        A sweep whose study exists (a restart after a crash) is resumed. Errors end the
        sweep as ``failed`` with the error text; a cancel request ends it as ``cancelled``.
        """
        spec = parse_spec(sweep.spec, allow_paths=False)  # queued specs name registered workloads only
        experiment_id = self.tracker.experiment_id(spec.name, create=True)
        try:
            self.run(spec, resume=self.studies.exists(spec.name), should_stop=lambda: self.store.get(sweep.id).cancel_requested)
        except Exception as e:  # noqa: BLE001 - any failure of one sweep is recorded, the runner goes on
            self.store.finish(sweep.id, "failed", error=f"{type(e).__name__}: {e}")
            return
        finally:
            run_id = self.tracker.sweep_run_id(spec.name)
            if run_id:
                self.store.set_tracking(sweep.id, experiment_id=experiment_id, run_id=run_id)
        self.store.finish(sweep.id, "cancelled" if self.store.get(sweep.id).cancel_requested else "completed")

    # -- the queue -------------------------------------------------------------------------

    def submit(self, spec: SweepSpec) -> SweepStatus:
        """Queue a sweep; a runner picks it up.

        Raises:
            SpecError: the workload fails its checks (:func:`tuner.workload.check_workload`).
            SweepExistsError: a sweep of that name is queued or stored already.
        """
        check_workload(spec.workload, spec.workload_args, metric=spec.metric, execution=spec.execution)
        if self.studies.exists(spec.name):
            raise SweepExistsError(f"sweep {spec.name!r} already exists; give the spec another name")
        sweep = self.store.submit(spec.name, spec.model_dump(mode="json"))
        return self._status(sweep.name, sweep)

    def cancel(self, ref: str) -> SweepStatus:
        """Cancel a queued sweep at once, or ask a running one to stop.

        Raises:
            SweepNotFoundError: no queued sweep with that id or name.
            SweepStateError: the sweep already ended.
        """
        sweep = self.store.request_cancel(self._queued(ref).id)
        return self._status(sweep.name, sweep)

    # -- reading ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Names of all sweeps: queued ones and those run directly."""
        studies = self.studies.names() if self._readable("studies") else []
        queued = [s.name for s in self.store.list()] if self._readable("store") else []
        return sorted(set(studies) | set(queued))

    def status(self, ref: str) -> SweepStatus:
        """The sweep with queue id or name ``ref``.

        Raises:
            SweepNotFoundError: no such sweep.
        """
        return self._status(*self._find(ref))

    def statuses(self, state: str | None = None) -> list[SweepStatus]:
        """Every sweep's status, optionally only those in ``state``."""
        found = [self.status(name) for name in self.names()]
        return [s for s in found if state is None or s.state == state]

    def summary(self, name: str) -> SweepSummary:
        """The stored sweep ``name`` with every trial.

        Raises:
            SweepNotFoundError: no such sweep.
        """
        if not self._has_study(name):
            raise self._not_found(name)
        return self.studies.summary(name)

    def trials(self, ref: str) -> list[TrialRecord]:
        """Every trial of the sweep with queue id or name ``ref``, by number (none while it is queued).

        Raises:
            SweepNotFoundError: no such sweep.
        """
        name, _ = self._find(ref)
        return list(self.studies.summary(name).trials) if self._has_study(name) else []

    def best(self, ref: str, *, top: int = 1) -> list[dict[str, Any]]:
        """Config cards of the ``top`` best completed trials, best first (see :mod:`tuner.export`).

        Args:
            ref: the sweep's name or queue id.
            top: how many cards at most.

        Raises:
            SweepNotFoundError: no such sweep.
            SweepStateError: no trial has completed yet.
        """
        name, _ = self._find(ref)
        cards = self._cards(self.studies.summary(name), top) if self._has_study(name) else []
        if not cards:
            raise SweepStateError(f"sweep {name!r} has no completed trial yet; `tuner sweep show {name}` says why")
        return cards

    def _cards(self, summary: SweepSummary, top: int) -> list[dict[str, Any]]:
        run_ids = self.tracker.trial_run_ids(summary.name) if self._readable("tracker") else {}
        return [config_card(summary, t, run_ids.get(t.number)) for t in summary.pick(top)]

    def card(self, ref: str, *, batch_size: int | None = None) -> dict[str, Any]:
        """The Adam config card of the recommended trial (:mod:`tuner.card`): the best completed
        trial, or the best by mean once re-evaluated.

        Args:
            ref: the sweep's name or queue id.
            batch_size: add a config transferred to this batch size (square-root rule).

        Raises:
            SweepNotFoundError: no such sweep.
            SweepStateError: no trial has completed yet.
            UserInputError: ``batch_size`` cannot be transferred to (see :func:`tuner.card.adam_card`).
        """
        from tuner.card import adam_card

        name, _ = self._find(ref)
        summary = self.studies.summary(name) if self._has_study(name) else None
        picked = summary.pick() if summary else []
        if not picked:
            raise SweepStateError(f"sweep {name!r} has no completed trial yet; `tuner sweep show {name}` says why")
        trial = picked[0]
        run_id = self.tracker.trial_run_ids(name).get(trial.number) if self._readable("tracker") else None
        diagnostics = self.tracker.last_metrics(run_id, "adam_") if run_id else {}
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
        name, _ = self._find(ref)
        if not self._has_study(name):
            return None
        summary = self.studies.summary(name)
        return compare(summary, next(iter(summary.pick()), None))

    def report(self, ref: str, *, top_k: int = 10) -> str:
        """The sweep's report page (:func:`tuner.report.render_report`): one self-contained HTML file.

        Raises:
            SweepNotFoundError: no such sweep.
        """
        from tuner.analysis import analyze
        from tuner.report import render_report

        name, _ = self._find(ref)
        summary = self.summary(name)
        card = self.card(name) if summary.best() else None
        comparison = self.comparison(name)
        return render_report(
            summary,
            analyze(self.studies.storage, name),
            card=card,
            comparison=None if comparison is None else str(comparison),
            top_k=top_k,
        )

    def _find(self, ref: str) -> tuple[str, Sweep | None]:
        """The name of the sweep with queue id or name ``ref``, and its queue entry (``None``
        for a sweep run directly). Raises :class:`SweepNotFoundError`."""
        try:
            sweep = self._queued(ref)
        except SweepNotFoundError:
            if not self._has_study(ref):
                raise self._not_found(ref) from None
            return ref, None
        return sweep.name, sweep

    def _not_found(self, ref: str) -> SweepNotFoundError:
        known = ", ".join(self.names()) or "none yet"
        return SweepNotFoundError(f"no sweep named {ref!r}; known sweeps: {known}")

    def _queued(self, ref: str) -> Sweep:
        if not self._readable("store"):
            raise SweepNotFoundError(f"no sweep has id or name {ref!r}; none was queued here yet")
        try:
            return self.store.get(ref)
        except SweepNotFoundError:
            return self.store.get_by_name(ref)

    def _has_study(self, name: str) -> bool:
        return self._readable("studies") and self.studies.exists(name)

    def _readable(self, store: Literal["store", "studies", "tracker"]) -> bool:
        """Whether reading ``store`` creates nothing: it is open already, or its URL is not
        an SQLite file that is missing (opening that would create it, empty)."""
        if store in self.__dict__:  # a cached_property built (or injected) already
            return True
        url = {"store": self.settings.database_url, "studies": self.settings.study_storage, "tracker": self.settings.tracking_uri}[store]
        return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()

    def _status(self, name: str, sweep: Sweep | None) -> SweepStatus:
        summary = self.studies.summary(name) if self._has_study(name) else None
        spec = summary.spec if summary else sweep.spec
        counts = {s: (summary.count(s) if summary else 0) for s in ("completed", "early-stopped", "failed", "running")}
        best = summary.pick() if summary else []
        comparison = compare(summary, best[0]) if best else None
        finished = counts["completed"] + counts["early-stopped"] + counts["failed"]
        if sweep is not None:
            state = sweep.state
            experiment_id, run_id = sweep.mlflow_experiment_id, sweep.mlflow_run_id
        else:
            state = "completed" if finished >= spec["n_trials"] else "incomplete"
            tracked = self._readable("tracker")
            experiment_id = self.tracker.experiment_id(name) if tracked else None
            run_id = self.tracker.sweep_run_id(name) if tracked else None
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
