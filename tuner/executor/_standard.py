"""Standard execution: one Ray Tune trial per configuration.

Ray Tune schedules trials (``reuse_actors=True``: ~1.3 s per trial instead of
~4 s here), ``AdamSearch`` (Optuna TPE, study in an ``RDBStorage``) proposes
configs, ASHA stops weak trials early. Trial events reach the observers through
a Tune callback on the driver, which is therefore the only writer of the stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from tuner.baseline import BASELINE_ATTR
from tuner.executor._cancel import Cancel
from tuner.executor._events import SweepObserver
from tuner.executor._outcome import classify
from tuner.executor._ray import init_ray, sweep_runtime_env, trial_kwargs

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
) -> None:
    """Run ``n_trials`` new trials of ``spec`` on Ray Tune, adding them to the sweep's study.

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
    from optuna.samplers import TPESampler
    from ray.tune.schedulers import FIFOScheduler

    from tuner.executor._searcher import AdamSearch
    from workers.trainable import trainable

    init_ray(ray_address, sweep_runtime_env(spec))
    cancel = Cancel(should_stop)
    search = AdamSearch(
        spec.search_space,
        max_epochs=spec.max_epochs,
        cancel=cancel,
        baseline=spec.baseline,
        metric=spec.metric,
        mode=spec.mode,
        sampler=TPESampler(seed=spec.seed),
        storage=storage,
        study_name=spec.name,
    )
    scheduler = (
        _BaselineExemptASHA(
            time_attr="training_iteration",
            max_t=spec.max_epochs,
            grace_period=spec.asha.grace_period,
            reduction_factor=spec.asha.reduction_factor,
        )
        if spec.scheduler == "asha"
        else FIFOScheduler()
    )
    resources = spec.resources_per_trial
    fn = tune.with_parameters(trainable, **trial_kwargs(spec))
    tuner = tune.Tuner(
        tune.with_resources(fn, {"cpu": resources.cpu, "gpu": resources.gpu}),
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=scheduler,
            metric=spec.metric,
            mode=spec.mode,
            num_samples=n_trials,
            reuse_actors=reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(ray_storage),
            verbose=0,
            stop=cancel,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            callbacks=[_RayEvents(observer, metric=spec.metric, max_epochs=spec.max_epochs, cancel=cancel)],
        ),
    )
    tuner.fit()


class _BaselineExemptASHA(ASHAScheduler):
    """ASHA that never stops the baseline trial early: its value is the untuned model's at ``max_epochs``."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if trial.config.get(BASELINE_ATTR):
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)


class _RayEvents(tune.Callback):
    """Turns Ray Tune's trial callbacks into :class:`SweepObserver` calls."""

    def __init__(self, observer: SweepObserver, *, metric: str, max_epochs: int, cancel: Cancel) -> None:
        self._observer = observer
        self._cancel = cancel
        self._metric = metric
        self._max_epochs = max_epochs

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the observer (stores,
        # a live console) belongs to this driver process only and is not saved.
        return {**self.__dict__, "_observer": None}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        config = {k: v for k, v in trial.config.items() if k != "trial_number"}
        self._observer.trial_started(trial.config["trial_number"], config)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "error" in result:
            return
        metrics = {
            k: float(v)
            for k, v in result.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k not in AUTO_RESULT_KEYS and k not in _NOT_METRICS
        }
        self._observer.epoch_reported(trial.config["trial_number"], int(result["epoch"]), metrics)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        outcome = classify(
            trial.last_result, metric=self._metric, max_epochs=self._max_epochs, cancelled=self._cancel.triggered
        )
        self._observer.trial_finished(trial.config["trial_number"], outcome)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.get_error()
        reason = str(error).strip().splitlines()[-1] if error else "the trial's worker failed"
        outcome = classify(trial.last_result, metric=self._metric, max_epochs=self._max_epochs, error=reason)
        self._observer.trial_finished(trial.config["trial_number"], outcome)
