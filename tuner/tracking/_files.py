"""A trial's files: which files of its folder (``trial.dir``) become artifacts of its MLflow run.

A function or script trial runs in a folder of its own (:func:`workers.trainable.train_trial`).
When it ends, that folder holds only what the trial wrote (checkpoints, logs): the user's files
placed there for it to read are removed then (:func:`workers.trainable.trial_folder`). Its
result rows name the folder (``trial_dir``), and the MLflow writer logs its files under the
trial run's artifact folder :data:`ARTIFACT_PATH` once the trial ended (:class:`Tracker`'s
``log_trial_files``); ``tuner export NAME --artifacts DIR`` copies the recommended trial's back.

The driver reads the folder from its own disk. With local Ray (the default) that is every
trial's; on a multi-node cluster a trial that ran on another node left its folder on that node's
disk, where the driver cannot read it, and its run gets no files (workers never talk to MLflow).
A Workload's trials (standard or packed) and re-evaluation runs have no folder of their own.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ARTIFACT_PATH", "MAX_BYTES", "MAX_FILES", "TrialFiles", "trial_files"]

#: The artifact folder of a trial's MLflow run that holds its files.
ARTIFACT_PATH = "trial_dir"
#: At most this many bytes of a trial's files are logged (1 GiB: a sweep of 100 trials may copy
#: up to 100 GiB into the artifact store), ...
MAX_BYTES = 2**30
#: ... and at most this many files (one upload each).
MAX_FILES = 1_000


@dataclass(frozen=True)
class TrialFiles:
    """The files of a trial's folder to log, and what was left out.

    Attributes:
        folder: the trial's folder.
        chosen: the files to log, relative to ``folder``, by path.
        left_out: how many files were not chosen for :data:`MAX_FILES` or :data:`MAX_BYTES`.
        left_out_bytes: their size in bytes.
    """

    folder: Path
    chosen: tuple[Path, ...] = ()
    left_out: int = 0
    left_out_bytes: int = 0


def trial_files(folder: str | os.PathLike[str]) -> TrialFiles:
    """The regular files under ``folder`` (none if it is not there), by path, up to
    :data:`MAX_FILES` files and :data:`MAX_BYTES` bytes in all: a file that would pass the bytes
    is left out, a smaller one after it may still fit. Symbolic links, and whatever lies under a
    linked folder, are never taken: they lead to files the trial did not write there."""
    folder = Path(folder)
    found: list[tuple[Path, int]] = []
    for root, dirs, files in os.walk(folder):  # does not descend into linked folders
        dirs.sort()
        for name in files:
            path = Path(root, name)
            try:
                info = path.lstat()
            except OSError:  # gone meanwhile
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((path.relative_to(folder), info.st_size))
    chosen: list[Path] = []
    left_out, left_out_bytes, budget = 0, 0, MAX_BYTES
    for path, size in sorted(found):
        if len(chosen) < MAX_FILES and size <= budget:
            chosen.append(path)
            budget -= size
        else:
            left_out += 1
            left_out_bytes += size
    return TrialFiles(folder, tuple(chosen), left_out, left_out_bytes)
