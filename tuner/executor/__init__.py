"""Executors run a sweep's trials and emit their events to observers.

``execute`` picks the executor from ``spec.execution``: ``run_standard`` (Ray Tune, one
Ray trial per config) or the packed executor (K configs trained as one stacked model).
Both follow one study protocol, :class:`SweepStudy` (sampler, baseline, resume, ASHA's
rungs, continuations, reproducible order). Both import Ray, so they load on first use;
the event types and the protocol are light. ``rerun`` re-trains fixed configs with new
seeds (re-evaluation); ``lr_range`` runs the lr range test before a sweep's first trial.
``connect``/``disconnect`` start and stop the driver's Ray; ``check_admission`` and
``lane_count`` say what a cluster can hold. ``trial_kwargs`` and ``range_test_kwargs`` are what a
worker is called with (:mod:`workers.trainable`, :mod:`workers.lr_range`). Standard execution
reaches the protocol through Ray Tune's ``Searcher`` and ``TrialScheduler`` (``StudySearcher``,
``StudyScheduler``) and cancels through a Tune ``Stopper`` (``Cancel``). A trial's :class:`~tuner.records.Outcome` lives
with the records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.executor._events import Observers, SweepObserver
from tuner.executor._lr_range import lr_range, lr_range_here, range_test_kwargs
from tuner.executor._outcome import classify
from tuner.executor._ray import check_admission, trial_kwargs
from tuner.executor._reevaluate import Rerun, rerun
from tuner.executor._study import Asked, SweepStudy

if TYPE_CHECKING:
    from tuner.spec import SweepSpec

__all__ = [
    "Asked",
    "Cancel",
    "Observers",
    "Rerun",
    "StudyScheduler",
    "StudySearcher",
    "SweepObserver",
    "SweepStudy",
    "check_admission",
    "classify",
    "connect",
    "disconnect",
    "execute",
    "lane_count",
    "lr_range",
    "lr_range_here",
    "range_test_kwargs",
    "rerun",
    "run_standard",
    "start_local_ray",
    "trial_kwargs",
]


def execute(spec: SweepSpec, *, can_pack: bool, reuse_actors: bool = True, **kwargs: Any) -> str | None:
    """Run ``kwargs["n_trials"]`` new trials of ``spec`` with the executor ``spec.execution`` names.

    ``auto`` packs where the workload can pack (a Workload class with ``can_pack``; a
    function never packs), ``pack_size > 1`` and the space fixes ``algorithm`` (a pack
    runs one algorithm), else runs standard.

    Args:
        spec: the sweep; its workload already checked by the caller
            (:func:`tuner.workload.check_workload` with ``execution=spec.execution``): it is
            not imported again here.
        can_pack: that check's :attr:`~tuner.workload.WorkloadInfo.can_pack`.
        reuse_actors: standard execution's (see :func:`run_standard`); packs ignore it.
        kwargs: those of :func:`run_standard`.

    Returns:
        Why the study stopped before its budget (``fail_fast``; :attr:`SweepStudy.stopped`), else ``None``.
    """
    execution = spec.execution
    if execution == "auto":
        one_algorithm = len(spec.search_space.algorithms) == 1
        execution = "packed" if spec.pack_size > 1 and can_pack and one_algorithm else "standard"
    if execution == "packed":
        from tuner.executor._packed import run_packed

        return run_packed(spec, **kwargs)
    from tuner.executor._standard import run_standard

    return run_standard(spec, reuse_actors=reuse_actors, **kwargs)


def connect(spec: SweepSpec, address: str | None) -> None:
    """Connect to Ray (or start local Ray) with the sweep's ``runtime_env`` now, e.g. on a thread
    while the stores are set up; the executor then finds it connected (a connection made with the
    same ``runtime_env`` is kept; another one is replaced).

    Raises:
        SpecError: Ray refuses the code (too large), or no node of the cluster can hold one
            trial's ``resources_per_trial`` (:func:`check_admission`).
    """
    from tuner.executor._ray import init_ray, sweep_runtime_env

    init_ray(address, sweep_runtime_env(spec))
    check_admission(spec)


def start_local_ray(runtime_env: dict[str, Any] | None = None) -> str:
    """Start a local Ray of this process's own (never one found on the machine), with
    ``runtime_env`` as its job's environment (e.g. :func:`tuner.workload.runtime_env`); returns its
    GCS address, which other processes join it by. Its processes live as long as the calling thread.
    One this process started already with the same ``runtime_env`` is kept; one with another is
    replaced."""
    import ray

    from tuner.executor._ray import init_ray

    init_ray(None, runtime_env)
    return ray.get_runtime_context().gcs_address


def disconnect() -> None:
    """Disconnect from Ray; a local Ray this process started stops (about 1-2 s)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def __getattr__(name: str) -> Any:
    """What imports Ray loads on first use: ``run_standard``, ``lane_count`` and the study's Ray
    Tune adapters (``StudySearcher``, ``StudyScheduler``, ``Cancel``)."""
    if name == "run_standard":
        from tuner.executor._standard import run_standard

        return run_standard
    if name in ("StudySearcher", "StudyScheduler"):
        from tuner.executor import _searcher

        return getattr(_searcher, name)
    if name == "Cancel":
        from tuner.executor._cancel import Cancel

        return Cancel
    if name == "lane_count":
        from tuner.executor._packed import lane_count

        return lane_count
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
