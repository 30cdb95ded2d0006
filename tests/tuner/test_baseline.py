"""The baseline (torch's default Adam as trial 0), the comparison against it, and the pick by
mean after re-evaluation."""

from __future__ import annotations

import pytest

from tuner.baseline import baseline_config, baseline_params
from tuner.records import SweepSummary, TrialRecord
from tuner.review import compare
from tuner.search_space import SearchSpace, load_search_space
from workers.config import AdamConfig

CONFIG = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}


def space(name: str) -> SearchSpace:
    return SearchSpace.model_validate(load_search_space(name))


def test_the_baseline_is_torch_default_adam_with_a_constant_lr() -> None:
    import torch

    config = baseline_config(space("adam"))
    defaults = torch.optim.Adam([torch.zeros(1, requires_grad=True)]).defaults
    assert (
        config["lr"],
        (config["beta1"], config["beta2"]),
        config["eps"],
        config["weight_decay"],
        config["amsgrad"],
    ) == (defaults["lr"], defaults["betas"], defaults["eps"], defaults["weight_decay"], defaults["amsgrad"])
    assert (config["schedule"], config["warmup_fraction"], config["baseline"]) == ("constant", 0.0, True)
    assert (
        baseline_config(space("adamw"))["decoupled_weight_decay"] is True
    )  # a pack's members agree; no effect at wd 0


@pytest.mark.parametrize("algorithm", ["adam", "nadam", "adamax"])
def test_a_space_fixing_an_algorithm_has_that_torch_optimizers_defaults_as_baseline(algorithm: str) -> None:
    import torch

    lr = {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1}
    fixed = SearchSpace.model_validate({"params": {"lr": lr, "algorithm": algorithm}})
    name, kwargs = AdamConfig.from_config(baseline_config(fixed)).torch_optimizer()
    torch_class = {"adam": torch.optim.Adam, "nadam": torch.optim.NAdam, "adamax": torch.optim.Adamax}[algorithm]
    defaults = torch_class([torch.zeros(1, requires_grad=True)]).defaults
    assert name == torch_class.__name__ and kwargs == {key: defaults[key] for key in kwargs}  # NAdam, Adamax: lr 2e-3
    assert baseline_params(fixed)["lr"] == defaults["lr"]  # the study records it: inside lr's range
    searched = SearchSpace.model_validate({"params": {"lr": lr, "algorithm": {"choices": ["nadam", "adamax"]}}})
    assert baseline_config(searched)["lr"] == 1e-3 and "algorithm" not in baseline_config(searched)  # Adam's


def test_only_defaults_inside_the_searched_ranges_become_study_params() -> None:
    assert baseline_params(space("adam")) == {"lr": 1e-3, "one_minus_beta1": 0.1, "one_minus_beta2": 0.001, "eps": 1e-8}
    narrow = SearchSpace.model_validate(
        {
            "params": {
                "lr": {"distribution": "log_uniform", "low": 1e-2, "high": 1e-1},
                "schedule": {"choices": ["cosine", "constant"]},
            }
        }
    )
    assert baseline_params(narrow) == {"schedule": "constant"}


def trials(*values: tuple[float, str]) -> tuple[TrialRecord, ...]:
    return tuple(TrialRecord(i, state, CONFIG, value, 4, baseline=i == 0) for i, (value, state) in enumerate(values))


@pytest.mark.parametrize(
    ("mode", "values", "text"),
    [
        (
            "min",
            [(0.195, "completed"), (0.123, "completed")],
            "val_loss 0.123 vs 0.195 with torch's defaults, \u221237 %",
        ),
        ("max", [(0.80, "completed"), (0.92, "completed")], "val_loss 0.92 vs 0.8 with torch's defaults, +15 %"),
        (
            "min",
            [(0.10, "completed"), (0.30, "completed")],
            "val_loss 0.1 with torch's defaults: no tuned config beat them",
        ),
    ],
    ids=["lower-is-better", "higher-is-better", "baseline-best"],
)
def test_the_comparison_reads_as_the_summary_line(mode: str, values: list, text: str) -> None:
    summary = SweepSummary("s", {"metric": "val_loss", "mode": mode}, trials(*values))
    assert str(compare(summary)) == text


def test_no_comparison_without_a_completed_baseline() -> None:
    failed = SweepSummary("s", {"metric": "val_loss", "mode": "min"}, trials((0.2, "failed"), (0.1, "completed")))
    assert compare(failed) is None
    assert compare(SweepSummary("s", {"metric": "val_loss", "mode": "min"}, ())) is None


def test_after_reevaluation_the_pick_is_the_best_mean_not_the_luckiest_run() -> None:
    summary = SweepSummary(
        "s",
        {"metric": "val_loss", "mode": "min"},
        trials((0.30, "completed"), (0.10, "completed"), (0.12, "completed"), (0.5, "completed")),
        reevaluations={1: {1: 0.20, 2: 0.22}, 2: {1: 0.13, 2: 0.15, 3: None}},
    )
    assert [t.number for t in summary.best(3)] == [1, 2, 0]
    assert [t.number for t in summary.pick(3)] == [2, 1, 0]  # re-evaluated first by mean, then the rest by value
    stats = summary.seed_stats(2)
    assert stats.mean == pytest.approx(0.14) and stats.failed == 1 and summary.seed_stats(0) is None
