"""Find workloads: registered names (entry-point group ``adamtune.workloads``) and
``package.module:attr`` references.

Listing names reads installed package metadata only; nothing is imported until
:func:`load_workload` loads one. A workload is either a :class:`Workload` subclass
(built with the sweep's ``workload_args`` as keyword arguments) or a function
``train(trial)`` (see :class:`workers.Trial`), which receives ``workload_args`` as
``trial.workload_args``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from workers.workloads._base import Workload

__all__ = [
    "ENTRY_POINT_GROUP",
    "UnknownWorkloadError",
    "WorkloadArgsError",
    "available_workloads",
    "check_target",
    "check_workload_args",
    "get_workload",
    "load_workload",
    "resolve_target",
    "workload_target",
]

ENTRY_POINT_GROUP = "adamtune.workloads"
"""Entry-point group under which packages register :class:`Workload` subclasses or
``train(trial)`` functions."""

#: What a reference loads to: a Workload subclass or a function of one trial.
WorkloadTarget = type[Workload] | Callable[[Any], Any]


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


class WorkloadArgsError(ValueError):
    """``workload_args`` do not fit what the workload declares (its ``Args`` model or
    its constructor's signature)."""


def _entry_points(name: str | None = None) -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [ep for ep in found if name is None or ep.name == name]


def available_workloads() -> list[str]:
    """Names of all registered workloads, sorted.

    Reads entry-point metadata only: imports neither torch nor any workload module,
    so a command line can validate a name quickly.
    """
    return sorted({ep.name for ep in _entry_points()})


def workload_target(name: str) -> str:
    """The ``module:attr`` a registered name points to, e.g. ``"workers.workloads.digits:DigitsMLP"``.

    A driver sends this to Ray workers, which then need the module, not the
    registering package's metadata.

    Raises:
        UnknownWorkloadError: ``name`` is not registered.
        RuntimeError: Two installed packages register different targets as ``name``.
    """
    matches = _entry_points(name)
    if not matches:
        raise UnknownWorkloadError(name, available_workloads())
    targets = sorted({ep.value for ep in matches})
    if len(targets) > 1:
        raise RuntimeError(
            f"workload {name!r} is registered more than once with different targets "
            f"{targets}; uninstall one of the packages that provide it."
        )
    return targets[0]


def resolve_target(ref: str) -> WorkloadTarget:
    """Import what ``ref`` names: a registered name or ``package.module:attr``.

    Args:
        ref: ``"digits_mlp"`` or ``"my_pkg.tasks:train"`` (``attr`` may be dotted).

    Returns:
        A :class:`Workload` subclass or a callable taking one trial.

    Raises:
        UnknownWorkloadError: a plain name that is not registered.
        ImportError: the module cannot be imported (or raises while importing).
        AttributeError: the module has no such attribute.
        TypeError: the attribute is neither a Workload subclass nor a callable of one argument.
    """
    if not isinstance(ref, str):
        raise TypeError(f"workload reference must be a str, but got {type(ref).__name__}: {ref!r}")
    target = ref if ":" in ref else workload_target(ref)
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"module {module_name!r} has no attribute {attr!r} (workload {ref!r})") from None
    check_target(obj, ref)
    return obj


def check_target(obj: Any, ref: str) -> None:
    """Check that ``obj`` is a :class:`Workload` subclass or a callable taking one argument.

    Raises:
        TypeError: it is neither; the message names ``ref`` and what it is.
    """
    if isinstance(obj, type):
        if issubclass(obj, Workload):
            return
    elif callable(obj):
        try:
            inspect.signature(obj).bind(None)
            return
        except (TypeError, ValueError):
            pass
    raise TypeError(
        f"workload {ref!r} is {_describe(obj)}: it must be a workers.Workload subclass "
        "or a function taking one argument, train(trial)"
    )


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__name__}, not a Workload subclass"
    if callable(obj):
        return f"a callable with signature {inspect.signature(obj)}"
    return f"a {type(obj).__name__}"


def check_workload_args(target: WorkloadTarget, args: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``args`` against what ``target`` declares; return them with defaults filled.

    A workload declares its arguments with an ``Args`` attribute (a pydantic model
    class; set ``train.Args = MyArgs`` on a function), else a Workload class by its
    constructor's keyword parameters. A subclass with a constructor of its own does not
    inherit its base's ``Args``. A function without ``Args`` takes any mapping.

    Returns:
        A plain dict: ``Args(**args).model_dump()`` when ``Args`` is declared, else ``args``.

    Raises:
        WorkloadArgsError: an unknown, missing or badly typed argument (one line).
    """
    args = dict(args or {})
    model = _declared_args(target)
    if model is not None:
        from pydantic import ValidationError

        try:
            return model.model_validate(args).model_dump()
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'workload_args'}: {err['msg']}" for err in e.errors()
            )
            raise WorkloadArgsError(problems) from None
    if isinstance(target, type):
        try:
            inspect.signature(target).bind(**args)
        except TypeError as e:
            params = ", ".join(inspect.signature(target).parameters) or "none"
            raise WorkloadArgsError(f"{e} (it takes: {params})") from None
    return args


def _declared_args(target: WorkloadTarget) -> Any:
    """``target``'s ``Args`` model, or None; a class's only if its constructor is that of the
    class that declares ``Args``."""
    if not isinstance(target, type):
        return getattr(target, "Args", None)
    owner = next((cls for cls in target.__mro__ if "Args" in vars(cls)), None)
    return None if owner is None or target.__init__ is not owner.__init__ else owner.Args


def load_workload(ref: str, args: Mapping[str, Any] | None = None) -> Workload | Callable[[Any], Any]:
    """Load ``ref`` and build it: a Workload instance (``Cls(**args)``) or the function itself.

    Raises:
        As :func:`resolve_target` and :func:`check_workload_args`; whatever the
        Workload's constructor raises for a bad value.
    """
    target = resolve_target(ref)
    args = check_workload_args(target, args)
    if isinstance(target, type):
        return target(**args)
    return target


def get_workload(name: str, args: Mapping[str, Any] | None = None) -> Workload:
    """Load and instantiate the Workload class registered as (or referenced by) ``name``.

    Args:
        name: A name from :func:`available_workloads`, e.g. ``"digits_mlp"``, or a
            ``"package.module:Class"`` reference.
        args: Keyword arguments of the class's constructor (the spec's ``workload_args``).

    Returns:
        A new instance.

    Raises:
        UnknownWorkloadError: ``name`` is not registered (the message lists what is).
        RuntimeError: Two installed packages register different objects as ``name``.
        TypeError: ``name`` is not a string, or it names a function, not a
            :class:`Workload` (functions run through :func:`load_workload`).
        WorkloadArgsError: ``args`` do not fit the constructor.
    """
    if not isinstance(name, str):
        raise TypeError(f"workload name must be a str, but got {type(name).__name__}: {name!r}")
    workload = load_workload(name, args)
    if not isinstance(workload, Workload):
        raise TypeError(
            f"workload {name!r} is a function, not a workers.workloads.Workload: it trains with its own "
            "loop (standard execution) and has no model, data or metrics to load"
        )
    return workload
