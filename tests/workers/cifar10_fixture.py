"""A miniature CIFAR-10 in the real "python version" on-disk format, for tests and timing.

The official ``cifar-10-batches-py`` files are Python 2 protocol-2 pickles of dicts with
bytes keys: each batch ``{b"batch_label", b"labels", b"data", b"filenames"}``, where
``b"data"`` is a uint8 ``(N, 3072)`` array (R, G, B planes of 32x32, row-major), and
``batches.meta`` ``{b"num_cases_per_batch", b"label_names", b"num_vis"}``. The miniature
writes the same, with random images whose class is learnable: each class has its own
mean colour, plus pixel noise.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np

__all__ = ["LABEL_NAMES", "PALETTE", "write_cifar10_miniature"]

LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

PALETTE = np.array(
    [[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40], [200, 40, 200],
     [40, 200, 200], [230, 140, 60], [120, 60, 160], [90, 90, 90], [170, 220, 120]],
    dtype=np.float64,
)  # fmt: skip
"""(10, 3) mean colour of each class's images, 0..255."""

NOISE_STD = 40.0
"""Standard deviation of the per-pixel Gaussian noise around the class colour, 0..255 units."""

# Pickled by Python 3 with numpy 2, the array's reconstructor is numpy._core.multiarray;
# the official files (Python 2, numpy 1) name numpy.core.multiarray. Written as they do.
_NEW_GLOBAL = b"cnumpy._core.multiarray\n_reconstruct\n"
_OLD_GLOBAL = b"cnumpy.core.multiarray\n_reconstruct\n"


class _Python2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended
    """Protocol 2, with bytes written as Python 2 ``str`` (``BINSTRING``), as in the official
    files: ``pickle.load`` reads those back as bytes only with ``encoding="bytes"`` (the
    default, ASCII, fails on the pixel data), where Python 3's own protocol 2 writes
    ``_codecs.encode(...)`` calls that load as bytes under any encoding (and twice the size)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def _dump(obj: dict, path: Path) -> None:
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    raw = buffer.getvalue()
    if raw.count(_NEW_GLOBAL) == 1:
        raw = raw.replace(_NEW_GLOBAL, _OLD_GLOBAL)
    path.write_bytes(raw)


def _batch(rng: np.random.Generator, n: int, label: bytes, first: int) -> dict:
    labels = rng.permutation(np.arange(n) % 10)  # (n,) balanced classes
    colour = PALETTE[labels][:, :, None]  # (n, 3, 1)
    pixels = colour + rng.normal(0.0, NOISE_STD, size=(n, 3, 1024))  # (n, 3, 1024) channel planes
    data = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(n, 3072)  # (n, 3072) R|G|B
    return {
        b"batch_label": label,
        b"labels": [int(y) for y in labels],
        b"data": data,
        b"filenames": [f"miniature_{first + i:05d}.png".encode() for i in range(n)],
    }


def write_cifar10_miniature(folder: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """Write ``data_batch_1..5``, ``test_batch`` and ``batches.meta`` into ``folder``.

    Args:
        folder: Where to write; created (with parents) if missing; files are overwritten.
        per_batch: Images per batch file, >= 1 (the real files hold 10,000): 5 ``per_batch``
            training and ``per_batch`` validation images; classes are balanced when it is a
            multiple of 10.
        seed: Seeds the labels' order and the pixel noise.

    Returns:
        ``folder``.
    """
    if per_batch < 1:
        raise ValueError(f"per_batch must be >= 1, but got {per_batch}")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        label = f"training batch {i} of 5".encode()
        _dump(_batch(rng, per_batch, label, (i - 1) * per_batch), folder / f"data_batch_{i}")
    _dump(_batch(rng, per_batch, b"testing batch 1 of 1", 5 * per_batch), folder / "test_batch")
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in LABEL_NAMES], b"num_vis": 3072}
    _dump(meta, folder / "batches.meta")
    return folder
