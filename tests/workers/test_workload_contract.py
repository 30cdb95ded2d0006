"""The workload contract: batches from iterators, batched validation, bf16 autocast and
gradient clipping, in the single-trial loop and the packed trainer alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workers.packed import PackedTrainer, train_packed
from workers.training import train
from workers.workloads import Workload, get_workload

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = {"lr": 3e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

# Curves of the in-memory MLPs before the contract moved to batch iterators (seed 1,
# one torch thread): train_loss, val_loss per epoch. They must not change beyond float
# rounding: scikit-learn/numpy releases move the loaded data in its last bits (~2e-8 relative).
CURVE_REL = 1e-6
BEFORE = {
    "digits_mlp": [
        (1.6667197051774982, 0.9787030816078186),
        (0.5956310228125121, 0.39866510033607483),
        (0.25206142935640047, 0.25287142395973206),
    ],
    "diabetes_mlp": [
        (0.8104114914075511, 0.5675929188728333),
        (0.5665831387894636, 0.5653427839279175),
        (0.5013071792490421, 0.5656072497367859),
    ],
}
BEFORE_PACKED_LR_1E2 = [(0.8684779999151608, 0.2607975900173187), (0.12418904395809004, 0.1532183289527893)]


def flat(pairs: list[tuple[float, float]]) -> list[float]:
    return [v for pair in pairs for v in pair]


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_bundled_mlp_curves_are_unchanged(name: str) -> None:
    rows = list(train(CONFIG, workload=name, max_epochs=3, seed=1))
    assert [v for r in rows for v in (r["train_loss"], r["val_loss"])] == pytest.approx(
        flat(BEFORE[name]), rel=CURVE_REL
    )


def test_packed_mlp_curves_are_unchanged() -> None:
    epochs = list(train_packed([CONFIG, {**CONFIG, "lr": 1e-2}], workload="digits_mlp", max_epochs=2, seed=1))
    for member, before in ((0, BEFORE["digits_mlp"][:2]), (1, BEFORE_PACKED_LR_1E2)):
        got = [v for rows in epochs for v in (rows[member]["train_loss"], rows[member]["val_loss"])]
        assert got == pytest.approx(flat(before), rel=CURVE_REL)


class Streamed(Workload):
    """Regression on batches a generator makes on the fly (no tensor holds the data set)."""

    name = "streamed"
    metrics = ("val_loss", "val_mae")
    can_pack = True

    def __init__(
        self, *, steps: int = 6, batch: int = 8, grad_clip_norm: float | None = None, bf16: bool = False
    ) -> None:
        self.steps, self.batch, self.grad_clip_norm, self.bf16 = steps, batch, grad_clip_norm, bf16

    def build_model(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))

    def steps_per_epoch(self) -> int:
        return self.steps

    def _batch(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.randn(self.batch, 4, generator=generator)  # (B, 4)
        return x, (x.sum(dim=1, keepdim=True) * 3.0).sin()  # (B, 1)

    def train_batches(self, epoch: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        for _ in range(self.steps):
            yield self._batch(generator)

    def val_batches(self) -> list[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(12345)
        return [self._batch(generator) for _ in range(3)]

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(output, target)

    def evaluate(self, output: Tensor, target: Tensor) -> dict[str, float]:
        return {"val_loss": float(self.loss(output, target)), "val_mae": float((output - target).abs().mean())}


def _assert_rows_close(packed: list[dict], alone: list[dict], rel: float = 1e-5) -> None:
    for p, a in zip(packed, alone, strict=True):
        for key in ("train_loss", "val_loss", "val_mae"):
            assert p[key] == pytest.approx(a[key], rel=rel, abs=1e-7), key


@pytest.mark.parametrize("clip", [None, 0.05])
def test_streamed_batches_pack_to_the_single_trial_curves(clip: float | None) -> None:
    configs = [CONFIG, {**CONFIG, "lr": 2e-2, "beta2": 0.99}, {**CONFIG, "lr": 1e-4}]
    workload = Streamed(grad_clip_norm=clip)
    packed = list(train_packed(configs, workload=workload, max_epochs=3, seed=2))
    for k, config in enumerate(configs):
        alone = list(train(config, workload=workload, max_epochs=3, seed=2))
        _assert_rows_close([rows[k] for rows in packed], alone)


def test_refilled_member_takes_its_own_epochs_batches() -> None:
    workload = Streamed()
    trainer = PackedTrainer([CONFIG, {**CONFIG, "lr": 1e-2}], workload=workload, max_epochs=3, seed=4)
    trainer.run_epoch()
    trainer.stop(1)
    second = trainer.run_epoch(assign={1: {**CONFIG, "lr": 5e-3}})  # slot 0 at epoch 2, slot 1 at epoch 1
    third = trainer.run_epoch()
    alone_0 = list(train(CONFIG, workload=workload, max_epochs=3, seed=4))
    alone_1 = list(train({**CONFIG, "lr": 5e-3}, workload=workload, max_epochs=3, seed=4))
    _assert_rows_close([second[0], third[0]], alone_0[1:])
    _assert_rows_close([second[1], third[1]], alone_1[:2])


def test_clipping_matches_torchs_clip_grad_norm() -> None:
    workload = Streamed(grad_clip_norm=0.05)
    rows = list(train(CONFIG, workload=workload, max_epochs=2, seed=0))
    model = workload.build_model(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=CONFIG["lr"])
    for epoch in (1, 2):
        for x, y in workload.train_batches(epoch, 0):
            loss = workload.loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
            optimizer.step()
    with torch.no_grad():
        val = [workload.evaluate(model(x), y)["val_loss"] for x, y in workload.val_batches()]
    assert rows[-1]["val_loss"] == pytest.approx(sum(val) / len(val), rel=1e-5)
    unclipped = list(train(CONFIG, workload=Streamed(), max_epochs=2, seed=0))
    assert rows[-1]["val_loss"] != pytest.approx(unclipped[-1]["val_loss"], rel=1e-3)  # clipping changed training


def test_bf16_autocast_trains_close_to_float32_and_packs() -> None:
    configs = [CONFIG, {**CONFIG, "lr": 1e-2}]
    fp32 = list(train(CONFIG, workload=Streamed(), max_epochs=2, seed=3))
    bf16 = list(train(CONFIG, workload=Streamed(bf16=True), max_epochs=2, seed=3))
    assert bf16[-1]["val_loss"] != fp32[-1]["val_loss"]  # autocast really ran
    assert bf16[-1]["val_loss"] == pytest.approx(fp32[-1]["val_loss"], rel=5e-2)
    packed = list(train_packed(configs, workload=Streamed(bf16=True), max_epochs=2, seed=3))
    _assert_rows_close([rows[0] for rows in packed], bf16, rel=5e-2)


def test_validation_is_batched_and_averaged_by_batch_size() -> None:
    whole = list(train(CONFIG, workload="digits_mlp", max_epochs=1, seed=0))[0]
    workload = get_workload("digits_mlp")
    workload.val_batch_size = 100  # 360 rows: batches of 100, 100, 100, 60
    assert len(list(workload.val_batches())) == 4
    batched = list(train(CONFIG, workload=workload, max_epochs=1, seed=0))[0]
    assert batched["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-6)
    assert batched["val_accuracy"] == pytest.approx(whole["val_accuracy"], rel=1e-6)
    packed = next(train_packed([CONFIG], workload=workload, max_epochs=1, seed=0))[0]
    assert packed["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-5)


def test_a_workload_whose_batches_disagree_with_steps_per_epoch_is_an_error() -> None:
    class Liar(Streamed):
        def steps_per_epoch(self) -> int:
            return self.steps + 1

    with pytest.raises(ValueError, match=r"yielded 6 batches but steps_per_epoch\(\) is 7"):
        list(train(CONFIG, workload=Liar(), max_epochs=1))
    with pytest.raises(ValueError, match=r"yielded 6 batches but steps_per_epoch\(\) is 7"):
        next(train_packed([CONFIG], workload=Liar(), max_epochs=1))
