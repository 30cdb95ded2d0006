"""Standard execution: one Ray Tune trial per configuration.

Ray Tune schedules trials (``reuse_actors=True``: ~1.3 s per trial instead of
~4 s here), as many at once as Ray's resources fit (:func:`concurrency`, the study's
window); the sweep's study protocol (:class:`~tuner.executor._study.SweepStudy`) proposes
configs and stops weak trials early through Ray Tune's public ``Searcher`` and
``TrialScheduler`` interfaces (:mod:`tuner.executor._searcher`), which also pass the trial
events to the observers on the driver, which is therefore the only writer of the stores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ray import tune

from tuner.executor._cancel import Cancel
from tuner.executor._events import SweepObserver
from tuner.executor._outcome import classify
from tuner.executor._ray import concurrency, init_ray, sweep_runtime_env, trial_kwargs

if TYPE_CHECKING:
    import optuna

    from tuner.spec import SweepSpec

__all__ = ["run_standard"]


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
    search = StudySearcher(
        study, observer, metric=spec.metric, mode=spec.mode, max_epochs=spec.max_epochs, cancel=cancel
    )
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
        ),
    )
    tuner.fit()
    if cancel.triggered:
        # Ray Tune ends the trials still running at a stop_all without telling the searcher or
        # the scheduler (ray/tune/execution/tune_controller.py, _stop_experiment_if_needed): end them here.
        for asked in search.unfinished():
            outcome = classify(
                {"epoch": max(asked.reported, default=0)},
                metric=spec.metric,
                max_epochs=spec.max_epochs,
                cancelled=True,
            )
            search.end(asked, outcome)
    return study.stopped
