"""Find workloads through the ``adamtune.workloads`` entry-point group.

Listing names reads installed package metadata only; nothing is imported until
:func:`get_workload` loads one entry point.
"""

from __future__ import annotations

from importlib import metadata

from workers.workloads._base import Workload

__all__ = ["ENTRY_POINT_GROUP", "UnknownWorkloadError", "available_workloads", "get_workload"]

ENTRY_POINT_GROUP = "adamtune.workloads"
"""Entry-point group under which packages register :class:`Workload` subclasses."""


class UnknownWorkloadError(LookupError):
    """No workload is registered under the requested name.

    Attributes:
        name: The name that was asked for.
        available: The registered names, sorted.
    """

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        listed = ", ".join(repr(n) for n in available) or "(none installed)"
        super().__init__(
            f"unknown workload {name!r}; available workloads: {listed}. "
            f"Packages add workloads under the {ENTRY_POINT_GROUP!r} entry-point group."
        )


def _entry_points(name: str | None = None) -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [ep for ep in found if name is None or ep.name == name]


def available_workloads() -> list[str]:
    """Names of all registered workloads, sorted.

    Reads entry-point metadata only: imports neither torch nor any workload module,
    so a command line can validate a name quickly.
    """
    return sorted({ep.name for ep in _entry_points()})


def get_workload(name: str) -> Workload:
    """Load and instantiate the workload registered as ``name``.

    Args:
        name: A name from :func:`available_workloads`, e.g. ``"digits_mlp"``.

    Returns:
        A new instance built with default arguments.

    Raises:
        UnknownWorkloadError: ``name`` is not registered (the message lists what is).
        RuntimeError: Two installed packages register different objects as ``name``.
        TypeError: ``name`` is not a string, or the entry point does not produce a
            :class:`Workload`.
    """
    if not isinstance(name, str):
        raise TypeError(f"workload name must be a str, but got {type(name).__name__}: {name!r}")
    matches = _entry_points(name)
    if not matches:
        raise UnknownWorkloadError(name, available_workloads())
    targets = sorted({ep.value for ep in matches})
    if len(targets) > 1:
        raise RuntimeError(
            f"workload {name!r} is registered more than once with different targets "
            f"{targets}; uninstall one of the packages that provide it."
        )
    factory = matches[0].load()
    workload = factory()
    if not isinstance(workload, Workload):
        raise TypeError(
            f"entry point {name!r} = {targets[0]!r} must produce a workers.workloads.Workload, "
            f"but produced {type(workload).__name__}."
        )
    return workload
