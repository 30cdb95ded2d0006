"""Where a sweep's workload comes from, checked on the driver and shipped to Ray workers.

A spec's ``workload:`` is one of:

- a registered name (entry-point group ``adamtune.workloads``), e.g. ``digits_mlp``;
- ``package.module:attr``, importable here (the current folder is searched too);
- ``path/to/file.py:attr``, relative to the spec file's folder (stored absolute);
- ``path/to/train.py``, a script run as it is, top to bottom, once per trial (script mode: the
  spec's ``script_args`` are its command line; it reaches the trial with ``from workers import
  trial``), relative to the spec file's folder (stored absolute);
- ``<module>:qualname``, a function handed over as an object in this process (``tuner.sweep``
  from Python or a notebook, :func:`object_ref`): it travels to the workers by value.

Files and objects run the user's code, so they are for the command line only: a spec that
arrives over HTTP may name registered workloads only, and nothing named in a request
is imported. The attribute is a :class:`workers.Workload` subclass or a function
``train(trial)``.

Ray workers get ``workers`` and the user's code through the job's ``runtime_env``
(``py_modules`` / ``working_dir``, uploaded to the cluster by Ray), so a worker node
needs only the image's dependencies, not adamtune's install nor the user's files.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tuner.errors import SpecError

__all__ = [
    "DEFAULT_EXCLUDES",
    "MAX_TRAINING_BYTES",
    "WorkloadInfo",
    "WorkloadRef",
    "check_workload",
    "normalize",
    "object_ref",
    "parse_ref",
    "runtime_env",
]

#: Never uploaded with the user's folder (Ray's gitignore-style patterns); a spec's
#: ``excludes`` adds to them.
DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".venv",
    "venv",
    "env",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    ".pytest_cache",
    ".mypy_cache",
    ".ipynb_checkpoints",
    "tuner-data",
    "mlruns",
    "mlartifacts",
    "wandb",
    "lightning_logs",
)

#: Largest training state one trial may need: float32 weights, gradients and Adam's two
#: moments, 16 bytes per trainable parameter (64 GiB: about 4.3 billion parameters).
MAX_TRAINING_BYTES = 64 * 2**30
#: Bytes of training state per trainable parameter (weight, gradient, exp_avg, exp_avg_sq).
_BYTES_PER_PARAMETER = 16

_MODULE_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")

#: Functions handed over as objects in this process (:func:`object_ref`), by their workload text.
#: They cannot be imported by name, so no stored spec can bring them back: a resumed sweep needs
#: the function handed over again.
_OBJECTS: dict[str, Callable[[Any], Any]] = {}


@dataclass(frozen=True)
class WorkloadRef:
    """A spec's ``workload:`` taken apart.

    Attributes:
        text: As the spec stores it (file paths absolute).
        kind: ``registered``, ``module``, ``file``, ``script`` or ``object`` (:func:`object_ref`).
        module: The module to import (for a file: its stem, importable from its folder).
        attr: The attribute of ``module`` (may be dotted); empty for a registered name or a script.
        path: The ``.py`` file (``file`` and ``script`` refs); else None.
    """

    text: str
    kind: Literal["registered", "module", "file", "script", "object"]
    module: str = ""
    attr: str = ""
    path: Path | None = None

    @property
    def worker_target(self) -> str | Callable[[Any], Any]:
        """What a Ray worker imports: a registered name's ``module:attr`` (so workers need
        no package metadata), or ``module:attr`` importable from the shipped code; for a
        script, its file name (in the shipped folder, the workers' current folder); for an
        ``object``, the function itself (Ray pickles it by value).

        Raises:
            ValueError: an ``object`` that was not handed over in this process.
        """
        if self.kind == "object":
            return _object(self.text)
        if self.kind == "registered":
            from workers.workloads import workload_target

            return workload_target(self.text)
        if self.kind == "script":
            return self.path.name
        return f"{self.module}:{self.attr}"


@dataclass(frozen=True)
class WorkloadInfo:
    """What the driver learned by building a spec's workload.

    Attributes:
        can_pack: a Workload class whose ``can_pack`` is true (a function never packs).
        fingerprint: the data it trains on (``Workload.fingerprint()``; empty for a function).
        facts: what a config card reports of a Workload class: ``parameters`` (trainable
            parameter count of ``build_model(0)``, built on torch's meta device), ``batch_size`` (training samples per
            step, ``None`` where the workload has no ``batch_size``), ``dtype``
            (``float32``, or ``bfloat16 autocast``) and ``steps_per_epoch``; empty for a function.
        built: the Workload instance built with the spec's args to check them (its data read);
            ``None`` for a function or script. The lr range test runs on it with local Ray.
    """

    can_pack: bool
    fingerprint: dict[str, str]
    facts: dict[str, Any] = field(default_factory=dict)
    built: Any = field(default=None, compare=False, repr=False)


def parse_ref(text: str) -> WorkloadRef:
    """Take a stored ``workload:`` apart without importing anything.

    Raises:
        ValueError: the text is neither a name, ``module:attr``, ``file.py:attr``, ``file.py`` nor
            ``<module>:qualname``.
    """
    if text.startswith("<") and ">:" in text:
        module, _, attr = text[1:].partition(">:")
        return WorkloadRef(text, "object", module=module, attr=attr)
    if text.endswith(".py") and ":" not in text:
        path = Path(text)
        return WorkloadRef(text, "script", module=path.stem, path=path)
    if ":" not in text:
        if not _NAME.match(text):
            raise ValueError(f"{text!r} is not a workload name, module:attr or file.py:attr")
        return WorkloadRef(text, "registered")
    location, _, attr = text.rpartition(":")
    if location.endswith(".py"):
        path = Path(location)
        return WorkloadRef(text, "file", module=path.stem, attr=attr, path=path)
    if not _MODULE_REF.match(text):
        raise ValueError(f"{text!r} is not package.module:attr nor path/to/file.py:attr")
    return WorkloadRef(text, "module", module=location, attr=attr)


def normalize(text: str, *, base_dir: Path | None, allow_code: bool) -> str:
    """The spec's ``workload:`` as stored: names and ``module:attr`` unchanged, a file or
    script path made absolute against ``base_dir`` (the spec's folder; else the current one).

    Raises:
        ValueError: code is named where only registered names are allowed (``allow_code``
            false: a spec that arrived over HTTP), an unknown name, a missing file, or an
            ``object`` not handed over in this process.
    """
    ref = parse_ref(text)
    if ref.kind != "registered" and not allow_code:
        raise ValueError(
            f"{text!r} names code; the service runs registered workloads only "
            f"({_registered()}). Run your own code with `tuner sweep run SPEC`, or register it under the "
            "'adamtune.workloads' entry-point group of an installed package"
        )
    if ref.kind == "registered":
        from workers.workloads import available_workloads

        if text not in available_workloads():
            own = (
                "; or name your own code as package.module:attr, path/to/file.py:attr or a script path/to/train.py"
                if allow_code
                else ""
            )
            raise ValueError(f"unknown workload {text!r}; registered workloads: {_registered()}{own}")
        return text
    if ref.kind == "object":
        _object(text)
        return text
    if ref.kind in ("file", "script"):
        path = ref.path if ref.path.is_absolute() else (base_dir or Path.cwd()) / ref.path
        if not path.is_file():
            raise ValueError(f"no file {str(path)!r} (paths are relative to the spec's folder)")
        return f"{path.resolve()}:{ref.attr}" if ref.kind == "file" else str(path.resolve())
    return text


def _registered() -> str:
    from workers.workloads import available_workloads

    return ", ".join(available_workloads()) or "none installed"


def object_ref(obj: Any) -> str:
    """The ``workload:`` text of a workload handed over as a Python object (``tuner.sweep``).

    A module-level attribute of a module other than ``__main__`` is named ``module:attr``, as a
    spec would name it (its module travels as :func:`runtime_env` ships such modules). Any other
    function (defined in a notebook, in a script run as ``__main__``, or inside another function)
    is kept in this process as ``<module>:qualname``: the executors send the function itself to
    the workers, where Ray's cloudpickle rebuilds it by value (modules and module-level names it
    uses are imported there by name). Handing one over again under the same text replaces the
    earlier one (a notebook cell run again).

    Raises:
        SpecError: ``obj`` is neither a Workload subclass nor a function of one argument, or it
            is a Workload class that cannot be imported by name (define it in a module).
    """
    from workers.workloads import check_target

    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    try:
        check_target(obj, qualname or repr(obj))
    except TypeError as e:
        raise SpecError(f"invalid sweep spec: workload: {e}") from None
    if (
        isinstance(module, str)
        and isinstance(qualname, str)
        and module != "__main__"
        and _named(module, qualname) is obj
    ):
        return f"{module}:{qualname}"
    if isinstance(obj, type):
        raise SpecError(
            f"invalid sweep spec: workload: the Workload class {qualname} is defined in {module}, where Ray workers "
            "cannot import it; define it in a module of its own and import it from there"
        )
    text = f"<{module or 'python'}>:{qualname or type(obj).__qualname__}"
    _OBJECTS[text] = obj
    return text


def _named(module: str, qualname: str) -> Any:
    """What ``module:qualname`` names among the modules imported here; ``None`` when nothing
    (a ``<locals>`` or ``<lambda>`` name, or a module not imported)."""
    if "<" in qualname:
        return None
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found


def _object(text: str) -> Callable[[Any], Any]:
    """The function handed over as ``text`` in this process (:func:`object_ref`).

    Raises:
        ValueError: none was: the sweep was started from Python in another process, and
            functions are not stored.
    """
    try:
        return _OBJECTS[text]
    except KeyError:
        raise ValueError(
            f"{text!r} is a function handed to tuner.sweep() in another Python process, and functions are not "
            "stored; hand it over again: tuner.sweep(train, name=..., resume=True)"
        ) from None


def check_workload(
    text: str,
    args: Mapping[str, Any],
    *,
    metric: str | None = None,
    execution: str = "standard",
) -> WorkloadInfo:
    """Import the workload on the driver and check it against the spec, before Ray starts.

    A Workload class is built with ``args`` (its constructor checks them and reads its
    data), and its model is built on torch's meta device: shapes without storage, so the
    parameter count costs no memory whatever the arguments ask for.

    Args:
        text: the stored ``workload:`` (see :func:`normalize`).
        args: the spec's ``workload_args``.
        metric: the spec's metric; a Workload class must declare it (functions are
            checked at their first report).
        execution: ``standard``, ``packed`` or ``auto``.

    Returns:
        Whether it can pack, and its data's fingerprint.

    Raises:
        SpecError: user code raises while importing, the attribute is missing or is
            neither a Workload subclass nor a function of one argument, the args do
            not fit (a Workload class is built with them, so its constructor checks
            their values), its training state (16 bytes per trainable parameter) is over
            :data:`MAX_TRAINING_BYTES`, the metric is not reported, or ``execution: packed``
            for a workload that cannot pack. One line each, naming the problem.
    """
    from workers.workloads import Workload, WorkloadArgsError, check_target, check_workload_args

    ref = parse_ref(text)
    if ref.kind == "script":
        return _check_script(ref.path, execution)
    target = _import(ref)
    try:
        check_target(target, text)
    except TypeError as e:
        raise SpecError(f"invalid sweep spec: workload: {e}") from None
    try:
        args = check_workload_args(target, args)
    except WorkloadArgsError as e:
        raise SpecError(f"invalid sweep spec: workload_args: {e}") from None
    is_class = isinstance(target, type) and issubclass(target, Workload)
    fingerprint: dict[str, str] = {}
    facts: dict[str, Any] = {}
    if is_class:
        try:
            built = target(**args)  # a constructor checks its values and its data
            fingerprint = built.fingerprint()
        except (TypeError, ValueError) as e:
            raise SpecError(f"invalid sweep spec: workload_args: {e}") from None
        facts = _facts(built)
        _check_size(facts["parameters"])
    if is_class and metric is not None and metric not in target.metrics:
        raise SpecError(
            f"invalid sweep spec: metric: workload {text!r} reports {', '.join(target.metrics)}, got {metric!r}"
        )
    can_pack = is_class and bool(target.can_pack)
    if execution == "packed" and not can_pack:
        why = "it is a function with its own training loop" if not is_class else "its can_pack is False"
        raise SpecError(
            f"invalid sweep spec: execution: workload {text!r} cannot pack ({why}); "
            "use execution: standard, or auto to pack only where possible"
        )
    return WorkloadInfo(can_pack, fingerprint, facts, built if is_class else None)


def _check_script(path: Path, execution: str) -> WorkloadInfo:
    """A script is checked without running it (its training runs at module level): it must
    exist and parse, and run standard.

    Raises:
        SpecError: it cannot be read, it does not parse (file and line named), or ``execution: packed``.
    """
    try:
        source = path.read_bytes()
    except OSError as e:
        raise SpecError(f"invalid sweep spec: workload: cannot read {str(path)!r}: {e.strerror}") from None
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        where = f" (at {path.name}:{e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
        message = e.msg if isinstance(e, SyntaxError) else str(e)
        raise SpecError(
            f"invalid sweep spec: workload: {path.name} does not parse: {type(e).__name__}: {message}{where}"
        ) from None
    if execution == "packed":
        raise SpecError(
            f"invalid sweep spec: execution: the script {path.name} cannot pack (a script runs its own training "
            "loop, one trial at a time); use execution: standard"
        )
    return WorkloadInfo(False, {})


def _facts(workload: Any) -> dict[str, Any]:
    """A built Workload's :attr:`WorkloadInfo.facts`."""
    import torch

    try:
        with torch.device("meta"):  # parameters without storage: nothing allocated
            model = workload.build_model(0)
    except Exception:  # noqa: BLE001 - user code that needs real tensors (e.g. it loads weights)
        model = workload.build_model(0)  # the command line's own process: built as it always was
    batch_size = getattr(workload, "batch_size", None)
    return {
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "batch_size": batch_size if isinstance(batch_size, int) else None,
        "dtype": "bfloat16 autocast" if workload.bf16 else "float32",
        "steps_per_epoch": int(workload.steps_per_epoch()),
    }


def _check_size(parameters: int) -> None:
    """Refuse a model whose training state is over :data:`MAX_TRAINING_BYTES` (SpecError)."""
    needed = parameters * _BYTES_PER_PARAMETER
    if needed > MAX_TRAINING_BYTES:
        raise SpecError(
            f"invalid sweep spec: workload_args: the model has {parameters:,} trainable parameters, "
            f"{needed / 2**30:,.1f} GiB of float32 weights, gradients and Adam moments per trial, over the "
            f"limit of {MAX_TRAINING_BYTES / 2**30:,.0f} GiB; choose smaller workload_args"
        )


def _import(ref: WorkloadRef) -> Any:
    """The workload's class or function, imported here; user code's errors become SpecError."""
    from workers.workloads import UnknownWorkloadError, resolve_target

    if ref.kind == "object":
        try:
            return _object(ref.text)
        except ValueError as e:
            raise SpecError(f"invalid sweep spec: workload: {e}") from None
    try:
        if ref.kind == "file":
            module = _import_file(ref.path)  # from its folder, as the workers run it
            obj: Any = module
            for part in ref.attr.split("."):
                obj = getattr(obj, part)
            return obj
        with _cwd_on_path():
            return resolve_target(ref.text)
    except UnknownWorkloadError as e:
        raise SpecError(f"invalid sweep spec: workload: {e}") from None
    except AttributeError:
        raise SpecError(
            f"invalid sweep spec: workload: {ref.text!r}: module {ref.module!r} has no attribute {ref.attr!r}"
        ) from None
    except TypeError as e:
        raise SpecError(f"invalid sweep spec: workload: {e}") from None
    except Exception as e:  # noqa: BLE001 - whatever the user's module raises at import
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise SpecError(
            f"invalid sweep spec: workload: importing {ref.text!r} raised {type(e).__name__}"
            + (f": {first}" if first else "")
            + _where(e)
        ) from None


def _where(error: BaseException) -> str:
    """`` (at train.py:3 in <module> <- ...)``: the user's frames of ``error``, innermost first
    (``""``: none, e.g. a ``SyntaxError``, whose message names file and line itself)."""
    from workers.trainable import error_reason

    reason = error_reason(error, skip=(str(Path(__file__).parent),))
    return reason[reason.rindex(" (at ") :] if reason.endswith(")") and " (at " in reason else ""


@contextmanager
def _cwd_on_path() -> Iterator[None]:
    """The current folder on ``sys.path`` for a while, as ``python -m`` has it (the
    ``tuner`` script's own path does not include it)."""
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        yield
    finally:
        if added:
            sys.path.remove(cwd)


def _import_file(path: Path) -> Any:
    """Import a ``.py`` file under a private module name as a worker runs it: its folder on
    ``sys.path`` (so it can import its siblings) and the current folder while it runs (so
    relative paths read what they read on the workers, whose folder is a copy of it)."""
    name = f"_adamtune_user_{abs(hash(str(path)))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    home = os.getcwd()
    sys.path.insert(0, folder)
    try:
        os.chdir(folder)
        spec.loader.exec_module(module)
    finally:
        os.chdir(home)
        sys.path.remove(folder)
    return module


def runtime_env(text: str, excludes: Sequence[str] = ()) -> dict[str, Any]:
    """The Ray ``runtime_env`` that ships ``workers`` and the workload's code to the workers.

    ``workers`` always travels as a ``py_modules`` entry. A file or script workload's folder
    becomes the ``working_dir`` (the workers' first import path; Tune is told not to move
    trials into its folders: each trial runs in a folder of its own holding that folder's
    files, :func:`workers.trainable.train_trial`). A
    ``module:attr`` whose top-level package lies outside installed packages travels as a
    ``py_modules`` entry; registered names need only ``workers`` (third-party packages
    that register workloads must be installed on the nodes), and so does an ``object``
    (it travels by value, :func:`object_ref`).

    Args:
        text: the stored ``workload:``.
        excludes: the spec's extra exclude patterns (gitignore syntax, relative to the folder).
    """
    import workers

    ref = parse_ref(text)
    env: dict[str, Any] = {
        "py_modules": [str(Path(workers.__file__).parent)],
        "excludes": [*DEFAULT_EXCLUDES, *excludes],
    }
    if ref.kind in ("file", "script"):
        env["working_dir"] = str(ref.path.parent)
        env["env_vars"] = {"RAY_CHDIR_TO_TRIAL_DIR": "0"}
    elif ref.kind == "module":
        location = _module_location(ref.module.partition(".")[0])
        if location is not None:
            env["py_modules"].append(str(location))
    return env


def _module_location(top: str) -> Path | None:
    """The folder (package) or file (module) of top-level module ``top`` when it is the
    user's source (not under site-packages / dist-packages, not ``workers``); else None."""
    if top == "workers":
        return None
    with _cwd_on_path():
        spec = importlib.util.find_spec(top)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    location = origin.parent if origin.name == "__init__.py" else origin
    if any(part.endswith("-packages") for part in location.parts) or str(location).startswith(sys.base_prefix):
        return None
    return location
