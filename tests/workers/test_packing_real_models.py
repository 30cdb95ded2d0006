"""Packing beyond MLPs: a pack of ``char_lm`` or ``cifar10_cnn`` trials (vmap over
functional_call) follows each member's single-trial curve, also after a refill puts
members at different epochs; a model that cannot pack says why."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cifar10_fixture import write_cifar10_miniature
from torch import nn

from workers.packed import PackedTrainer
from workers.training import train
from workers.workloads import Workload
from workers.workloads.char_lm import CharLM
from workers.workloads.cifar10 import Cifar10CNN

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIGS = [
    {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    {
        "lr": 3e-3,
        "beta1": 0.8,
        "beta2": 0.98,
        "eps": 1e-6,
        "weight_decay": 0.01,
        "schedule": "cosine",
        "warmup_fraction": 0.25,
    },
]
REFILL = {"lr": 2e-3, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8}


def _char_lm(tmp_path: Path) -> CharLM:
    text = "".join(f"def f{i}(x):\n    return x * {i % 7} + {i}\n" for i in range(200))
    (tmp_path / "corpus.txt").write_text(text)
    return CharLM(
        text_path=str(tmp_path / "corpus.txt"),
        n_layer=1,
        d_model=16,
        n_head=2,
        context=16,
        batch_size=4,
        steps_per_epoch=5,
        val_windows=6,
        val_batch_size=4,
        grad_clip_norm=1.0,
    )


def _cifar(tmp_path: Path) -> Cifar10CNN:
    folder = write_cifar10_miniature(tmp_path / "cifar", per_batch=8)
    # No augmentation: max-pool ties on the zero padding may route a gradient differently
    # under vmap (equally valid, not equal); see Cifar10CNN's docstring.
    return Cifar10CNN(data_dir=str(folder), batch_size=16, width=8, augment=False, val_batch_size=16)


@pytest.mark.parametrize("make", [_char_lm, _cifar], ids=["char_lm", "cifar10_cnn"])
def test_each_member_follows_its_single_trial_curve(make, tmp_path: Path) -> None:
    workload = make(tmp_path)
    trainer = PackedTrainer(CONFIGS, workload=workload, max_epochs=3, seed=5, diagnostics=True)
    first = trainer.run_epoch()
    second = trainer.run_epoch(stop=[1], assign={1: REFILL})  # slot 0 at epoch 2, slot 1 restarts at epoch 1
    third = trainer.run_epoch()
    curves = {
        0: [first[0], second[0], third[0]],
        1: [second[1], third[1]],
    }
    expected = {
        0: list(train(CONFIGS[0], workload=workload, max_epochs=3, seed=5, diagnostics=True)),
        1: list(train(REFILL, workload=workload, max_epochs=3, seed=5, diagnostics=True))[:2],
    }
    assert first[1]["val_loss"] == pytest.approx(
        next(train(CONFIGS[1], workload=workload, max_epochs=3, seed=5))["val_loss"], rel=1e-4
    )
    for slot in (0, 1):
        for packed, alone in zip(curves[slot], expected[slot], strict=True):
            for key in (*workload.metrics, "train_loss", "adam_update_rms_ratio"):
                assert packed[key] == pytest.approx(alone[key], rel=1e-4, abs=1e-6), (slot, packed["epoch"], key)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bench/gpu_check.sh runs it there)")
def test_a_char_lm_pack_trains_on_cuda(tmp_path: Path) -> None:
    """Under vmap, CUDA's memory-efficient attention backward rejected the batched strides
    ("LSE is not correctly aligned"): packs use SDPA's math backend on CUDA."""
    workload = _char_lm(tmp_path)
    rows = PackedTrainer(CONFIGS, workload=workload, max_epochs=1, seed=5, device="cuda").run_epoch()
    alone = next(train(CONFIGS[0], workload=workload, max_epochs=1, seed=5, device="cuda"))
    assert rows[0]["val_loss"] == pytest.approx(alone["val_loss"], rel=1e-4)


def test_a_model_with_buffers_cannot_pack_and_says_why() -> None:
    class WithBatchNorm(Workload):
        name = "bn"
        can_pack = False

        def build_model(self, seed: int) -> nn.Module:
            return nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))

        def steps_per_epoch(self) -> int:
            return 1

        def train_batches(self, epoch: int, seed: int):
            yield torch.zeros(4, 2), torch.zeros(4, 2)

        def val_batches(self):
            return [(torch.zeros(4, 2), torch.zeros(4, 2))]

        def loss(self, output, target):
            return ((output - target) ** 2).mean()

    with pytest.raises(ValueError, match="cannot pack .*buffers"):
        PackedTrainer(CONFIGS, workload=WithBatchNorm(), max_epochs=1)
