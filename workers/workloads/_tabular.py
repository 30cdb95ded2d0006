"""Helpers shared by the bundled tabular workloads: a fixed split and a seeded MLP."""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from workers.workloads._base import Split

__all__ = [
    "CACHE_DIR_ENV",
    "SPLIT_SEED",
    "VAL_FRACTION",
    "cached_split",
    "check_positive_int",
    "seeded_mlp",
    "standardized_split",
]

CACHE_DIR_ENV = "ADAMTUNE_CACHE_DIR"
"""Environment variable naming the folder of prepared data splits (default
``$XDG_CACHE_HOME/adamtune``, else ``~/.cache/adamtune``)."""

_CACHE_FORMAT = 1  # bump when the preparation below changes

SPLIT_SEED = 0
"""Seed of the train/val split; fixed, independent of any trial seed."""

VAL_FRACTION = 0.2
"""Fraction of samples held out for validation."""


def _standardize(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Statistics from the training rows only; constant columns are left unscaled.
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0.0] = 1.0
    return (train - mean) / std, (val - mean) / std


def standardized_split(x: np.ndarray, y: np.ndarray, *, classification: bool) -> tuple[Split, Split]:
    """Split, standardize and convert a tabular data set to torch tensors.

    Args:
        x: Features, shape ``(N, F)``.
        y: Targets, shape ``(N,)``: class labels if ``classification``, else reals.
        classification: Stratify the split by ``y`` and keep ``y`` as int64 labels;
            otherwise standardize ``y`` too (train statistics) and return it as a
            float32 column of shape ``(N, 1)``.

    Returns:
        ``(train, val)`` with float32 ``x`` standardized by training statistics.
    """
    from sklearn.model_selection import train_test_split

    stratify = y if classification else None
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=VAL_FRACTION, random_state=SPLIT_SEED, stratify=stratify)
    x_tr, x_va = _standardize(x_tr, x_va)
    if classification:
        y_tr_t = torch.as_tensor(y_tr, dtype=torch.int64)  # (N_train,)
        y_va_t = torch.as_tensor(y_va, dtype=torch.int64)  # (N_val,)
    else:
        y_tr, y_va = _standardize(y_tr[:, None], y_va[:, None])
        y_tr_t = torch.as_tensor(y_tr, dtype=torch.float32)  # (N_train, 1)
        y_va_t = torch.as_tensor(y_va, dtype=torch.float32)  # (N_val, 1)
    train = Split(torch.as_tensor(x_tr, dtype=torch.float32), y_tr_t)  # x: (N_train, F)
    val = Split(torch.as_tensor(x_va, dtype=torch.float32), y_va_t)  # x: (N_val, F)
    return train, val


def cached_split(name: str, build: Callable[[], tuple[Split, Split]]) -> tuple[Split, Split]:
    """``build()``'s split, kept in a file so that later worker processes skip building it.

    Building imports scikit-learn (about 1.5 s per process here, as long as the
    training of a small trial) to read its bundled data and split it; every trial's
    worker process would pay that. The file's name holds scikit-learn's version, the
    split's seed and fraction and a format number, so a change of any rebuilds it.
    Written to a temporary file and renamed, so concurrent workers never read half a
    file; a folder that cannot be written just means no cache.

    Args:
        name: the data set's name, e.g. ``"digits"``.
        build: makes the split (called on a cache miss).

    Returns:
        ``(train, val)`` exactly as ``build()`` returns them.
    """
    root = (
        os.environ.get(CACHE_DIR_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adamtune"
    )
    path = (
        Path(root)
        / f"{name}-sklearn{metadata.version('scikit-learn')}-seed{SPLIT_SEED}-val{VAL_FRACTION}-v{_CACHE_FORMAT}.pt"
    )
    try:
        train_x, train_y, val_x, val_y = torch.load(path, weights_only=True)
        return Split(train_x, train_y), Split(val_x, val_y)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError):
        pass  # missing or unreadable: build it
    train, val = build()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            tmp = f.name
            torch.save((*train, *val), f)
        os.replace(tmp, path)
    except OSError:  # a read-only home: build again next time
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return train, val


def seeded_mlp(sizes: tuple[int, ...], seed: int) -> nn.Sequential:
    """A ReLU MLP with PyTorch's default initialization drawn from ``seed``.

    Args:
        sizes: Layer widths ``(in, hidden..., out)``, at least two entries.
        seed: Initialization seed. torch's global random state is restored afterwards.

    Returns:
        ``Linear -> ReLU -> ... -> Linear`` with parameters only (no buffers).
    """
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, but got {value!r}")
    return value
