"""``workers.packed``: K configs trained as one stacked model give each config's own curve."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from workers.packed import PackedTrainer, stacked_forward, train_packed
from workers.training import train
from workers.workloads import get_workload
from workers.workloads.diabetes import DiabetesMLP

# Distinct values of every hyperparameter; all train stably for a few epochs.
CONFIGS = [
    {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    {"lr": 3e-3, "beta1": 0.5, "beta2": 0.99, "eps": 1e-6, "weight_decay": 1e-2},
    {"lr": 1e-3, "beta1": 0.95, "beta2": 0.9999, "eps": 1e-4, "weight_decay": 1e-1},
    {"lr": 2e-2, "beta1": 0.8, "beta2": 0.95, "eps": 1e-3},
]
# Diverges in its first epoch on diabetes_mlp (train() reports train_loss inf at step 2).
DIVERGING = {"lr": 1e10, "beta1": 1e-4, "beta2": 0.999, "eps": 1e-8}


def assert_same_curve(packed: list[dict], single: list[dict]) -> None:
    """Equal keys and epochs; values equal up to float32 rounding (a stacked matmul sums in another order)."""
    assert [set(row) for row in packed] == [set(row) for row in single]
    for got, want in zip(packed, single, strict=True):
        for key, value in want.items():
            if isinstance(value, float) and math.isfinite(value):
                assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (key, got, want)
            else:
                assert got[key] == value or (value != value and got[key] != got[key]), (key, got, want)


def member_rows(epochs: list[list[dict | None]], k: int) -> list[dict]:
    return [rows[k] for rows in epochs if rows[k] is not None]


@pytest.mark.parametrize("workload", ["digits_mlp", "diabetes_mlp"])
def test_each_member_follows_its_single_model_curve(workload: str) -> None:
    epochs = list(train_packed(CONFIGS, workload=workload, max_epochs=3, seed=3))
    assert len(epochs) == 3 and all(len(rows) == len(CONFIGS) for rows in epochs)
    for k, config in enumerate(CONFIGS):
        single = list(train(config, workload=workload, max_epochs=3, seed=3))
        assert_same_curve(member_rows(epochs, k), single)


def test_each_member_follows_its_own_lr_schedule_as_train_does() -> None:
    """Members with warm-up + cosine, linear, warm-up only and constant lrs; slot 1 is refilled
    after epoch 1, so it runs its schedule from step 0 while slot 0 is an epoch ahead."""
    configs = [
        {**CONFIGS[0], "schedule": "cosine", "warmup_fraction": 0.2},
        {**CONFIGS[1], "schedule": "linear"},
        {**CONFIGS[2], "schedule": "constant", "warmup_fraction": 0.5},
        CONFIGS[3],
    ]
    refill = {**CONFIGS[3], "schedule": "cosine", "warmup_fraction": 0.1}
    trainer = PackedTrainer(configs, workload="digits_mlp", max_epochs=3, seed=3, diagnostics=True)
    rows: dict[int, list[dict]] = {k: [row] for k, row in trainer.run_epoch().items()}
    rows[4] = []  # the refill's rows
    changes: dict = {"stop": [1], "assign": {1: refill}}
    while trainer.running():
        for slot, row in trainer.run_epoch(**changes).items():
            rows[4 if slot == 1 else slot].append(row)
        changes = {}
    for k, config in [(0, configs[0]), (2, configs[2]), (3, configs[3]), (4, refill)]:
        single = list(train(config, workload="digits_mlp", max_epochs=3, seed=3, diagnostics=True))
        assert_same_curve(rows[k], single)  # diagnostics too: after an epoch both hold the next step's lr
    unscheduled = {**configs[0], "schedule": "constant", "warmup_fraction": 0.0}
    constant = list(train(unscheduled, workload="digits_mlp", max_epochs=3, seed=3))
    assert rows[0][-1]["val_loss"] != pytest.approx(constant[-1]["val_loss"], rel=1e-3)  # the schedule mattered


@pytest.mark.parametrize("flags", [{"amsgrad": True}, {"decoupled_weight_decay": True}])
def test_update_rule_flags_shared_by_the_pack_match_single_runs(flags: dict) -> None:
    configs = [{**c, **flags} for c in CONFIGS[:3]]
    epochs = list(train_packed(configs, workload="diabetes_mlp", max_epochs=2))
    for k, config in enumerate(configs):
        assert_same_curve(member_rows(epochs, k), list(train(config, workload="diabetes_mlp", max_epochs=2)))


def test_stopping_one_member_leaves_the_others_unchanged() -> None:
    full = list(train_packed(CONFIGS[:3], workload="digits_mlp", max_epochs=4))

    run = train_packed(CONFIGS[:3], workload="digits_mlp", max_epochs=4)
    epochs = [next(run), next(run)]
    epochs.append(run.send({1}))  # stop member 1 after its epoch 2
    epochs.extend(run)

    assert len(epochs) == 4
    assert member_rows(epochs, 1) == member_rows(full, 1)[:2]
    assert all(rows[1] is None for rows in epochs[2:])
    for k in (0, 2):
        assert member_rows(epochs, k) == member_rows(full, k)  # bit for bit


def test_a_stopped_member_is_frozen() -> None:
    trainer = PackedTrainer(CONFIGS[:2], workload="diabetes_mlp", max_epochs=3)
    trainer.run_epoch()
    trainer.stop(0)
    frozen = trainer.state_dict(0)
    moving = trainer.state_dict(1)
    rows = trainer.run_epoch()
    assert set(rows) == {1} and trainer.state(0) == "stopped" and trainer.running() == [1]
    assert all(torch.equal(frozen[name], value) for name, value in trainer.state_dict(0).items())
    assert not all(torch.equal(moving[name], value) for name, value in trainer.state_dict(1).items())


def test_a_diverging_member_stops_alone_with_a_reason() -> None:
    configs = [CONFIGS[0], DIVERGING, CONFIGS[1]]
    epochs = list(train_packed(configs, workload="diabetes_mlp", max_epochs=3))
    without = list(train_packed([CONFIGS[0], CONFIGS[1]], workload="diabetes_mlp", max_epochs=3))

    single = list(train(DIVERGING, workload="diabetes_mlp", max_epochs=3))
    diverged = member_rows(epochs, 1)
    assert len(diverged) == 1 and diverged[0]["diverged"] is True
    assert diverged[0]["reason"] == single[-1]["reason"] == "train_loss became inf at epoch 1, step 2"
    assert member_rows(epochs, 0) == member_rows(without, 0)
    assert member_rows(epochs, 2) == member_rows(without, 1)
    assert all(math.isfinite(v) for k in (0, 2) for row in member_rows(epochs, k) for v in row.values())
    assert_same_curve(member_rows(epochs, 2), list(train(CONFIGS[1], workload="diabetes_mlp", max_epochs=3)))


def test_a_refilled_slot_restarts_from_the_initial_weights_and_batch_order() -> None:
    trainer = PackedTrainer(CONFIGS[:2], workload="digits_mlp", max_epochs=3, seed=1)
    first = trainer.run_epoch()
    trainer.stop(1)
    trainer.assign(1, CONFIGS[2])
    assert trainer.epoch(1) == 0 and trainer.running() == [0, 1]
    rows = {0: [first[0]], 1: []}
    while trainer.running():  # slot 0 at epoch e + 1 while slot 1 is at e: one batch order each
        for slot, row in trainer.run_epoch().items():
            rows[slot].append(row)
    assert trainer.state(0) == trainer.state(1) == "finished"
    assert_same_curve(rows[0], list(train(CONFIGS[0], workload="digits_mlp", max_epochs=3, seed=1)))
    assert_same_curve(rows[1], list(train(CONFIGS[2], workload="digits_mlp", max_epochs=3, seed=1)))


def test_run_epoch_applies_its_stops_and_assignments_first() -> None:
    separate, combined = (PackedTrainer(CONFIGS[:3], workload="diabetes_mlp", max_epochs=3) for _ in range(2))
    assert separate.run_epoch() == combined.run_epoch()
    separate.stop(0)
    separate.stop(1)
    separate.assign(1, CONFIGS[3])
    want = separate.run_epoch()
    assert combined.run_epoch(stop=[0, 1], assign={1: CONFIGS[3]}) == want
    assert set(want) == {1, 2} and want[1]["epoch"] == 1 and combined.running() == separate.running() == [1, 2]
    with pytest.raises(RuntimeError, match="still running"):  # nothing trains when a change fails
        combined.run_epoch(assign={2: CONFIGS[0]})
    assert combined.epoch(2) == separate.epoch(2) == 2


def test_rows_have_train_shape_and_finished_slots_stop() -> None:
    workload = get_workload("digits_mlp")
    epochs = list(train_packed(CONFIGS[:2], workload=workload, max_epochs=2))
    assert [[row["epoch"] for row in rows] for rows in epochs] == [[1, 1], [2, 2]]
    for rows in epochs:
        for row in rows:
            assert set(row) == {"epoch", "train_loss", *workload.metrics}
            assert type(row["epoch"]) is int and all(type(row[k]) is float for k in set(row) - {"epoch"})


def test_pack_flags_must_agree() -> None:
    with pytest.raises(ValueError, match="same amsgrad"):
        PackedTrainer([CONFIGS[0], {**CONFIGS[1], "amsgrad": True}], workload="diabetes_mlp", max_epochs=1)
    trainer = PackedTrainer(CONFIGS[:1], workload="diabetes_mlp", max_epochs=1)
    trainer.run_epoch()
    with pytest.raises(ValueError, match="same decoupled_weight_decay"):
        trainer.assign(0, {**CONFIGS[1], "decoupled_weight_decay": True})


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        PackedTrainer([], workload="diabetes_mlp", max_epochs=1)
    with pytest.raises(KeyError, match="missing required key"):
        PackedTrainer([{"lr": 1e-3}], workload="diabetes_mlp", max_epochs=1)
    with pytest.raises(ValueError, match="max_epochs"):
        PackedTrainer(CONFIGS[:1], workload="diabetes_mlp", max_epochs=0)
    trainer = PackedTrainer(CONFIGS[:2], workload="diabetes_mlp", max_epochs=2)
    with pytest.raises(RuntimeError, match="still running"):
        trainer.assign(0, CONFIGS[2])
    with pytest.raises(IndexError, match="slot"):
        trainer.stop(2)


def test_a_workload_that_cannot_pack_says_so() -> None:
    class Unpackable(DiabetesMLP):
        name = "unpackable"
        can_pack = False

    with pytest.raises(ValueError, match="'unpackable' cannot pack"):
        PackedTrainer(CONFIGS[:1], workload=Unpackable(), max_epochs=1)


def test_free_slots_wait_for_a_config() -> None:
    trainer = PackedTrainer([None, CONFIGS[1]], workload="diabetes_mlp", max_epochs=2)
    assert trainer.state(0) == "free" and trainer.running() == [1]
    rows = {0: [], 1: [trainer.run_epoch()[1]]}
    trainer.assign(0, CONFIGS[0])
    while trainer.running():
        for slot, row in trainer.run_epoch().items():
            rows[slot].append(row)
    assert_same_curve(rows[0], list(train(CONFIGS[0], workload="diabetes_mlp", max_epochs=2)))
    assert_same_curve(rows[1], list(train(CONFIGS[1], workload="diabetes_mlp", max_epochs=2)))


def test_an_empty_pack_takes_its_update_rule_from_the_arguments() -> None:
    trainer = PackedTrainer([None, None], workload="diabetes_mlp", max_epochs=1, amsgrad=True)
    assert trainer.running() == [] and trainer.run_epoch() == {}
    with pytest.raises(ValueError, match="same amsgrad"):
        trainer.assign(0, CONFIGS[0])
    trainer.assign(0, {**CONFIGS[0], "amsgrad": True})
    assert trainer.running() == [0]
    with pytest.raises(ValueError, match="same decoupled_weight_decay"):
        PackedTrainer([CONFIGS[0]], workload="diabetes_mlp", max_epochs=1, decoupled_weight_decay=True)


def test_diagnostics_match_single_runs() -> None:
    epochs = list(train_packed(CONFIGS[:3], workload="diabetes_mlp", max_epochs=2, diagnostics=True))
    for k, config in enumerate(CONFIGS[:3]):
        single = list(train(config, workload="diabetes_mlp", max_epochs=2, diagnostics=True))
        assert {"adam_eps_dominated_frac", "adam_update_rms_ratio", "adam_nonfinite"} <= set(single[0])
        assert_same_curve(member_rows(epochs, k), single)


class _Wrapper(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class WrappedMLP(DiabetesMLP):
    """diabetes_mlp's network inside a module that is not a Sequential: packs take the vmap path."""

    name = "wrapped_mlp"

    def build_model(self, seed: int) -> nn.Module:
        return _Wrapper(super().build_model(seed))


def test_a_pack_on_the_vmap_path_follows_each_single_model_curve() -> None:
    workload = WrappedMLP()
    assert stacked_forward(workload.build_model(0)) is None
    trainer = PackedTrainer(CONFIGS[:3], workload=workload, max_epochs=2, seed=1)
    rows = {0: [trainer.run_epoch()[0]], 1: []}
    changes = {"stop": [1, 2], "assign": {1: CONFIGS[3]}}  # slot 2 stops, slot 1 restarts: two epochs apart
    while trainer.running():
        for slot, row in trainer.run_epoch(**changes).items():
            rows[slot].append(row)
        changes = {}
    assert_same_curve(rows[0], list(train(CONFIGS[0], workload=workload, max_epochs=2, seed=1)))
    assert_same_curve(rows[1], list(train(CONFIGS[3], workload=workload, max_epochs=2, seed=1)))


def test_workload_args_build_the_packed_workload_as_train_builds_it() -> None:
    configs = CONFIGS[:2]
    trainer = PackedTrainer(
        configs, workload="workers.workloads.digits:DigitsMLP", workload_args={"hidden": 16}, max_epochs=2
    )
    assert trainer.workload.hidden == 16
    packed = [trainer.run_epoch() for _ in range(2)]
    for k, config in enumerate(configs):
        alone = list(train(config, workload=get_workload("digits_mlp", {"hidden": 16}), max_epochs=2))
        assert [rows[k]["val_loss"] for rows in packed] == pytest.approx([r["val_loss"] for r in alone], rel=1e-5)
