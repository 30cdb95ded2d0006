"""The lr range test: one short run before a sweep's first trial, on a Ray worker
(:func:`lr_range`) or, with local Ray, in this process while Ray starts (:func:`lr_range_here`).

The run itself (ramp, smoothing, suggestion) is :mod:`workers.lr_range`; this module ships it
to a worker with the sweep's workload, resources and ``runtime_env`` (or runs it on the workload
the driver built to check it), and the caller (:meth:`tuner.service.SweepService.run`) centres
the search space's lr on what it suggests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner.errors import SpecError
from tuner.executor._ray import init_ray, sweep_runtime_env, trial_kwargs

if TYPE_CHECKING:
    from tuner.spec import SweepSpec
    from workers.lr_range import LrRange

__all__ = ["RAMP_WIDENING", "lr_range", "lr_range_here", "range_test_kwargs"]

#: The ramp runs from the space's lr ``low / RAMP_WIDENING`` to ``high * RAMP_WIDENING``.
RAMP_WIDENING = 10.0


def range_test_kwargs(spec: SweepSpec) -> dict[str, Any]:
    """Keyword arguments of :func:`workers.lr_range.run_lr_range_test` for ``spec``: the workload
    and its args, seed, threads and device of its trials, the ramp over the space's lr range
    widened :data:`RAMP_WIDENING`-fold each way, and the algorithm the search space fixes
    (nadam, adamax), or adam where it searches ``algorithm``.

    ``spec``'s search space must search ``lr`` (the spec checks it when it asks for the test).
    """
    lr = spec.search_space.params["lr"]
    kwargs = trial_kwargs(spec)
    return {
        "workload": kwargs["workload"],
        "workload_args": kwargs["workload_args"],
        "lr_min": lr.low / RAMP_WIDENING,
        "lr_max": lr.high * RAMP_WIDENING,
        "seed": spec.seed,
        "threads": kwargs["threads"],
        "device": kwargs["device"],
        "algorithm": spec.search_space.base_algorithm,
    }


def lr_range(spec: SweepSpec, *, ray_address: str | None = None) -> LrRange:
    """Run the lr range test of ``spec``'s workload on a Ray worker (one trial's resources),
    with :func:`range_test_kwargs` (the algorithm the search space fixes, or Adam).

    Args:
        spec: the sweep; its search space searches ``lr`` log-uniformly (the spec checks it).
        ray_address: an existing Ray cluster; ``None`` starts (or reuses) local Ray.

    Raises:
        SpecError: the test could not run: the workload is a function, its epoch has fewer than
            3 steps, every loss was non-finite, or the worker failed (the message says which).
    """
    import ray

    from workers.lr_range import run_lr_range_test

    init_ray(ray_address, sweep_runtime_env(spec))
    resources = spec.resources_per_trial
    task = ray.remote(run_lr_range_test).options(
        num_cpus=resources.cpu, num_gpus=resources.gpu, max_retries=spec.max_failures
    )
    ref = task.remote(**range_test_kwargs(spec))
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        cause = e.cause if isinstance(e.cause, Exception) else e
        raise SpecError(f"lr_range_test: the range test failed: {cause}") from None
    except ray.exceptions.RayError as e:
        raise SpecError(
            f"lr_range_test: the range test's worker failed ({type(e).__name__}); set lr_range_test: false to skip it"
        ) from None


def lr_range_here(spec: SweepSpec, workload: Any) -> LrRange:
    """Run the lr range test of ``spec`` in this process, on ``workload`` (the Workload instance
    :func:`tuner.workload.check_workload` built from the spec's workload and args), with the
    arguments :func:`range_test_kwargs` gives a worker: the same steps and result as
    :func:`lr_range`, without a worker process's start (~4 s). For local Ray only, where the
    driver's machine is the trials' (its torch threads are the trials' for the test, then restored).

    Raises:
        SpecError: the test could not run (its epoch has fewer than 3 steps, every loss was non-finite).
    """
    import torch

    from workers.lr_range import lr_range_test

    kwargs = range_test_kwargs(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(kwargs["threads"])
    try:
        return lr_range_test(
            workload,
            lr_min=kwargs["lr_min"],
            lr_max=kwargs["lr_max"],
            seed=kwargs["seed"],
            device=kwargs["device"],
            algorithm=kwargs["algorithm"],
        )
    except ValueError as e:
        raise SpecError(f"lr_range_test: the range test failed: {e}") from None
    finally:
        torch.set_num_threads(threads)
