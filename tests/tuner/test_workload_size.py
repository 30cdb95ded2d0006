"""Workload arguments are bounded, and a model's size is checked on torch's meta device
(exact parameter count, no storage) before any trial."""

from __future__ import annotations

import pytest

from tuner.errors import SpecError
from tuner.workload import MAX_TRAINING_BYTES, check_workload


def test_parameters_are_counted_exactly_without_storage() -> None:
    facts = check_workload("digits_mlp", {"hidden": 65_536}).facts
    assert facts["parameters"] == 64 * 65_536 + 65_536 + 65_536 * 10 + 10


def test_a_model_over_the_memory_limit_is_refused_with_its_estimate() -> None:
    args = {"n_layer": 128, "d_model": 16_384, "n_head": 128}
    with pytest.raises(SpecError) as info:
        check_workload("char_lm", args, metric="val_loss")
    message = str(info.value)
    assert message.startswith("invalid sweep spec: workload_args: the model has ") and "\n" not in message
    parameters = int(message.split("the model has ")[1].split(" ")[0].replace(",", ""))
    assert parameters * 16 > MAX_TRAINING_BYTES and "GiB" in message


@pytest.mark.parametrize(
    ("workload", "args", "field"),
    [
        ("digits_mlp", {"hidden": 1_000_000_000_000}, "hidden"),
        ("digits_mlp", {"hidden": 64.0}, "hidden"),
        ("diabetes_mlp", {"batch_size": "32"}, "batch_size"),
        ("digits_mlp", {"grad_clip_norm": float("inf")}, "grad_clip_norm"),
        ("char_lm", {"context": 10**9}, "context"),
        ("cifar10_cnn", {"width": 10**6}, "width"),
    ],
)
def test_arguments_out_of_bounds_are_refused(workload: str, args: dict, field: str) -> None:
    with pytest.raises(SpecError, match=rf"^invalid sweep spec: workload_args: {field}: "):
        check_workload(workload, args)
