"""Spec ``lr_range_test``: the range test runs before a sweep's first trial, the study keeps the
centred lr range (a resume does not test again), and specs it cannot serve are refused first."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner import SpecError, parse_spec
from tuner.search_space import SearchSpace, load_search_space
from tuner.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_centred_lr_keeps_the_other_entries() -> None:
    space = SearchSpace.model_validate(load_search_space("adam"))
    centred = space.centred_lr(2e-3)
    assert (centred.params["lr"].low, centred.params["lr"].high) == pytest.approx((2e-4, 2e-2))
    assert (space.centred_lr(3e-2).params["lr"].low, space.centred_lr(3e-2).params["lr"].high) == pytest.approx(
        (3e-3, 1e-1)
    )
    assert space.centred_lr(1.0) == space and space.centred_lr(1e-6) == space  # outside the space: kept
    assert centred.params["lr"].log and {k: v for k, v in centred.params.items() if k != "lr"} == {
        k: v for k, v in space.params.items() if k != "lr"
    }
    with pytest.raises(ValueError, match="lr > 0"):
        space.centred_lr(0.0)


def test_spec_refuses_a_range_test_without_a_searched_log_lr() -> None:
    with pytest.raises(SpecError, match="lr_range_test needs lr searched log_uniform"):
        parse_spec(
            {
                "name": "x",
                "workload": "digits_mlp",
                "lr_range_test": True,
                "search_space": {
                    "params": {"lr": 1e-3, "beta1": {"distribution": "uniform", "low": 0.8, "high": 0.95}}
                },
            }
        )


def test_the_range_test_is_off_unless_the_spec_asks_for_it() -> None:
    spec = parse_spec({"name": "x", "workload": "digits_mlp", "search_space": "auto", "n_trials": 8})
    assert spec.lr_range_test is False and not spec.lr_range_wanted(workload_class=True)


def test_auto_runs_the_test_for_a_workload_class_under_32_trials_with_lr_searched_log() -> None:
    from tuner.spec import LR_RANGE_TEST_BELOW

    def spec(**fields):
        return parse_spec(
            {"name": "x", "workload": "digits_mlp", "search_space": "auto", "lr_range_test": "auto", **fields}
        )

    assert spec().lr_range_wanted(workload_class=True)
    assert not spec().lr_range_wanted(workload_class=False)  # a function: no per-step loss
    assert not spec(n_trials=LR_RANGE_TEST_BELOW).lr_range_wanted(workload_class=True)
    assert spec(n_trials=LR_RANGE_TEST_BELOW, lr_range_test=True).lr_range_wanted(workload_class=True)
    assert not spec(lr_range_test=False).lr_range_wanted(workload_class=True)
    fixed_lr = spec(
        search_space={"params": {"lr": 1e-3, "eps": {"distribution": "log_uniform", "low": 1e-9, "high": 1e-7}}}
    )
    assert not fixed_lr.lr_range_wanted(workload_class=True)


LR = {"distribution": "log_uniform", "low": 1e-4, "high": 1e-1}
ALGORITHMS = {"choices": ["adam", "nadam", "adamax"]}


def lr_range_spec(**params):
    return parse_spec(
        {"name": "x", "workload": "digits_mlp", "lr_range_test": True, "search_space": {"params": {"lr": LR, **params}}}
    )


@pytest.mark.parametrize(
    ("params", "probed"),
    [
        ({"algorithm": "nadam"}, "nadam"),
        ({"algorithm": "adamax"}, "adamax"),
        ({"algorithm": "adam"}, "adam"),
        ({}, "adam"),
        ({"algorithm": ALGORITHMS}, "adam"),
        ({"algorithm": {"choices": ["nadam", "adamax"]}}, "adam"),
    ],
    ids=["nadam", "adamax", "adam", "default", "searched", "searched-without-adam"],
)
def test_the_range_test_probes_the_algorithm_the_space_fixes_and_adam_where_it_is_searched(params, probed) -> None:
    from tuner.executor import range_test_kwargs

    kwargs = range_test_kwargs(lr_range_spec(**params))
    assert kwargs["algorithm"] == probed
    assert (kwargs["lr_min"], kwargs["lr_max"]) == pytest.approx((1e-5, 1.0))  # lr 1e-4..1e-1, x10 wider
    assert kwargs["workload"] == "workers.workloads.digits:DigitsMLP" and kwargs["seed"] == 0


def test_the_worker_runs_the_range_test_with_the_fixed_algorithm(one_torch_thread: None) -> None:
    from tuner.executor import range_test_kwargs
    from workers import get_workload
    from workers.lr_range import lr_range_test, run_lr_range_test

    found = run_lr_range_test(**range_test_kwargs(lr_range_spec(algorithm="nadam")))
    nadam = lr_range_test(get_workload("digits_mlp"), lr_min=1e-5, lr_max=1.0, algorithm="nadam")
    adam = lr_range_test(get_workload("digits_mlp"), lr_min=1e-5, lr_max=1.0)
    assert found.losses == nadam.losses and found.losses != adam.losses


def test_the_driver_runs_the_same_range_test_as_a_worker_and_keeps_its_threads(one_torch_thread: None) -> None:
    """With local Ray the test runs on the driver, on the workload it built to check the spec."""
    import torch

    from tuner.executor import lr_range_here, range_test_kwargs
    from tuner.workload import check_workload
    from workers.lr_range import run_lr_range_test

    spec = lr_range_spec(algorithm="nadam")
    built = check_workload(spec.workload, spec.workload_args, metric=spec.metric).built
    torch.set_num_threads(2)
    here = lr_range_here(spec, built)
    assert torch.get_num_threads() == 2  # the trial's thread count for the test only
    assert here == run_lr_range_test(**range_test_kwargs(spec))


def test_a_function_workload_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    from tuner.service import SweepService

    spec = parse_spec(
        {
            "name": "fn",
            "workload": "examples/own_model/train.py:train",
            "search_space": "auto",
            "lr_range_test": True,
            "n_trials": 2,
            "max_epochs": 1,
        },
        base_dir=ROOT,
    )
    service = SweepService(Settings(home=tmp_path))
    with pytest.raises(SpecError, match="lr_range_test: needs a Workload class"):
        service.run(spec)
    assert not service.studies.exists("fn")


@pytest.mark.slow
def test_sweep_searches_lr_around_what_the_range_test_found(tmp_path: Path) -> None:
    from tuner.service import SweepService

    spec = parse_spec(
        {
            "name": "lrt",
            "workload": "digits_mlp",
            "search_space": "auto",
            "lr_range_test": True,
            "n_trials": 4,
            "max_epochs": 2,
            "baseline": False,
        }
    )
    service = SweepService(Settings(home=tmp_path))
    summary = service.run(spec)
    found = summary.lr_range
    assert found is not None and found["steps"] >= 3 and 0 < found["epochs"] <= 1
    assert (found["lr_min"], found["lr_max"]) == pytest.approx((1e-5, 1.0))  # the auto space's lr 1e-4..1e-1, x10 wider
    assert found["suggested"] == pytest.approx(found["steepest"] / 4)
    assert (found["low"], found["high"]) == pytest.approx(
        (max(1e-4, found["suggested"] / 10), min(1e-1, found["suggested"] * 10))
    )
    stored_lr = summary.spec["search_space"]["params"]["lr"]
    assert (stored_lr["low"], stored_lr["high"]) == pytest.approx((found["low"], found["high"]))
    lrs = [t.config["lr"] for t in summary.trials]
    assert len(lrs) == 4 and all(found["low"] <= lr <= found["high"] for lr in lrs)

    more = service.run(spec.with_overrides(n_trials=6), resume=True)  # no second test: the study keeps its range
    assert more.lr_range == found and more.spec["search_space"] == summary.spec["search_space"]
    assert len(more.trials) == 6
