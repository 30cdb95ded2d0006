"""Training one trial on a worker: the Ray Tune function trainable, and a re-evaluation run.

The one module of ``workers`` that touches Ray (imported inside :func:`trainable` and
``_ray_node``, never at import): Ray ships ``workers`` to its nodes, not ``tuner``, so the
functions Ray calls on a worker live here.

Ray pickles :func:`trainable` (a sweep's trials) and :func:`retrain` (re-evaluating a
finished sweep's top configs with new seeds) by reference and runs them in a worker
process; both train through :func:`train_trial`. The
config it receives is already a plain Adam config (the driver's searcher turns
the study's samples into ``lr``, ``beta1``, ``beta2``, ``eps``, ...).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import math
import os
import shutil
import stat
import sys
import sysconfig
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Mirrored",
    "ScriptExit",
    "UserSource",
    "error_reason",
    "forget_modules",
    "is_script",
    "mirror",
    "retrain",
    "run_function",
    "run_script",
    "train_trial",
    "trainable",
    "trial_folder",
    "user_source",
]

#: Frames of a user's traceback that a failed trial's reason keeps.
REASON_FRAMES = 3

_WORKERS_DIR = os.path.dirname(os.path.abspath(__file__))


def trainable(config: Mapping[str, Any], **kwargs: Any) -> None:
    """Train one trial, reporting each epoch's metrics dict to Ray Tune.

    The trial's own folder (``trial.dir``) is Ray Tune's per-trial working directory under the
    Ray session's folder on this node (``.../<experiment>/working_dirs/<trial>``, the folder Tune
    itself would change into; Tune syncs it nowhere unless told to). Every row names it
    (``trial_dir``): the driver logs what the trial wrote there as its MLflow run's artifacts.

    ``kwargs``: the keyword arguments of :func:`train_trial` but ``report`` and ``trial_dir``.
    """
    from ray import tune

    train_trial(config, **kwargs, trial_dir=_tune_trial_folder(), report=lambda row: tune.report(dict(row)))


def _tune_trial_folder() -> Path:
    """Tune's working directory of the running trial: ``get_trial_dir()`` names the driver's
    staging folder of the trial when its actor starts and the working directory once reused,
    both ``<experiment>/<kind>/<trial>`` under the node's Ray session folder."""
    from ray import tune

    logdir = Path(tune.get_context().get_trial_dir())
    if logdir.parent.name in ("driver_artifacts", "working_dirs"):
        return logdir.parent.parent / "working_dirs" / logdir.name
    return logdir / "adamtune-trial"


def retrain(config: Mapping[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Train one config for every epoch (no scheduler) and return its epoch rows, oldest first:
    a re-evaluation with a new ``seed``. ``kwargs``: those of :func:`train_trial` but ``report``."""
    rows: list[dict[str, Any]] = []
    train_trial(config, **kwargs, report=lambda row: rows.append(dict(row)))
    return rows


def is_script(workload: Any) -> bool:
    """Whether ``workload`` names a script run as it is: a ``.py`` path without ``:attr``."""
    return isinstance(workload, str) and workload.endswith(".py") and ":" not in workload


def train_trial(
    config: Mapping[str, Any],
    *,
    workload: str | Callable[[Any], Any],
    workload_args: Mapping[str, Any] | None = None,
    script_args: Sequence[str] = (),
    max_epochs: int,
    seed: int,
    metric: str,
    threads: int = 1,
    device: str = "cpu",
    trial_dir: str | os.PathLike[str] | None = None,
    report: Callable[[dict[str, Any]], None],
) -> None:
    """Train one trial, passing each epoch's metrics dict to ``report``.

    A :class:`~workers.Workload` trains with :func:`workers.train`; a function
    ``train(trial)`` is called with a :class:`~workers.Trial`, and a script is run as it is
    (:func:`run_script`), after torch, numpy and ``random`` are seeded with ``seed``.

    **Fresh state.** The user's modules (those under the workload's folder: its file and the
    siblings it imports, or its package) are imported anew for every trial, so a model or a
    cache built at module level starts each trial as it would in a new process, also when Ray
    runs several trials in one worker process.

    **Its own folder.** A function or a script runs in its own folder (``trial_dir``, made
    if missing; ``None``: a temporary one, removed afterwards) as its current folder,
    ``trial.dir``: for a file or script workload it holds the files of the workload's folder
    (:func:`mirror`), so relative paths read as they do in that folder, and what the trial
    writes there is its own. The current folder is restored afterwards, and a kept folder then
    holds only what the trial wrote (:func:`trial_folder`); every row (the error row too) carries
    its path as ``trial_dir``, so the driver can log those files once the trial ended.

    Inside Ray every row carries ``ray_node``, the id of the node it trained on. A
    Python exception inside training does not escape: it is reported as a last
    row ``{metric: nan, "error": reason}`` and the trial ends (the driver records it
    as failed with that reason; see :func:`error_reason`). Divergence arrives as
    ``{"diverged": True, "reason": ...}``.

    Args:
        config: ``lr``, ``beta1``, ``beta2``, ``eps`` (+ optional ``weight_decay``,
            ``amsgrad``, ``decoupled_weight_decay``, ``warmup_fraction``, ``schedule``)
            and ``trial_number``.
        workload: a registered name or ``package.module:attr`` importable here, a script's
            path (``train.py``, relative to the current folder), or a function
            ``train(trial)`` itself (one defined in a notebook travels by value).
        workload_args: the spec's ``workload_args`` (already validated by the driver).
        script_args: a script's command-line arguments (``sys.argv[1:]`` while it runs).
        max_epochs: epochs to train unless the scheduler stops the trial first.
        seed: seeds model init and batch order (the same for every trial of a sweep;
            a re-evaluation's own).
        metric: the sweep's metric, filled with NaN in an error report.
        threads: torch intra-op threads (the CPUs Ray reserved for the trial).
        device: ``cpu`` or ``cuda``.
        trial_dir: the trial's own folder (see above).
        report: receives each epoch's row.
    """
    reported = {"epoch": 0}
    node = _ray_node()
    carried: dict[str, str] = {"ray_node": node} if node else {}  # what every row carries besides its metrics

    def forward(row: dict[str, Any]) -> None:
        reported["epoch"] = int(row["epoch"])
        report({**row, **carried})

    run = {
        "config": config,
        "workload_args": workload_args,
        "max_epochs": max_epochs,
        "seed": seed,
        "metric": metric,
        "threads": threads,
        "device": device,
        "report": forward,
    }
    try:
        from workers.workloads import Workload, load_workload

        source = user_source(workload)
        if source is not None:
            forget_modules(source.folder)
        if is_script(workload):
            script = Path(workload).resolve()
            body = functools.partial(run_script, script, script_args=script_args)
            shown = script.parent
        else:
            loaded = load_workload(workload, workload_args) if isinstance(workload, str) else workload
            if isinstance(loaded, Workload):
                from workers.training import train

                rows = train(
                    config,
                    workload=loaded,
                    max_epochs=max_epochs,
                    seed=seed,
                    device=device,
                    num_threads=threads,
                    diagnostics=True,
                )
                for row in rows:
                    forward(row)
                return
            body = functools.partial(run_function, loaded)
            shown = source.folder if source is not None and source.mirror else None
        with trial_folder(trial_dir, shown) as folder:
            if trial_dir is not None:  # a temporary folder is gone once the trial ends: nothing to log
                carried["trial_dir"] = str(folder)
            body(trial_dir=folder, **run)
    except Exception as e:  # noqa: BLE001 - any training error becomes the trial's recorded reason
        report({metric: math.nan, "epoch": reported["epoch"], "error": error_reason(e), **carried})


def _ray_node() -> str | None:
    """The id of the Ray node this process runs on (``None`` outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


# -- the user's code: fresh modules, its own folder ------------------------------------------


@dataclass(frozen=True)
class UserSource:
    """Where a workload's own code lies on this machine.

    Attributes:
        folder: the folder whose modules are the user's (imported anew every trial).
        mirror: whether a trial's folder holds this folder's files (a script's or a file
            workload's folder, Ray's ``working_dir``; not a package's own folder).
    """

    folder: Path
    mirror: bool


def user_source(workload: Any) -> UserSource | None:
    """The user's code behind ``workload``: a script's folder, the folder of the single-file
    module a ``module:attr`` names, or the package's folder; ``None`` for a function object, a
    registered name, and modules of ``workers``, the standard library or installed packages."""
    if is_script(workload):
        return UserSource(Path(workload).resolve().parent, mirror=True)
    if not isinstance(workload, str) or ":" not in workload:
        return None
    top = workload.partition(":")[0].partition(".")[0]
    loaded = sys.modules.get(top)
    try:
        spec = getattr(loaded, "__spec__", None) or importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    if not origin or origin in ("built-in", "frozen") or not os.path.isfile(origin) or _protected(origin):
        return None
    origin_path = Path(origin).resolve()
    if origin_path.name == "__init__.py":
        return UserSource(origin_path.parent, mirror=False)
    return UserSource(origin_path.parent, mirror=True)


def _protected(path: str) -> bool:
    """Whether ``path`` is code a trial never re-imports: ``workers``, the standard library, an
    installed package."""
    real = os.path.realpath(path)
    return "-packages" + os.sep in real or any(real.startswith(folder + os.sep) for folder in _library_folders())


@functools.cache
def _library_folders() -> tuple[str, ...]:
    """``workers``' folder and the standard library's."""
    paths = sysconfig.get_paths()
    return (os.path.realpath(_WORKERS_DIR), *{os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib")})


def forget_modules(folder: Path) -> list[str]:
    """Remove from ``sys.modules`` every module loaded from a file under ``folder`` (but
    :func:`_protected` ones and ``__main__``), so the next import runs it anew; returns
    their names."""
    root = os.path.realpath(folder) + os.sep
    gone = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name == "__main__" or not isinstance(file, str):
            continue
        real = os.path.realpath(file)
        if real.startswith(root) and not _protected(real):
            del sys.modules[name]
            gone.append(name)
    importlib.invalidate_caches()
    return gone


#: Never copied or linked into a trial's folder (what is not uploaded to Ray either).
MIRROR_SKIPS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "env",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ipynb_checkpoints",
        "tuner-data",
        "mlruns",
        "mlartifacts",
        "wandb",
        "lightning_logs",
    }
)
#: Files up to this size are copied into a trial's folder (a trial may overwrite its copy);
#: larger ones are linked (one shared copy: read them, write new files).
MIRROR_COPY_BYTES = 4 * 2**20
#: At most this much is copied per trial; the rest is linked.
MIRROR_COPY_TOTAL = 64 * 2**20
#: At most this many entries are made one by one; past them, whole folders are linked.
MIRROR_ENTRIES = 10_000


@dataclass(frozen=True)
class Mirrored:
    """What :func:`mirror` placed in a folder, so that the user's files can be told from those
    a trial wrote.

    Attributes:
        copies: each file copied, with its ``(size, modification time in ns)`` as copied.
        links: each symbolic link made, with its target.
        folders: each folder walked into (made, or there already), parents first.
    """

    copies: dict[Path, tuple[int, int]] = field(default_factory=dict)
    links: dict[Path, str] = field(default_factory=dict)
    folders: list[Path] = field(default_factory=list)

    def remove(self) -> None:
        """Remove what the trial left as it was placed: copies of unchanged size and
        modification time, links still to their target, then the folders left empty. A file
        the trial wrote, or rewrote over a copy, stays; nothing is raised."""
        for path, stamp in self.copies.items():
            if _stamp(path) == stamp:
                with contextlib.suppress(OSError):
                    path.unlink()
        for path, target in self.links.items():
            with contextlib.suppress(OSError):
                if os.readlink(path) == target:
                    path.unlink()
        for folder in reversed(self.folders):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty one goes


def _stamp(path: Path) -> tuple[int, int] | None:
    """A regular file's ``(size, mtime_ns)``, not following a link; ``None`` for anything else."""
    try:
        info = path.lstat()
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None


def mirror(source: Path, target: Path) -> Mirrored:
    """Make ``target`` hold ``source``'s files as they are: folders made anew, files up to
    :data:`MIRROR_COPY_BYTES` copied (within :data:`MIRROR_COPY_TOTAL`), larger ones linked
    (symbolic links to the one copy in ``source``). Entries already in ``target`` are
    replaced; :data:`MIRROR_SKIPS` are left out. Returns what it placed."""
    budget = {"bytes": MIRROR_COPY_TOTAL, "entries": MIRROR_ENTRIES}
    placed = Mirrored()

    def walk(src: Path, dst: Path) -> None:
        dst.mkdir(parents=True, exist_ok=True)
        for entry in sorted(os.scandir(src), key=lambda e: e.name):
            if entry.name in MIRROR_SKIPS or entry.name.endswith((".pyc", ".egg-info")):
                continue
            to = dst / entry.name
            budget["entries"] -= 1
            if entry.is_dir() and budget["entries"] > 0:
                if to.is_symlink() or to.is_file():
                    to.unlink()
                placed.folders.append(to)
                walk(Path(entry.path), to)
                continue
            if to.is_symlink() or to.is_file():
                to.unlink()
            elif to.is_dir():
                shutil.rmtree(to)
            size = entry.stat().st_size if entry.is_file() else 0
            if entry.is_file() and size <= MIRROR_COPY_BYTES and size <= budget["bytes"]:
                shutil.copy2(entry.path, to)
                budget["bytes"] -= size
                placed.copies[to] = _stamp(to)
            else:
                link = os.path.realpath(entry.path)
                to.symlink_to(link, target_is_directory=entry.is_dir())
                placed.links[to] = link

    walk(source, target)
    return placed


@contextmanager
def trial_folder(path: str | os.PathLike[str] | None, source: Path | None) -> Iterator[Path]:
    """The trial's own folder as the current folder while the block runs: ``path`` (made if
    missing) or a new temporary folder (removed afterwards), holding ``source``'s files
    (:func:`mirror`) when given. The current folder before is restored.

    Afterwards ``path`` holds only what the trial wrote: the mirrored files it left as they
    were are removed (:meth:`Mirrored.remove`), so the driver can take the whole folder as the
    trial's files (checkpoints, logs), and a sweep's folders do not keep a copy of the user's
    files each."""
    home = os.getcwd()
    temporary = path is None
    folder = Path(tempfile.mkdtemp(prefix="adamtune-trial-") if temporary else path).resolve()
    placed = Mirrored()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if source is not None:
            placed = mirror(source, folder)
        os.chdir(folder)
        yield folder
    finally:
        os.chdir(home)
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            placed.remove()


# -- running a trial's function or script ------------------------------------------------------


def run_function(
    fn: Callable[[Any], Any],
    config: Mapping[str, Any],
    *,
    workload_args: Mapping[str, Any] | None,
    max_epochs: int,
    seed: int,
    metric: str,
    threads: int,
    device: str,
    report: Callable[[dict[str, Any]], None],
    trial_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Call a user's ``fn(trial)`` as a sweep does: torch on ``threads`` threads; torch,
    numpy and ``random`` seeded with ``seed``; each epoch's row to ``report``; the trial is
    :func:`workers.trial.current` while it runs and ``trial.dir`` is ``trial_dir`` (``None``:
    the current folder).

    A trial that diverged or reported past ``max_epochs`` ends cleanly
    (:class:`~workers.trial.StopTrial`); any other exception from ``fn`` propagates.

    Raises:
        RuntimeError: ``fn`` returned without reporting an epoch.
    """
    import random

    import numpy as np
    import torch

    from workers.trial import StopTrial, Trial, running

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    trial = Trial(
        config=config,
        number=int(config.get("trial_number", 0)),
        seed=seed,
        max_epochs=max_epochs,
        device=device,
        workload_args=workload_args,
        metric=metric,
        reporter=report,
        dir=trial_dir,
    )
    with running(trial):
        try:
            fn(trial)
        except StopTrial:
            pass
    if trial.epochs_reported == 0:
        raise RuntimeError("train(trial) returned without calling trial.report(); report the metrics once per epoch")


class ScriptExit(RuntimeError):
    """A script ended with ``sys.exit`` and a non-zero status (an ``argparse`` error, say)."""


def run_script(
    path: str | os.PathLike[str], config: Mapping[str, Any], *, script_args: Sequence[str] = (), **run: Any
) -> None:
    """Run a script top to bottom as ``python PATH SCRIPT_ARGS`` would (``__name__ ==
    "__main__"``, ``sys.argv == [PATH, *script_args]``, its folder first on ``sys.path``), once,
    as a sweep's trial: the trial :func:`run_function` makes of ``config`` and ``run`` (its
    keyword arguments, ``workload_args`` to ``trial_dir``) runs the script, so inside, ``from
    workers import trial`` is this trial. ``sys.argv`` and ``sys.path`` are restored afterwards.

    ``sys.exit(0)`` (or ``sys.exit()``) ends the script normally.

    Raises:
        ScriptExit: it exited with another status; the message carries the last line it
            wrote to stderr (an ``argparse`` error names the script, not adamtune).
        RuntimeError: it ended without reporting an epoch.
    """
    import runpy

    path = Path(path)

    def script(trial: Any) -> None:
        argv, stderr = sys.argv, sys.stderr
        tail = _Tail(stderr)
        sys.argv = [str(path), *script_args]
        sys.path.insert(0, str(path.parent))
        sys.stderr = tail
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as e:
            if trial.stopped:
                raise  # the sweep ended the trial from trial.report (Ray Tune's stop): Ray's to handle
            if e.code not in (0, None):
                said = tail.last_line()
                status = e.code if isinstance(e.code, int) else 1
                why = said or (e.code if isinstance(e.code, str) else "")
                raise ScriptExit(f"{path.name} exited with status {status}" + (f": {why}" if why else "")) from None
        finally:
            sys.argv, sys.stderr = argv, stderr
            if str(path.parent) in sys.path:
                sys.path.remove(str(path.parent))
        if trial.epochs_reported == 0:
            raise RuntimeError(f"{path.name} ended without calling trial.report(); report the metrics once per epoch")

    run_function(script, config, **run)


class _Tail:
    """A text stream that writes through to another and keeps the last few KB written."""

    def __init__(self, inner: Any, keep: int = 4096) -> None:
        self._inner, self._keep, self._text = inner, keep, ""

    def write(self, text: str) -> int:
        self._text = (self._text + text)[-self._keep :]
        return self._inner.write(text)

    def flush(self) -> None:
        self._inner.flush()

    def last_line(self) -> str:
        """The last non-empty line written (``""``: none)."""
        lines = [line.strip() for line in self._text.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def error_reason(error: BaseException, *, skip: Sequence[str] = ()) -> str:
    """One line for a failed trial: ``"<Type>: <message>"`` plus the last frames of the
    user's code, e.g. ``"ZeroDivisionError: division by zero (at train.py:14 in step <-
    train.py:30 in train)"``.

    Frames in ``workers``, the standard library, installed packages (``site-packages``) and
    the folders ``skip`` are left out;
    at most :data:`REASON_FRAMES` frames, innermost first.
    """
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not f.filename.startswith(("<", _WORKERS_DIR, *skip)) and not _protected(f.filename)
    ]
    message = f"{type(error).__name__}: {error}".strip().replace("\n", " ")
    if not frames:
        return message
    where = " <- ".join(
        f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames[-REASON_FRAMES:])
    )
    return f"{message} (at {where})"
