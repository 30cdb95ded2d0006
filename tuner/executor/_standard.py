"""Standard execution: one Ray Tune trial per configuration.

Ray Tune schedules trials (``reuse_actors=True``: ~1.3 s per trial instead of
~4 s here), as many at once as Ray's resources fit (:func:`concurrency`, the study's
window); the sweep's study protocol (:class:`~tuner.executor._study.SweepStudy`) proposes
configs and stops weak trials early through Ray Tune's public ``Searcher`` and
``TrialScheduler`` interfaces (:mod:`tuner.executor._searcher`). Trial events reach the
observers through a Tune callback on the driver, which is therefore the only writer of
the stores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS

from tuner.executor._cancel import Cancel
from tuner.executor._events import SweepObserver
from tuner.executor._outcome import classify
from tuner.executor._ray import concurrency, init_ray, sweep_runtime_env, trial_kwargs
from tuner.records import Outcome

if TYPE_CHECKING:
    import optuna

    from tuner.spec import SweepSpec

__all__ = ["run_standard"]

# Keys Ray adds to every result, plus ours that are not metrics.
_NOT_METRICS = {"trial_id", "done", "experiment_tag", "epoch", "should_checkpoint", "error", "reason", "diverged"}


def run_standard(
    spec: SweepSpec,
    *,
    n_trials: int,
    storage: optuna.storages.BaseStorage,
    observer: SweepObserver,
    ray_storage: Path,
    ray_address: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    reuse_actors: bool = True,
) -> str | None:
    """Run ``n_trials`` new trials of ``spec`` on Ray Tune, adding them to the sweep's study;
    returns why the study stopped early (:attr:`SweepStudy.stopped`, ``fail_fast``), else ``None``.

    Args:
        spec: the validated sweep spec; its study must already exist in ``storage``.
        n_trials: how many trials to start (fewer than ``spec.n_trials`` on resume).
        storage: the Optuna storage that holds the sweep's study.
        observer: receives every trial's events on the driver.
        ray_storage: folder for Ray Tune's experiment files.
        ray_address: an existing Ray cluster; ``None`` starts (or reuses) local Ray.
        should_stop: polled while trials run; once it returns true every trial stops
            (those cut short are recorded as failed: "sweep cancelled").
        reuse_actors: reuse trial processes (~1.3 s per trial here instead of ~4 s);
            the throughput benchmark turns it off to measure the difference.
    """
    import ray

    from tuner.executor._searcher import StudyScheduler, StudySearcher
    from tuner.executor._study import SweepStudy
    from workers.trainable import trainable

    init_ray(ray_address, sweep_runtime_env(spec))
    cancel = Cancel(should_stop)
    window = concurrency(spec, n_trials, ray.cluster_resources())
    study = SweepStudy(spec, storage, n_trials=n_trials, window=window)
    search = StudySearcher(study, metric=spec.metric, mode=spec.mode, max_epochs=spec.max_epochs, cancel=cancel)
    events = _RayEvents(observer, metric=spec.metric, max_epochs=spec.max_epochs, cancel=cancel)
    resources = spec.resources_per_trial
    fn = tune.with_parameters(trainable, **trial_kwargs(spec))
    tuner = tune.Tuner(
        tune.with_resources(fn, {"cpu": resources.cpu, "gpu": resources.gpu}),
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=StudyScheduler(study, search, metric=spec.metric),
            metric=spec.metric,
            mode=spec.mode,
            num_samples=n_trials,
            max_concurrent_trials=window,
            reuse_actors=reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(ray_storage),
            verbose=0,
            stop=cancel,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            callbacks=[events],
        ),
    )
    tuner.fit()
    if cancel.triggered:
        # Ray Tune ends the trials still running at a stop_all without telling the searcher or
        # the callbacks (ray/tune/execution/tune_controller.py, _stop_experiment_if_needed): end them here.
        for asked in search.unfinished():
            outcome = classify(
                {"epoch": max(asked.reported, default=0)},
                metric=spec.metric,
                max_epochs=spec.max_epochs,
                cancelled=True,
            )
            study.tell(asked, outcome)
            events.cancelled(asked.number, outcome)
    return study.stopped


class _RayEvents(tune.Callback):
    """Turns Ray Tune's trial callbacks into :class:`SweepObserver` calls."""

    def __init__(self, observer: SweepObserver, *, metric: str, max_epochs: int, cancel: Cancel) -> None:
        self._observer = observer
        self._cancel = cancel
        self._metric = metric
        self._max_epochs = max_epochs
        self._open: set[int] = set()  # trials started and not yet finished

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the observer (stores,
        # a live console) belongs to this driver process only and is not saved.
        return {**self.__dict__, "_observer": None}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        config = {k: v for k, v in trial.config.items() if k != "trial_number"}
        self._observer.trial_started(trial.config["trial_number"], config)
        self._open.add(trial.config["trial_number"])

    def cancelled(self, number: int, outcome: Outcome) -> None:
        """Trial ``number`` was cut short by a cancel that Ray Tune did not report."""
        if number in self._open:
            self._open.discard(number)
            self._observer.trial_finished(number, outcome)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "error" in result:
            return
        metrics = {
            k: float(v)
            for k, v in result.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and k not in AUTO_RESULT_KEYS
            and k not in _NOT_METRICS
        }
        self._observer.epoch_reported(trial.config["trial_number"], int(result["epoch"]), metrics)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        outcome = classify(
            trial.last_result, metric=self._metric, max_epochs=self._max_epochs, cancelled=self._cancel.triggered
        )
        self._open.discard(trial.config["trial_number"])
        self._observer.trial_finished(trial.config["trial_number"], outcome)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.get_error()
        reason = str(error).strip().splitlines()[-1] if error else "the trial's worker failed"
        outcome = classify(trial.last_result, metric=self._metric, max_epochs=self._max_epochs, error=reason)
        self._open.discard(trial.config["trial_number"])
        self._observer.trial_finished(trial.config["trial_number"], outcome)
