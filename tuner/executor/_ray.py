"""Connecting the driver to Ray with the sweep's code attached (one job-level ``runtime_env``)."""

from __future__ import annotations

import copy
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tuner.errors import SpecError

if TYPE_CHECKING:
    from tuner.spec import SweepSpec

__all__ = ["check_admission", "concurrency", "init_ray", "sweep_runtime_env", "trial_kwargs"]

# The runtime_env this process's Ray job was started with. Ray's connection is
# process-wide state already (ray.init / ray.shutdown); this only remembers what we
# asked of it, since Ray Tune has no per-trial runtime_env.
_current_env: dict[str, Any] | None = None


def sweep_runtime_env(spec: SweepSpec) -> dict[str, Any]:
    """The ``runtime_env`` that ships ``workers`` and the spec's workload code (see
    :func:`tuner.workload.runtime_env`)."""
    from tuner.workload import runtime_env

    return runtime_env(spec.workload, spec.excludes)


def trial_kwargs(spec: SweepSpec) -> dict[str, Any]:
    """Keyword arguments of :func:`workers.trainable.train_trial` for the spec's trials: the
    workload as the workers import it (or, for a function handed over in this process by
    :func:`tuner.sweep`, the function itself, which Ray sends by value), its args (a script's command line), epochs, seed, metric,
    threads and device."""
    from tuner.workload import parse_ref

    resources = spec.resources_per_trial
    return {
        "workload": parse_ref(spec.workload).worker_target,
        "workload_args": spec.workload_args,
        "script_args": list(spec.script_args),
        "max_epochs": spec.max_epochs,
        "seed": spec.seed,
        "metric": spec.metric,
        "threads": resources.threads,
        "device": resources.device,
    }


def concurrency(spec: SweepSpec, n_trials: int, available: Mapping[str, float], *, driver_cpus: float = 0.0) -> int:
    """How many of the spec's trials fit at once in ``available`` Ray resources (less
    ``driver_cpus``), one trial's ``resources_per_trial`` each, and no more than ``n_trials``;
    at least one. It is the study's window (:class:`~tuner.executor._study.SweepStudy`), so
    the same machine gives the same trials."""
    resources = spec.resources_per_trial
    fit = math.floor((available.get("CPU", 1.0) - driver_cpus) / resources.cpu)
    if resources.gpu > 0:
        fit = min(fit, math.floor(available.get("GPU", 0.0) / resources.gpu))
    return max(1, min(fit, n_trials))


def check_admission(spec: SweepSpec, nodes: Sequence[Mapping[str, float]] | None = None) -> None:
    """Refuse a spec whose ``resources_per_trial`` no node can ever hold, instead of a trial that
    waits forever for a node Ray does not have.

    Args:
        spec: the sweep.
        nodes: each node's total resources (Ray's names: ``CPU``, ``GPU``); ``None``: the alive
            nodes of the connected Ray cluster (``ray.nodes()``). A node an autoscaler would
            add later does not count.

    Raises:
        SpecError: no node has the CPUs and GPUs one trial asks for; the message says what the
            cluster's largest node has.
    """
    if nodes is None:
        import ray

        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    asked = spec.resources_per_trial
    if any(node.get("CPU", 0.0) >= asked.cpu and node.get("GPU", 0.0) >= asked.gpu for node in nodes):
        return
    order = (
        (lambda n: (n.get("GPU", 0.0), n.get("CPU", 0.0)))
        if asked.gpu > 0
        else (lambda n: (n.get("CPU", 0.0), n.get("GPU", 0.0)))
    )
    largest = max(nodes, key=order, default={})
    raise SpecError(
        f"invalid sweep spec: resources_per_trial: a trial asks for cpu={asked.cpu:g}, gpu={asked.gpu:g}, but no node of "
        f"the Ray cluster has that (its largest has cpu={largest.get('CPU', 0.0):g}, gpu={largest.get('GPU', 0.0):g}); "
        "lower resources_per_trial, or add a node that large to the cluster"
    )


def init_ray(address: str | None, runtime_env: dict[str, Any] | None = None) -> None:
    """Connect to Ray at ``address``, or start local Ray quietly (no dashboard, no worker
    log echo), with ``runtime_env`` as the job's environment.

    A Ray already connected in this process is kept when it was started with the same
    ``runtime_env``; otherwise it is shut down and connected anew (Ray Tune trials take
    the job's environment; a sweep of other code needs a new job).

    Raises:
        SpecError: Ray refuses to upload the code (e.g. the folder is over Ray's package
            size limit): the message says what to exclude.
    """
    global _current_env
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our progress view replaces Tune's tables
    # No result.json / progress.csv / TensorBoard file per trial: the study and MLflow hold every
    # report, and Tune's loggers cost the driver work on each one.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    if ray.is_initialized():
        if runtime_env is None or runtime_env == _current_env:
            return
        ray.shutdown()
    try:
        ray.init(
            # "local": a new Ray of this process's own, never a cluster Ray finds on its own (a
            # `ray start` cluster, or another program's): that one is asked for by address.
            address=address or "local",
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
            runtime_env=copy.deepcopy(runtime_env),  # Ray swaps the local paths for its upload URIs in place
        )
    except Exception as e:  # Ray raises ValueError or RuntimeEnvSetupError, by where the package goes
        too_large = re.search(r"Package size \([^)]*\) exceeds the maximum size of [\d.]+ ?\w+", str(e))
        if too_large is None:
            raise
        ray.shutdown()
        where = (runtime_env or {}).get("working_dir", "the workload's code")
        raise SpecError(
            f"invalid sweep spec: excludes: {too_large.group(0)}: {where} is too large to ship to the Ray "
            "workers; list its data, checkpoint or output folders under the spec's `excludes`"
        ) from None
    _current_env = runtime_env
