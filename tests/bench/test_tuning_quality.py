"""The helpers of ``bench/tuning_quality.py``: picking, prefixes, ranks with ties, trial-epochs
to reach a target, the re-train cache's keys, the plan (per-budget adamtune runs), workload
resolution, the adamtune contenders' spec, and the Ray Tune contender's trial. No Ray; the
few trainings are examples/own_model's for 2 epochs, untimed."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "tuning_quality.py"


def _load() -> ModuleType:
    """The bench script as a module of its own name (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_tuning_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


tq = _load()
T = tq.TrialResult
ADAM = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def test_importing_the_script_starts_nothing_heavy() -> None:
    assert "ray" not in vars(tq) and "torch" not in vars(tq)


# -- prefixes and picks ------------------------------------------------------------------------


def test_prefix_takes_the_first_trials_by_number_not_by_list_order() -> None:
    trials = [T(3, ADAM, 0.1, 4), T(0, ADAM, 0.5, 4), T(2, ADAM, 0.3, 4), T(1, ADAM, 0.2, 4)]
    assert [t.number for t in tq.prefix(trials, 2)] == [0, 1]
    assert [t.number for t in tq.prefix(trials, 10)] == [0, 1, 2, 3]


def test_pick_skips_failed_nonfinite_and_early_stopped_trials() -> None:
    trials = [
        T(0, ADAM, 0.50, 6),
        T(1, ADAM, None, 2, completed=False),  # diverged
        T(2, ADAM, float("nan"), 6),
        T(3, ADAM, 0.10, 1, completed=False),  # early-stopped: its value is an epoch-1 value
        T(4, ADAM, 0.30, 6),
    ]
    assert tq.pick(trials, "min").number == 4
    assert tq.pick(trials, "min", completed_only=False).number == 3  # Ray Tune's scope="last"
    assert tq.pick(trials, "max").number == 0
    assert tq.pick([T(0, ADAM, None, 1, completed=False)], "min") is None


def test_pick_breaks_ties_by_the_lower_trial_number() -> None:
    assert tq.pick([T(5, ADAM, 0.2, 6), T(1, ADAM, 0.2, 6)], "min").number == 1


def test_a_prefix_scores_only_its_own_trials() -> None:
    run = tq.SearchRun(
        "random",
        "w",
        0,
        4,
        [T(i, {**ADAM, "lr": 10.0**-i}, v, 6) for i, v in enumerate([0.4, 0.3, 0.1, 0.2])],
        wall_s=8.0,
    )
    config, epochs, _ = run.view(2, "min")
    assert config["lr"] == 10.0**-1 and epochs == 12
    config, epochs, _ = run.view(4, "min")
    assert config["lr"] == 10.0**-2 and epochs == 24


def test_a_no_search_contender_costs_nothing() -> None:
    run = tq.SearchRun("torch-default", "w", 0, 0, [], 0.0, fixed=dict(ADAM))
    assert run.view(32, "min") == (ADAM, 0, 0.0)


def test_prefix_wall_adds_the_runs_tail_to_the_last_prefix_trials_end() -> None:
    trials = [
        T(0, ADAM, 0.1, 6, finished_s=2.0),
        T(1, ADAM, 0.1, 6, finished_s=5.0),
        T(2, ADAM, 0.1, 6, finished_s=4.0),
        T(3, ADAM, 0.1, 6, finished_s=9.0),
    ]
    assert tq.prefix_wall(trials, 2, wall=12.0) == 5.0 + 3.0
    assert tq.prefix_wall(trials, 4, wall=12.0) == 12.0
    unknown = [*trials[:3], T(3, ADAM, 0.1, 6)]
    assert tq.prefix_wall(unknown, 2, wall=12.0) == 12.0


# -- ranks ------------------------------------------------------------------------------------


def test_rank_gives_ties_the_mean_of_their_ranks() -> None:
    assert tq.rank([0.3, 0.1, 0.3, 0.2], "min") == [3.5, 1.0, 3.5, 2.0]
    assert tq.rank([0.3, 0.1, 0.3, 0.2], "max") == [1.5, 4.0, 1.5, 3.0]
    assert tq.rank([0.5, 0.5, 0.5], "min") == [2.0, 2.0, 2.0]


def test_rank_puts_diverged_and_nan_last_tied() -> None:
    assert tq.rank([math.inf, 0.1, float("nan")], "min") == [2.5, 1.0, 2.5]
    assert tq.rank([-math.inf, 0.9], "max") == [2.0, 1.0]


def test_median_ranks_ranks_per_seed_then_takes_the_median() -> None:
    scores = {"a": [0.1, 0.3, 0.1], "b": [0.2, 0.1, 0.2], "c": [0.2, 0.2, 0.3]}
    # seed 0: a 1, b 2.5, c 2.5; seed 1: b 1, c 2, a 3; seed 2: a 1, b 2, c 3
    assert tq.median_ranks(scores, "min") == {"a": 1.0, "b": 2.0, "c": 2.5}


def test_median_ranks_needs_one_score_per_seed_for_everyone() -> None:
    with pytest.raises(ValueError, match="one score per seed"):
        tq.median_ranks({"a": [0.1, 0.2], "b": [0.1]}, "min")


# -- trial-epochs to reach a target -------------------------------------------------------------


def test_epochs_to_reach_counts_every_trials_epochs_up_to_the_first_reaching_one() -> None:
    trials = [
        T(2, ADAM, 0.25, 6),
        T(0, ADAM, 0.40, 6),
        T(1, ADAM, 0.05, 1, completed=False),  # early-stopped: costs its epoch, cannot reach
        T(3, ADAM, 0.15, 6),
    ]
    assert tq.epochs_to_reach(trials, 0.30, "min") == 6 + 1 + 6
    assert tq.epochs_to_reach(trials, 0.40, "min") == 6  # reaching includes equality
    assert tq.epochs_to_reach(trials, 0.20, "min") == 19
    assert tq.epochs_to_reach(trials, 0.35, "max") == 6


def test_epochs_to_reach_is_none_when_never_reached() -> None:
    trials = [T(0, ADAM, 0.4, 6), T(1, ADAM, None, 3, completed=False)]
    assert tq.epochs_to_reach(trials, 0.1, "min") is None
    assert tq.epochs_to_reach([], 0.1, "min") is None


def test_median_or_none_counts_not_reached_as_infinite() -> None:
    assert tq.median_or_none([10, None, 20]) == 20
    assert tq.median_or_none([10, None, None]) is None
    assert tq.median_or_none([10, 30, None, None]) is None  # median of 10, 30, inf, inf
    assert tq.median_or_none([10, 30, 40, None]) == 35
    assert tq.median_or_none([]) is None


def test_reach_ratio_divides_by_the_peers_trial_epochs() -> None:
    assert tq.reach_ratio([12, 24, 18], 36) == 0.5
    assert tq.reach_ratio([None, None, 18], 36) is None
    assert tq.reach_ratio([6, 6], 0) == math.inf  # a peer that does not search
    assert tq.reach_ratio([0, 0], 0) == 0.0


# -- the re-train cache -----------------------------------------------------------------------


def test_cache_keys_ignore_bookkeeping_order_and_number_types() -> None:
    a = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    b = {
        "eps": 1e-8,
        "beta2": 0.999,
        "beta1": 0.9,
        "lr": 0.001,
        "weight_decay": 0,
        "amsgrad": False,
        "decoupled_weight_decay": False,
        "schedule": "constant",
        "warmup_fraction": 0,
        "trial_number": 7,
        "baseline": True,
    }
    assert tq.retrain_key("digits_mlp", a) == tq.retrain_key("digits_mlp", b)
    assert hash(tq.retrain_key("digits_mlp", a)) == hash(tq.retrain_key("digits_mlp", b))


def test_cache_keys_separate_workloads_and_training_relevant_values() -> None:
    key = tq.retrain_key("digits_mlp", ADAM)
    assert key != tq.retrain_key("char_lm", ADAM)
    assert key != tq.retrain_key("digits_mlp", {**ADAM, "lr": 1.0001e-3})
    assert key != tq.retrain_key("digits_mlp", {**ADAM, "schedule": "cosine"})
    assert key != tq.retrain_key("digits_mlp", {**ADAM, "weight_decay": 0.1})
    wd = {**ADAM, "weight_decay": 0.1}
    assert tq.retrain_key("digits_mlp", wd) != tq.retrain_key("digits_mlp", {**wd, "decoupled_weight_decay": True})


def test_cache_keys_treat_decoupling_without_weight_decay_as_plain_adam() -> None:
    assert tq.retrain_key("w", {**ADAM, "decoupled_weight_decay": True}) == tq.retrain_key("w", ADAM)


def test_cache_key_needs_the_adam_hyperparameters() -> None:
    with pytest.raises(KeyError, match="missing"):
        tq.canonical_config({"lr": 1e-3})


def test_cache_trains_each_config_once_and_scores_the_mean() -> None:
    cache = tq.RetrainCache([10_000, 10_001], "min")
    picks = [ADAM, {**ADAM, "trial_number": 0, "baseline": True}, {**ADAM, "lr": 3e-3}]
    todo = cache.missing("w", picks)
    assert [c["lr"] for c in todo] == [1e-3, 3e-3]
    for config, values in zip(todo, ([0.4, 0.2], [0.1, 0.3])):
        for seed, value in zip(cache.seeds, values):
            cache.put("w", config, seed, value)
    assert cache.missing("w", picks) == []
    assert cache.missing("other", picks) != []
    assert cache.score("w", {**ADAM, "baseline": True}) == pytest.approx(0.3)
    assert cache.score("w", {**ADAM, "lr": 3e-3}) == pytest.approx(0.2)


def test_cache_scores_a_diverged_seed_as_the_worst_value_and_refuses_unknown_configs() -> None:
    cache = tq.RetrainCache([1, 2], "min")
    cache.put("w", ADAM, 1, 0.2)
    assert cache.missing("w", [ADAM]) != []  # seed 2 still missing
    with pytest.raises(KeyError):
        cache.score("w", ADAM)
    cache.put("w", ADAM, 2, None)
    assert cache.score("w", ADAM) == math.inf
    assert tq.RetrainCache([1], "max").mode == "max" and tq.worst("max") == -math.inf


def test_the_tie_band_is_twice_the_standard_error_of_the_difference_of_two_medians() -> None:
    ours, theirs = [0.10, 0.11, 0.12, 0.13, 0.14], [0.2] * 5  # IQR 0.02; no spread at all
    se = 1.2533 * 0.02 / 1.349 / math.sqrt(5)
    assert tq.tie_band(ours, theirs) == pytest.approx(2 * se)
    assert tq.tie_band(ours, ours) == pytest.approx(2 * math.sqrt(2) * se)
    assert tq.tie_band([*ours, None, math.inf], theirs) == pytest.approx(2 * se)  # diverged picks left out
    assert tq.tie_band(ours, [None, 0.2]) is None


def _row(scores: list[float | None]) -> dict:
    finite = [math.inf if s is None else s for s in scores]
    return {"median_score": sorted(finite)[len(finite) // 2], "per_seed": [{"score": s} for s in scores]}


def test_verdicts_call_a_difference_inside_the_seeds_spread_a_tie_and_count_the_seeds() -> None:
    rows = {
        "adamtune": _row([0.10, 0.11, 0.12]),
        "close": _row([0.12, 0.10, 0.115]),  # median 0.115: 0.005 apart, inside the spread
        "far": _row([0.20, 0.21, 0.205]),  # median 0.205: far outside it
        "diverged": _row([None, None, 0.3]),
    }
    by_peer = {v["peer"]: v for v in tq.verdicts(rows, "min")}
    close = by_peer["close"]
    assert close["verdict"] == "tie" and close["delta"] == pytest.approx(-0.005) and close["band"] > 0.005
    assert (close["seeds_better"], close["seeds_worse"], close["seeds"]) == (1, 2, 3)
    assert by_peer["far"]["verdict"] == "ahead" and by_peer["far"]["seeds_better"] == 3
    assert by_peer["diverged"]["verdict"] == "ahead" and by_peer["diverged"]["delta"] is None
    assert {v["peer"]: v["verdict"] for v in tq.verdicts(rows, "max")}["far"] == "behind"
    exact = {"adamtune": _row([0.1, 0.1, 0.1]), "fixed": _row([0.1001] * 3)}  # no spread: any difference counts
    assert tq.verdicts(exact, "min")[0]["verdict"] == "ahead"
    assert tq.verdicts({"random": rows["far"]}, "min") == []  # no adamtune row: nothing to judge


def test_a_results_file_prints_again_with_its_verdicts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    configs = {"adamtune": {**ADAM, "lr": 3e-3}, "random": ADAM}
    values = {"adamtune": [0.10, 0.11, 0.12], "random": [0.30, 0.31, 0.32]}
    results = {
        "machine": {"cpu": "cpu", "cores": 2, "torch": "2.13.0"},
        "settings": {
            "workloads": {
                "w": {"name": "w", "ref": "w", "args": {}, "metric": "val_loss", "mode": "min", "max_epochs": 2}
            },
            "budgets": [8],
            "retrain_seeds": [1, 2, 3],
        },
        "tables": [
            {
                "workload": "w",
                "budget": 8,
                "rows": [
                    {
                        "contender": c,
                        "median_score": sum(values[c]) / 3,
                        "median_rank": rank,
                        "trial_epochs": 16,
                        "wall_s": 1.0,
                        "per_seed": [{"seed": 0, "config": configs[c], "score": sum(values[c]) / 3}],
                    }
                    for rank, c in enumerate(configs, 1)
                ],
                "ratios": [],
            }
        ],
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    assert tq.main(["--from-json", str(path), "--json", str(tmp_path / "again.json")]) == 0
    printed = capsys.readouterr().out
    assert "| adamtune | 0.1100 | 1.0 | 16 | 1.0 |" in printed
    assert "- random: **ahead**, -0.2000; seeds 1 better / 0 worse of 1" in printed  # one seed: no spread
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["tables"][0]["verdicts"][0]["verdict"] == "ahead"


# -- the plan: which contender runs at which budget ---------------------------------------------


def test_adamtune_contenders_run_once_per_budget_the_prefix_scored_once_at_the_largest() -> None:
    plan = tq.plan_runs(
        ["torch-default", "random", "raytune-optuna-asha", "adamtune", "adamtune-packed"], [8, 16, 32], [0, 1]
    )
    for seed in (0, 1):
        mine = [(c, b) for s, c, b in plan if s == seed]
        assert [b for c, b in mine if c == "adamtune"] == [8, 16, 32]
        assert [b for c, b in mine if c == "adamtune-packed"] == [8, 16, 32]
        assert [b for c, b in mine if c == "random"] == [32]
        assert [b for c, b in mine if c == "raytune-optuna-asha"] == [32]
        assert [b for c, b in mine if c == "torch-default"] == [32]
    assert tq.PER_BUDGET == {"adamtune", "adamtune-packed", "adamtune-lrt"} and not tq.PER_BUDGET & tq.PREFIX_SCORED


def test_the_packed_contender_sits_out_a_workload_that_cannot_pack() -> None:
    plan = tq.plan_runs(["random", "adamtune", "adamtune-packed"], [8, 16], [0], can_pack=False)
    assert {c for _, c, _ in plan} == {"random", "adamtune"}


def test_the_range_test_contender_sits_out_a_function() -> None:
    plan = tq.plan_runs(["adamtune", "adamtune-lrt"], [8], [0], function=True)
    assert {c for _, c, _ in plan} == {"adamtune"}
    assert {c for _, c, _ in tq.plan_runs(["adamtune", "adamtune-lrt"], [8], [0])} == {"adamtune", "adamtune-lrt"}


def test_the_range_tests_epochs_count_in_the_trial_epochs() -> None:
    run = tq.SearchRun("adamtune-lrt", "w", 0, 8, [T(0, ADAM, 0.1, 6)], 1.0, overhead_epochs=0.5)
    assert run.view(8, "min")[1] == 6.5


def test_a_per_budget_contender_is_scored_by_its_run_at_that_budget_not_a_prefix() -> None:
    runs = [
        tq.SearchRun(c, "w", s, b, [T(0, ADAM, 0.1, 6)], 1.0)
        for c in ("adamtune", "random")
        for s in (0, 1)
        for b in ((8, 16) if c == "adamtune" else (16,))
    ]
    assert {s: r.budget for s, r in tq.runs_for(runs, "adamtune", "w", 8).items()} == {0: 8, 1: 8}
    assert {s: r.budget for s, r in tq.runs_for(runs, "adamtune", "w", 16).items()} == {0: 16, 1: 16}
    assert {s: r.budget for s, r in tq.runs_for(runs, "random", "w", 8).items()} == {0: 16, 1: 16}  # a prefix
    assert tq.runs_for(runs, "adamtune", "other", 8) == {}


def test_there_is_no_separate_auto_contender() -> None:
    assert "adamtune-auto" not in tq.CONTENDERS and {"adamtune", "adamtune-packed"} <= set(tq.CONTENDERS)


# -- the adamtune contenders' spec: adamtune's defaults -----------------------------------------


def test_the_adamtune_spec_leaves_adamtunes_defaults_alone() -> None:
    from tuner.spec import parse_spec

    setup = tq.WorkloadSetup("digits_mlp", "digits_mlp", {}, "val_loss", "min", 6)
    for contender, execution in (("adamtune", "standard"), ("adamtune-packed", "packed")):
        keys = tq.adamtune_spec(contender, setup, seed=3, budget=16)
        assert keys["search_space"] == "auto" and keys["execution"] == execution
        assert "sampler" not in keys and "asha" not in keys and "scheduler" not in keys
        spec = parse_spec({"name": f"{contender}-s3", **keys})
        assert spec.sampler == "auto" and spec.asha is None and spec.scheduler == "asha"
        assert (spec.n_trials, spec.max_epochs, spec.seed) == (16, 6, 3)
    small = parse_spec({"name": "n", **tq.adamtune_spec("adamtune", setup, seed=0, budget=8)})
    assert small.search_space.model_dump() != spec.search_space.model_dump()  # auto depends on the budget


def test_slug_makes_a_sweep_name_of_any_ref() -> None:
    import re

    assert tq.slug("digits_mlp") == "digits_mlp"
    assert tq.slug("own_model/train.py:train") == "own_model-train.py-train"
    long = tq.slug("/a/very/long/path/to/some/user/folder/with/a/train_script.py:train")
    assert len(long) <= 32 and long.endswith("train_script.py-train") and re.fullmatch(r"[A-Za-z0-9_][\w.-]*", long)
    assert tq.slug("::") == "workload"


# -- workloads -----------------------------------------------------------------------------------


def test_the_default_table_has_own_model_not_diabetes() -> None:
    assert list(tq.WORKLOADS) == ["digits_mlp", "char_lm", "own_model"]
    assert tq.parse_args(["--quick"]).workloads == ["digits_mlp", "own_model"]


def test_a_bundled_function_workload_resolves_as_a_spec_would() -> None:
    setup = tq.resolve_workload(tq.WORKLOADS["own_model"], base_dir=tq.REPO)
    assert setup.function and not setup.can_pack
    assert setup.ref == f"{tq.REPO / 'examples' / 'own_model' / 'train.py'}:train"
    target, folder = tq.worker_import(setup.ref)
    assert (target, folder) == ("train:train", tq.REPO / "examples" / "own_model")


def test_a_registered_workload_class_resolves_and_packs() -> None:
    setup = tq.resolve_workload(tq.WORKLOADS["digits_mlp"], base_dir=tq.REPO)
    assert setup.can_pack and not setup.function and setup.ref == "digits_mlp"
    target, folder = tq.worker_import(setup.ref)
    assert folder is None and target.endswith(":DigitsMLP")


def test_resolving_refuses_what_a_spec_refuses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no file"):
        tq.resolve_workload(tq.WorkloadSetup("x", "missing.py:train", {}, "val_loss", "min", 2), base_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown workload"):
        tq.resolve_workload(tq.WorkloadSetup("x", "no_such_workload", {}, "val_loss", "min", 2))
    with pytest.raises(ValueError, match="metric"):
        tq.resolve_workload(tq.WorkloadSetup("x", "digits_mlp", {}, "val_bpc", "min", 2))
    (tmp_path / "two.py").write_text("def train(a, b):\n    pass\n")
    with pytest.raises(ValueError, match="train\\(trial\\)"):
        tq.resolve_workload(tq.WorkloadSetup("x", "two.py:train", {}, "val_loss", "min", 2), base_dir=tmp_path)


def test_the_cli_takes_any_workload_ref_and_its_args() -> None:
    args = tq.parse_args(
        [
            "--workload",
            "pkg.mod:train",
            "--workload-args",
            '{"width": 8}',
            "--metric",
            "acc",
            "--mode",
            "max",
            "--budgets",
            "8",
            "--seeds",
            "1",
        ]
    )
    assert (args.workload, args.workload_args, args.metric, args.mode, args.workloads) == (
        "pkg.mod:train",
        {"width": 8},
        "acc",
        "max",
        [],
    )
    assert tq.parse_args(["--workload", "w:f", "--workloads", "char_lm"]).workloads == ["char_lm"]
    for bad in (
        ["--workload-args", '{"a": 1}'],
        ["--workload", "w:f", "--workload-args", "[1]"],
        ["--workload", "w:f", "--workload-args", "{nope"],
    ):
        with pytest.raises(SystemExit):
            tq.parse_args(bad)


def test_final_outcome_needs_every_epoch_and_a_finite_metric() -> None:
    assert tq.final_outcome({"epoch": 6, "val_loss": 0.25}, "val_loss", 6) == (0.25, 6)
    assert tq.final_outcome({"epoch": 3, "val_loss": 0.25}, "val_loss", 6) == (None, 3)
    assert tq.final_outcome({"epoch": 6, "val_loss": 0.25, "diverged": True}, "val_loss", 6) == (None, 6)
    assert tq.final_outcome({"epoch": 2, "val_loss": math.nan, "error": "ValueError: x"}, "val_loss", 6) == (None, 2)
    assert tq.final_outcome({"epoch": 6, "val_loss": math.inf}, "val_loss", 6) == (None, 6)
    assert tq.final_outcome({"epoch": 6}, "val_loss", 6) == (None, 6)
    assert tq.final_outcome(None, "val_loss", 6) == (None, 0)


# -- training a function workload without Ray ------------------------------------------------------


@pytest.fixture(scope="module")
def own_model() -> object:
    return tq.replace(tq.resolve_workload(tq.WORKLOADS["own_model"], base_dir=tq.REPO), max_epochs=2)


def test_in_process_contenders_train_a_function_as_an_adamtune_trial_does(own_model: object) -> None:
    bench = tq.Bench(tq.parse_args(["--quick"]), [own_model])
    (value, epochs), (same, _) = bench.train_configs(own_model, [ADAM, ADAM], seed=0)
    assert epochs == 2 and value is not None and math.isfinite(value) and same == value  # seeded: repeats
    cache = tq.RetrainCache([10_000], "min")
    assert bench.retrain(own_model, cache, [ADAM, {**ADAM, "trial_number": 4}]) == 1
    assert cache.score("own_model", ADAM) == pytest.approx(value)  # own_model seeds torch itself


def test_the_ray_tune_trial_builds_torchs_adam_and_reports_each_epoch(own_model: object) -> None:
    import torch

    from workers.trainable import train_trial
    from workers.trial import StopTrial
    from workers.workloads import load_workload

    rows: list[dict] = []
    trial = tq.tune_trial(ADAM, max_epochs=2, seed=0, workload_args={}, metric="val_loss", report=rows.append)
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = trial.optimizer(params)
    assert type(opt) is torch.optim.Adam and opt.defaults["lr"] == 1e-3 and opt.defaults["betas"] == (0.9, 0.999)
    wd = tq.tune_trial(
        {**ADAM, "weight_decay": 0.1, "decoupled_weight_decay": True},
        max_epochs=2,
        seed=0,
        workload_args={},
        metric="val_loss",
        report=rows.append,
    )
    assert type(wd.optimizer(params)) is torch.optim.AdamW
    trial.report(val_loss=torch.tensor(0.5), val_accuracy=0.75)
    assert rows == [{"epoch": 1, "val_loss": 0.5, "val_accuracy": 0.75}] and trial.epochs_reported == 1

    rows.clear()
    target = tq.Bench(tq.parse_args([]), [own_model]).importable(own_model)
    train = load_workload(target, {})
    torch.manual_seed(0)
    with pytest.raises(StopTrial):  # own_model reports 20 epochs; the trial ends after max_epochs
        train(tq.tune_trial(ADAM, max_epochs=2, seed=0, workload_args={}, metric="val_loss", report=rows.append))
    assert [r["epoch"] for r in rows] == [1, 2] and set(rows[0]) == {"epoch", "val_loss", "val_accuracy"}
    ours: list[dict] = []  # the same code as an adamtune trial trains it (FusedAdam): the same curve, up to rounding
    train_trial(ADAM, workload=target, max_epochs=2, seed=0, metric="val_loss", report=ours.append)
    assert [r["val_loss"] for r in rows] == pytest.approx([r["val_loss"] for r in ours], rel=1e-4)
