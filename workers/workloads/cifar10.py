"""``cifar10_cnn``: classify CIFAR-10's 32x32 colour images with a small CNN.

Reads the CIFAR-10 "python version" (Krizhevsky 2009; ``cifar-10-python.tar.gz`` from
https://www.cs.toronto.edu/~kriz/cifar.html, unpacked) from a local folder and never
downloads: ``data_batch_1`` … ``data_batch_5`` (50,000 training images), ``test_batch``
(10,000, used for validation) and ``batches.meta``. Each batch file is a pickled dict
with ``b"data"``, a uint8 array ``(N, 3072)`` holding each image channel-major (R, G, B
planes of 32x32, row-major), and ``b"labels"``, N ints in 0..9.

The files are unpickled by :class:`_ArrayUnpickler`, which resolves only the numpy
names an array pickle uses (``_reconstruct``, ``ndarray``, ``dtype``, ``scalar``, and
``_codecs.encode`` for bytes) and
refuses every other global: a ``data_dir`` (which a spec sent over HTTP may name)
cannot make the server run code a pickle names. The model follows the small CNN of PyTorch's CIFAR-10
tutorial in spirit, with GroupNorm (parameters only, so K copies can be packed) instead
of batch-norm (running-statistics buffers cannot).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from workers.workloads._args import MAX_BATCH, WorkloadArgs
from workers.workloads._base import Batch, Workload, check_training_options
from workers.workloads._tabular import check_positive_int

__all__ = ["DATA_DIR_ENV", "Cifar10CNN", "cifar10_cnn", "random_crop_flip"]

DATA_DIR_ENV = "ADAMTUNE_CIFAR10_DIR"
"""Environment variable naming the CIFAR-10 folder when the ``data_dir`` argument is not given."""

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
VAL_FILE = "test_batch"
META_FILE = "batches.meta"
_FILES = (*TRAIN_FILES, VAL_FILE, META_FILE)
N_CLASSES = 10
_PIXELS = 3 * 32 * 32  # 3072 bytes per image: R, G, B planes of 32x32
_FIX = (
    "it needs the CIFAR-10 python batches (data_batch_1..5, test_batch, batches.meta, from "
    f"cifar-10-python.tar.gz) — set workload_args.data_dir or {DATA_DIR_ENV}"
)
# Exceptions unpickling damaged bytes raises: pickle's own, and those its docs list, plus
# what numpy's array reconstruction raises on a bad state.
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError, TypeError, ValueError,
)  # fmt: skip


class _BadData(Exception):
    """A problem with the folder's files; the message starts with what is wrong, e.g. ``has no test_batch``."""


@dataclass(frozen=True)
class _Cifar10:
    """A folder's CIFAR-10 arrays as read from disk (read-only, shared per process)."""

    train_images: Tensor  # (50000, 3, 32, 32) uint8, data_batch_1..5 in order
    train_labels: Tensor  # (50000,) int64 in 0..9
    val_images: Tensor  # (10000, 3, 32, 32) uint8, test_batch
    val_labels: Tensor  # (10000,) int64
    label_names: tuple[str, ...]  # 10 class names from batches.meta
    sha256: str  # of the six batch files' bytes, in _FILES order


def _stamps(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """``(name, size in bytes, mtime in ns)`` of each expected file; raises ``_BadData`` for a missing one."""
    stamps = []
    for name in _FILES:
        try:
            stat = (folder / name).stat()
        except OSError:
            raise _BadData(f"has no {name}") from None
        stamps.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


@functools.lru_cache(maxsize=2)  # the real set is ~180 MB of uint8 per entry
def _read(folder: str, stamps: tuple[tuple[str, int, int], ...]) -> _Cifar10:
    # ``stamps`` is in the key so that rewritten files are read again.
    digest = hashlib.sha256()
    batches = {}
    for name in (*TRAIN_FILES, VAL_FILE):
        raw = _read_bytes(Path(folder, name))
        digest.update(raw)
        batches[name] = _check_batch(name, _unpickle(name, raw))
    meta = _unpickle(META_FILE, _read_bytes(Path(folder, META_FILE)))
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != N_CLASSES:
        raise _BadData(f"has a {META_FILE} without the 10 b'label_names' (got {_describe(meta)})")
    train_x = np.concatenate([batches[name][0] for name in TRAIN_FILES])  # (N_train, 3072)
    train_y = np.concatenate([batches[name][1] for name in TRAIN_FILES])  # (N_train,)
    val_x, val_y = batches[VAL_FILE]  # (N_val, 3072), (N_val,)
    return _Cifar10(
        train_images=torch.from_numpy(train_x).view(-1, 3, 32, 32),  # (N_train, 3, 32, 32)
        train_labels=torch.from_numpy(train_y),
        val_images=torch.from_numpy(val_x).view(-1, 3, 32, 32),  # (N_val, 3, 32, 32)
        val_labels=torch.from_numpy(val_y),
        label_names=tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names),
        sha256=digest.hexdigest(),
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise _BadData(f"has a {path.name} that cannot be read ({e.strerror})") from None


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, bytes and numpy arrays, and nothing else
    (the ``find_class`` restriction of the ``pickle`` docs, "Restricting Globals")."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
        ("__builtin__", "bytes"),
        ("builtins", "bytes"),  # bytes in protocol-2 pickles
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def _unpickle(name: str, raw: bytes) -> object:
    try:
        # encoding="bytes": the official files are Python 2 pickles whose str keys load as bytes
        return _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _UNPICKLE_ERRORS as e:
        detail = " ".join(str(e).split())[:200]  # one line
        raise _BadData(
            f"has a {name} that is not a readable pickle ({type(e).__name__}: {detail}); truncated or corrupt?"
        ) from None


def _check_batch(name: str, batch: object) -> tuple[np.ndarray, np.ndarray]:
    """``(data (N, 3072) uint8, labels (N,) int64)`` of one unpickled batch, else ``_BadData``."""
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise _BadData(
            f"has a {name} that is not a CIFAR-10 batch (a dict with b'data' and b'labels'), but {_describe(batch)}"
        )
    data = batch[b"data"]
    shape_ok = isinstance(data, np.ndarray) and data.ndim == 2 and data.shape[1] == _PIXELS and len(data) > 0
    if not (shape_ok and data.dtype == np.uint8):
        got = f"a {data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else _describe(data)
        raise _BadData(f"has a {name} whose b'data' must be a uint8 array of shape (N >= 1, {_PIXELS}), but is {got}")
    try:
        labels = np.asarray(batch[b"labels"])
    except ValueError:  # a ragged list
        labels = np.asarray(None)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise _BadData(f"has a {name} whose b'labels' must be a list of ints, but is {_describe(batch[b'labels'])}")
    if len(labels) != len(data):
        raise _BadData(f"has a {name} with {len(data)} images but {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise _BadData(f"has a {name} whose labels must lie in 0..9, but span {labels.min()}..{labels.max()}")
    return np.ascontiguousarray(data), labels.astype(np.int64)


def _describe(obj: object) -> str:
    if isinstance(obj, dict):
        return f"a dict with keys {sorted(map(repr, obj))[:6]}"
    if isinstance(obj, (list, tuple)):
        return f"a {type(obj).__name__} of {len(obj)}"
    return f"a {type(obj).__name__}"


def _channel_stats(images: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std (population) of uint8 ``images`` ``(N, 3, H, W)``, in [0, 1]
    pixel units, float32 ``(3,)`` each; exact (from 256-bin histograms); a constant channel gets std 1."""
    values = torch.arange(256, dtype=torch.float64)  # (256,)
    means, stds = [], []
    for c in range(3):
        counts = torch.bincount(images[:, c].flatten(), minlength=256).to(torch.float64)  # (256,)
        mean = (counts * values).sum() / counts.sum()
        var = (counts * (values - mean) ** 2).sum() / counts.sum()
        means.append(mean / 255)
        stds.append(var.sqrt() / 255 if var > 0 else torch.tensor(1.0, dtype=torch.float64))
    return torch.stack(means).to(torch.float32), torch.stack(stds).to(torch.float32)


def random_crop_flip(images: Tensor, generator: torch.Generator, *, padding: int = 4) -> Tensor:
    """Per image, a random ``H x W`` crop of the image zero-padded by ``padding`` pixels on
    each side, then a horizontal flip with probability 1/2 (torchvision's
    ``RandomCrop(32, padding=4)`` then ``RandomHorizontalFlip()``), vectorized over the batch.

    Draws ``2 B`` ints then ``B`` floats from ``generator`` only (never the global RNG).

    Args:
        images: ``(B, C, H, W)``, any dtype (uint8 pixels here: the padding is black).
        generator: A CPU ``torch.Generator``.
        padding: Pixels of zeros added on each side before cropping, >= 0.

    Returns:
        A new tensor like ``images``.
    """
    b, c, h, w = images.shape
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)  # (B,) crop's top row in the padded image
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator)  # (B,) crop's left column
    flip = torch.rand(b, generator=generator) < 0.5  # (B,)
    padded = F.pad(images, (padding, padding, padding, padding))  # (B, C, H + 2p, W + 2p)
    rows = dy[:, None] + torch.arange(h)  # (B, H)
    cols = dx[:, None] + torch.arange(w)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # (B, W): a flipped crop reads right to left
    return padded[
        torch.arange(b)[:, None, None, None],  # (B, 1, 1, 1)
        torch.arange(c)[None, :, None, None],  # (1, C, 1, 1)
        rows[:, None, :, None],  # (B, 1, H, 1)
        cols[:, None, None, :],  # (B, 1, 1, W)
    ]  # (B, C, H, W)


def _groups(channels: int) -> int:
    """GroupNorm groups for ``channels``: the most groups of >= 8 channels each (1 group below 16)."""
    return max((g for g in range(1, channels // 8 + 1) if channels % g == 0), default=1)


def cifar10_cnn(width: int, seed: int) -> nn.Sequential:
    """The CNN of :class:`Cifar10CNN`, PyTorch's default initialization drawn from ``seed``.

    ``[conv3x3 -> GroupNorm -> ReLU] x 2 -> maxpool`` at ``width`` channels, the same at
    ``2 width``, then global average pooling and ``Linear(2 width, 10)``. No batch-norm,
    dropout or buffers. 66,602 parameters at ``width=32``.

    Args:
        width: Channels of the first two convolutions, >= 1.
        seed: Initialization seed. torch's global random state is restored afterwards.

    Returns:
        A module mapping float32 images ``(B, 3, 32, 32)`` to logits ``(B, 10)``.
    """

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(_groups(c_out), c_out), nn.ReLU()]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            *block(3, width), *block(width, width), nn.MaxPool2d(2),  # (B, w, 16, 16)
            *block(width, 2 * width), *block(2 * width, 2 * width), nn.MaxPool2d(2),  # (B, 2w, 8, 8)
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 2w)
            nn.Linear(2 * width, N_CLASSES),  # (B, 10)
        )  # fmt: skip


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 64-bit generator seed for ``(seed, epoch)``: distinct pairs give unrelated streams."""
    return int.from_bytes(hashlib.sha256(f"cifar10_cnn/{seed}/{epoch}".encode()).digest()[:8], "little")


class _Batches(Iterable[Batch]):
    """A re-iterable of batches made on demand (the float32 split is never held whole)."""

    def __init__(self, make: Callable[[], Iterator[Batch]], count: int) -> None:
        self._make, self._count = make, count

    def __iter__(self) -> Iterator[Batch]:
        return self._make()

    def __len__(self) -> int:
        return self._count


class Cifar10CNNArgs(WorkloadArgs):
    """``cifar10_cnn``'s ``workload_args``, bounded (the model's size is checked by the tuner too)."""

    data_dir: str | None = Field(
        None, description="The folder of the CIFAR-10 python batches; null: $ADAMTUNE_CIFAR10_DIR."
    )
    batch_size: int = Field(128, ge=1, le=MAX_BATCH, description="Training mini-batch size in images.")
    augment: bool = Field(True, description="Random crop and horizontal flip of training images.")
    width: int = Field(32, ge=1, le=4_096, description="Channels of the first convolutions.")
    train_samples: int | None = Field(
        None, ge=1, le=50_000, description="Train on the first this many images; null: all."
    )
    val_samples: int | None = Field(
        None, ge=1, le=10_000, description="Validate on the first this many images; null: all."
    )
    val_batch_size: int = Field(1000, ge=1, le=MAX_BATCH, description="Validation batch size in images.")


class Cifar10CNN(Workload):
    """A small CNN (:func:`cifar10_cnn`) trained with cross-entropy on CIFAR-10.

    Inputs are float32 ``(B, 3, 32, 32)``, normalized per channel by the mean and std of
    the training images in use (``mean``, ``std``). Training batches follow one random
    permutation per epoch and, with ``augment``, a random crop (4 pixels of black
    padding) and horizontal flip per image, all drawn from a generator seeded by
    ``(seed, epoch)``; validation is ``test_batch`` in file order, unaugmented. The
    uint8 images stay in memory (about 180 MB for the full set, read once per process
    and shared by instances); each batch is converted when it is yielded.

    Reports ``val_loss`` (mean cross-entropy, nats) and ``val_accuracy`` (fraction of
    validation images classified correctly, in [0, 1]). Packed and solo training of
    the same trial agree to float32 rounding, except that where max-pooling ties (a
    constant region, such as a crop's black border) the two may pass the gradient to
    different equal inputs, both valid, which moves a step's gradient by ~1e-4 relative.

    Args:
        data_dir: Absolute path of the folder holding the unpacked python batches
            (``cifar-10-batches-py``); default: the ``ADAMTUNE_CIFAR10_DIR`` environment
            variable. On a multi-node Ray cluster it must exist at that path on every node.
        batch_size: Training mini-batch size in images; the last batch of an epoch is
            the remainder.
        augment: Random crop and horizontal flip of training images.
        width: Channels of the first convolutions (the second stage has ``2 width``).
        train_samples: Train on only the first this many images of ``data_batch_1..5``
            (None: all); the normalization statistics come from them alone.
        val_samples: Validate on only the first this many images of ``test_batch`` (None: all).
        val_batch_size: Validation batch size in images; bounds validation memory.
        bf16: See :class:`Workload`.
        grad_clip_norm: See :class:`Workload`.

    Attributes:
        data_dir: The folder read, absolute.
        label_names: The 10 class names of ``batches.meta``, in label order.
        train_images, val_images: How many images train and validate.
        mean, std: Per-channel mean and standard deviation of the training images in
            use, float32 ``(3,)`` each, in [0, 1] pixel units (inputs are
            ``(pixel / 255 - mean) / std``).

    Raises:
        ValueError: A bad argument (the message names it), or a missing, unreadable or
            malformed data folder or file (the message names the folder and file).
    """

    name = "cifar10_cnn"
    metrics = ("val_loss", "val_accuracy")
    default_metric = "val_loss"
    mode = "min"
    can_pack = True
    Args = Cifar10CNNArgs

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        batch_size: int = 128,
        augment: bool = True,
        width: int = 32,
        train_samples: int | None = None,
        val_samples: int | None = None,
        val_batch_size: int = 1000,
        bf16: bool = False,
        grad_clip_norm: float | None = None,
    ) -> None:
        self.batch_size = check_positive_int("batch_size", batch_size)
        if not isinstance(augment, bool):
            raise ValueError(f"augment must be true or false, but got {augment!r}")
        self.augment = augment
        self.width = check_positive_int("width", width)
        self.val_batch_size = check_positive_int("val_batch_size", val_batch_size)
        for arg, value in (("train_samples", train_samples), ("val_samples", val_samples)):
            if value is not None:
                check_positive_int(arg, value)
        self.bf16, self.grad_clip_norm = check_training_options(bf16, grad_clip_norm)
        self.data_dir, self._where = _folder(data_dir)
        try:
            self._key = (str(self.data_dir), _stamps(self.data_dir))
        except _BadData as e:
            raise ValueError(f"cifar10_cnn: {self._where} {e}; {_FIX}") from None
        data = self._data()
        self.label_names = data.label_names
        self.train_images = _count("train_samples", train_samples, len(data.train_labels), self._where)
        self.val_images = _count("val_samples", val_samples, len(data.val_labels), self._where)
        self.mean, self.std = _channel_stats(data.train_images[: self.train_images])  # (3,), (3,)

    def _data(self) -> _Cifar10:
        # Looked up per use, not held: a pickled instance (sent to a Ray worker) stays small.
        try:
            return _read(*self._key)
        except _BadData as e:
            raise ValueError(f"cifar10_cnn: {self._where} {e}; {_FIX}") from None

    def _inputs(self, images: Tensor) -> Tensor:
        scale = (1 / (255 * self.std))[:, None, None]  # (3, 1, 1)
        shift = (self.mean / self.std)[:, None, None]  # (3, 1, 1)
        return images.to(torch.float32) * scale - shift  # (B, 3, 32, 32) float32

    def build_model(self, seed: int) -> nn.Module:
        return cifar10_cnn(self.width, seed)

    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_images / self.batch_size)

    def train_batches(self, epoch: int, seed: int) -> Iterator[Batch]:
        data = self._data()
        generator = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        order = torch.randperm(self.train_images, generator=generator)  # (N_train,)
        for index in order.split(self.batch_size):
            images = data.train_images[index]  # (B, 3, 32, 32) uint8
            if self.augment:
                images = random_crop_flip(images, generator)
            yield self._inputs(images), data.train_labels[index]  # (B, 3, 32, 32) float32, (B,) int64

    def val_batches(self) -> Iterable[Batch]:
        data = self._data()

        def batches() -> Iterator[Batch]:
            for start in range(0, self.val_images, self.val_batch_size):
                end = min(start + self.val_batch_size, self.val_images)
                yield self._inputs(data.val_images[start:end]), data.val_labels[start:end]  # (B, 3, 32, 32), (B,)

        return _Batches(batches, math.ceil(self.val_images / self.val_batch_size))

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        # output: (B, 10) logits, target: (B,) class indices. F.cross_entropy's value,
        # written out: under vmap (packed trials) cross_entropy's decomposition imports sympy.
        return -F.log_softmax(output, dim=-1).gather(-1, target.unsqueeze(-1)).mean()

    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        accuracy = (output.argmax(dim=-1) == target).to(torch.float32).mean()
        return {"val_loss": float(self.loss(output, target)), "val_accuracy": float(accuracy)}

    def fingerprint(self) -> dict[str, str]:
        """``data_dir``, ``train_images`` and ``val_images`` in use, and ``sha256``: the
        SHA-256 of the bytes of data_batch_1..5 and test_batch, concatenated in that order
        (all of each file, whatever ``train_samples`` or ``val_samples``)."""
        return {
            "data_dir": str(self.data_dir),
            "train_images": str(self.train_images),
            "val_images": str(self.val_images),
            "sha256": self._data().sha256,
        }

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(data_dir={str(self.data_dir)!r}, batch_size={self.batch_size}, width={self.width})"


def _folder(data_dir: object) -> tuple[Path, str]:
    """The CIFAR-10 folder and how to name it in messages (``data_dir '/x'`` or ``ADAMTUNE_CIFAR10_DIR '/x'``)."""
    if data_dir is None:
        data_dir, source = os.environ.get(DATA_DIR_ENV) or None, DATA_DIR_ENV
        if data_dir is None:
            raise ValueError(
                f"cifar10_cnn: no CIFAR-10 folder given (data_dir is null and {DATA_DIR_ENV} unset); {_FIX}"
            )
    elif isinstance(data_dir, (str, os.PathLike)):
        source = "data_dir"
    else:
        raise ValueError(f"data_dir must be a folder path (a string) or null, but got {data_dir!r}")
    folder = Path(data_dir).expanduser()
    if not folder.is_absolute():
        # Ray workers may run in another working directory than the driver that checked it.
        raise ValueError(
            f"cifar10_cnn: {source} must be an absolute path, but got {str(data_dir)!r}; use {str(folder.resolve())!r}"
        )
    where = f"{source} {str(folder)!r}"
    if not folder.exists():
        raise ValueError(f"cifar10_cnn: {where} does not exist; {_FIX}")
    if not folder.is_dir():
        raise ValueError(f"cifar10_cnn: {where} is not a folder; {_FIX}")
    return folder, where


def _count(arg: str, wanted: int | None, available: int, where: str) -> int:
    if wanted is not None and wanted > available:
        raise ValueError(f"{arg} must be <= the {available} images in {where}, but got {wanted}")
    return available if wanted is None else wanted
