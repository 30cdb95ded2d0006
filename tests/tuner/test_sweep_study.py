"""The study protocol (SweepStudy), driven as the executors drive it, on SQLite: what it hands
out, what ASHA stops, what the stored study records, and that arrival order changes nothing."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from tuner import parse_spec
from tuner.executor import Asked, SweepStudy
from tuner.records import Outcome
from tuner.study import StudyStore

BASE = {"name": "proto", "workload": "digits_mlp", "search_space": "adam", "n_trials": 16, "max_epochs": 8}


def new_study(tmp_path: Path, name: str = "optuna", **fields) -> tuple[StudyStore, object]:
    spec = parse_spec({**BASE, **fields})
    studies = StudyStore(f"sqlite:///{tmp_path / f'{name}.db'}")
    studies.create(spec)
    return studies, spec


def curve(asked: Asked, epoch: int) -> float:
    """A made-up val_loss: best near lr 3e-3, improving with epochs."""
    return abs(math.log10(asked.config["lr"]) + 2.5) + 1.0 / epoch


def drive(
    study: SweepStudy,
    *,
    window: int,
    max_epochs: int,
    order: random.Random,
    value: Callable[[Asked, int], float] = curve,
) -> list[Asked]:
    """Run the study's trials ``window`` at a time, advancing a random running one each step (the
    order in which workers report is the executors' business, not the study's)."""
    running: list[list] = []
    done: list[Asked] = []
    while True:
        while len(running) < window and (asked := study.ask()) is not None:
            running.append([asked, 0])
        if not running:
            return done
        entry = running[order.randrange(len(running))]
        entry[1] += 1
        asked, epoch = entry
        v = value(asked, epoch)
        if study.report(asked, epoch, v) or epoch >= max_epochs:
            study.tell(asked, Outcome("completed" if epoch >= max_epochs else "early-stopped", v, epoch))
            running.remove(entry)
            done.append(asked)


def table(studies: StudyStore) -> list[tuple]:
    return [
        (t.number, t.state, t.epochs, t.value, t.baseline, t.continues, t.config.get("lr"))
        for t in studies.summary("proto").trials
    ]


def test_the_same_seed_gives_the_same_trials_whatever_order_workers_report_in(tmp_path: Path) -> None:
    tables = []
    for run in range(3):
        studies, spec = new_study(tmp_path, f"run{run}")
        drive(
            SweepStudy(spec, studies.storage, n_trials=16, window=3), window=3, max_epochs=8, order=random.Random(run)
        )
        tables.append(table(studies))
    assert tables[0] == tables[1] == tables[2]
    assert len(tables[0]) == 16 and all(state in ("completed", "early-stopped") for _, state, *_ in tables[0])


def test_another_seed_gives_other_configs(tmp_path: Path) -> None:
    configs = []
    for seed in (0, 1):
        studies, spec = new_study(tmp_path, f"seed{seed}", seed=seed)
        drive(SweepStudy(spec, studies.storage, n_trials=16, window=2), window=2, max_epochs=8, order=random.Random(0))
        configs.append([row[-1] for row in table(studies)[1:]])
    assert configs[0] != configs[1]


def test_the_baseline_comes_first_runs_every_epoch_and_is_not_learned(tmp_path: Path) -> None:
    studies, spec = new_study(tmp_path)
    study = SweepStudy(spec, studies.storage, n_trials=16, window=2)
    done = drive(
        study,
        window=2,
        max_epochs=8,
        order=random.Random(0),
        value=lambda a, e: 9.0 if a.kind == "baseline" else curve(a, e),
    )
    baseline = next(a for a in done if a.kind == "baseline")
    assert baseline.number == 0 and baseline.outcome.epochs == 8 and baseline.position is None
    assert {k: baseline.config[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay")} == {
        "lr": 1e-3,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 0.0,
    }
    trials = studies.summary("proto").trials
    assert trials[0].baseline and not any(t.baseline for t in trials[1:])


def test_the_first_quarter_is_a_spread_design_then_tpe_models(tmp_path: Path) -> None:
    studies, spec = new_study(tmp_path, baseline=False, search_space="auto", n_trials=8)  # lr only
    study = SweepStudy(spec, studies.storage, n_trials=8, window=1)
    lrs = [
        a.config["lr"]
        for a in sorted(drive(study, window=1, max_epochs=8, order=random.Random(0)), key=lambda a: a.number)
    ]
    design = sorted(math.log10(lr) for lr in lrs[:3])  # max(3, 8 // 4) Sobol points over log10 lr in [-4, -1]
    assert all(-4 <= x <= -1 for x in design) and design[-1] - design[0] > 1.0
    assert min(abs(math.log10(lr) + 2.5) for lr in lrs[3:]) < min(abs(x + 2.5) for x in design)  # TPE closes in


def _complete(study: SweepStudy, at_rung_2: float, final: float) -> None:
    asked = study.ask()
    assert not study.report(asked, 2, at_rung_2)  # not stopped (see the callers)
    study.tell(asked, Outcome("completed", final, 8))


def test_asha_stops_a_trial_worse_than_those_it_learned_from(tmp_path: Path) -> None:
    studies, spec = new_study(
        tmp_path, baseline=False, n_trials=6, max_epochs=8, asha={"grace_period": 2, "reduction_factor": 4}
    )
    study = SweepStudy(spec, studies.storage, n_trials=6, window=1)
    # 0.5 and 0.6 are worse than the earlier values at rung 2, but under 3 completed trials the
    # rung judges none; these 3 it ranks as their final values do
    for at_rung_2, final in ((0.4, 0.3), (0.5, 0.35), (0.6, 0.5)):
        _complete(study, at_rung_2, final)
    fourth = study.ask()
    assert not study.report(fourth, 1, 9.0)  # between rungs
    assert study.report(fourth, 2, 0.55)  # worse than 3 of 4 values at rung 2 (factor 4)
    study.tell(fourth, Outcome("early-stopped", 0.55, 2))
    fifth = study.ask()
    assert not study.report(fifth, 2, 0.35)


def test_a_rung_that_misranks_the_completed_trials_stops_none(tmp_path: Path) -> None:
    studies, spec = new_study(
        tmp_path, baseline=False, n_trials=6, max_epochs=8, asha={"grace_period": 2, "reduction_factor": 4}
    )
    study = SweepStudy(spec, studies.storage, n_trials=6, window=1)
    for at_rung_2, final in ((0.4, 0.5), (0.5, 0.35), (0.6, 0.3)):  # best early, worst at the end
        _complete(study, at_rung_2, final)
    fourth = study.ask()
    assert not study.report(fourth, 2, 0.9)  # worst at the rung, yet the rung has not earned a stop
    study.tell(fourth, Outcome("completed", 0.2, 8))
    assert table(studies)[3][1:3] == ("completed", 8)


def test_an_early_stopped_trial_that_beats_the_completed_at_its_rung_is_continued(tmp_path: Path) -> None:
    studies, spec = new_study(
        tmp_path, baseline=False, n_trials=7, max_epochs=4, asha={"grace_period": 1, "reduction_factor": 4}
    )
    study = SweepStudy(spec, studies.storage, n_trials=7, window=1)  # the last max(1, 7 // 8) ask may continue one
    curves = [
        [1.0, 0.95, 0.92, 0.9],
        [1.1, 1.0, 0.97, 0.95],
        [1.3, 1.0, 0.9, 0.8],  # trial 2: the best at the end, 3rd at rung 1
        [1.4, 1.2, 1.1, 1.0],
        [1.5, 1.3, 1.2, 1.1],
        [1.2, 1.1, 1.0, 0.9],  # trial 5: stopped at rung 1 (worse than 3 of 4 there), yet ahead of trial 2
    ]
    for curve_ in curves:
        asked = study.ask()
        for epoch in range(1, 5):
            if study.report(asked, epoch, curve_[epoch - 1]) or epoch == 4:
                study.tell(asked, Outcome("completed" if epoch == 4 else "early-stopped", curve_[epoch - 1], epoch))
                break
    # Trials 0-4 completed: the rung judged none until 3 had, then (tau 0.33, then 0.6 over 5
    # completed trials) trial 5 was stopped at rung 1 by 1.0 and 1.1. The best completed, trial 2
    # (0.8 at the end), had 1.3 at rung 1, where trial 5 had 1.2: trial 5 is continued.
    assert [row[1] for row in table(studies)] == ["completed"] * 5 + ["early-stopped"]
    last = study.ask()
    assert (
        last.kind == "continued"
        and last.continues.number == 5
        and last.config == next(t.config for t in studies.summary("proto").trials if t.number == 5)
    )
    assert not study.report(last, 1, 0.9)  # never stopped
    study.tell(last, Outcome("completed", 0.5, 4))
    assert study.ask() is None
    record = studies.summary("proto").trials[-1]
    assert (record.continues, record.state, record.value) == (5, "completed", 0.5)


def test_an_ask_waits_for_the_trial_it_must_learn_from(tmp_path: Path) -> None:
    studies, spec = new_study(tmp_path, baseline=False)
    study = SweepStudy(spec, studies.storage, n_trials=16, window=2)
    first, second = study.ask(), study.ask()
    assert study.ask() is None  # position 2 learns from position 0, still running
    study.tell(second, Outcome("completed", 0.5, 8))
    assert study.ask() is None
    study.tell(first, Outcome("completed", 0.4, 8))
    assert study.ask() is not None


def test_stored_writes_wait_for_the_caller_and_keep_their_order(tmp_path: Path) -> None:
    studies, spec = new_study(tmp_path, n_trials=4, max_epochs=3)
    deferred: list[Callable[[], None]] = []
    study = SweepStudy(spec, studies.storage, n_trials=4, window=2, defer=deferred.append)
    done, stopped = study.ask(), study.ask()
    assert done.config != stopped.config and done.number is None
    study.report(done, 1, 0.7)
    study.report(done, 2, float("nan"))  # not recorded, as Trial.report would refuse it
    study.report(done, 3, 0.5)
    study.report(done, 3, 0.1)  # a retried trial repeats its epochs: the first value stays
    study.tell(stopped, Outcome("early-stopped", 2.0, 1, "stopped by the scheduler after epoch 1"))
    study.tell(done, Outcome("completed", 0.5, 3))
    assert studies.summary("proto").trials == ()
    for write in deferred:
        write()
    first, second = studies.summary("proto").trials
    assert (first.state, first.value, first.epochs, first.baseline) == ("completed", 0.5, 3, True)
    assert (second.state, second.value, second.reason) == (
        "early-stopped",
        2.0,
        "stopped by the scheduler after epoch 1",
    )
    stored = optuna.load_study(study_name="proto", storage=studies.storage).trials
    assert stored[0].intermediate_values == {1: 0.7, 3: 0.5}
    assert stored[1].user_attrs["beta2"] == 1 - stored[1].params["one_minus_beta2"]


def test_a_resume_reruns_interrupted_trials_first_and_retires_one_without_params(tmp_path: Path) -> None:
    studies, spec = new_study(tmp_path, n_trials=7)
    study = SweepStudy(spec, studies.storage, n_trials=7, window=3)
    _baseline, interrupted, finished = study.ask(), study.ask(), study.ask()
    study.tell(finished, Outcome("completed", 0.5, 8))
    raw = optuna.load_study(study_name="proto", storage=studies.storage)
    raw.ask()  # trial 3, created without params (a crash between two writes of an older adamtune)

    resumed = SweepStudy(spec, studies.storage, n_trials=5, window=3)
    again_baseline, again = resumed.ask(), resumed.ask()  # both were left running
    assert (again_baseline.number, again_baseline.kind) == (0, "baseline")
    assert (again.number, again.kind, again.config) == (interrupted.number, "resumed", interrupted.config)
    trials = studies.summary("proto").trials
    assert trials[3].state == "failed" and "interrupted" in trials[3].reason
    fresh = resumed.ask()
    assert fresh.kind == "sampled" and fresh.number == 4
    assert fresh.config not in (interrupted.config, finished.config)  # the design goes on where it was


def test_a_space_with_every_value_fixed_is_asked_like_any_other(tmp_path: Path) -> None:
    """The study does not depend on the executor; tests/packed/test_packed_sweep.py runs it in both."""
    studies, spec = new_study(tmp_path, baseline=False, search_space={"params": {"lr": 0.01, "beta1": 0.8}})
    study = SweepStudy(spec, studies.storage, n_trials=3, window=1)
    done = drive(study, window=1, max_epochs=8, order=random.Random(0))
    assert [a.config["lr"] for a in done] == [0.01] * 3 and all(a.params == {} for a in done)


def test_objective_best_ranks_a_trial_by_its_best_epoch_and_records_which(tmp_path: Path) -> None:
    def overfits(asked: Asked, epoch: int) -> float:  # best at epoch 3, then worse
        return curve(asked, 1) + (epoch - 3) ** 2 / 10

    tables = {}
    for objective in ("last", "best"):
        studies, spec = new_study(tmp_path, objective, objective=objective, n_trials=6, max_epochs=6, scheduler="none")
        drive(
            SweepStudy(spec, studies.storage, n_trials=6, window=1),
            window=1,
            max_epochs=6,
            order=random.Random(0),
            value=overfits,
        )
        tables[objective] = studies.summary("proto").trials
    for last, best in list(zip(tables["last"], tables["best"]))[:4]:  # the baseline and the Sobol design
        assert last.config == best.config
        assert (last.value_epoch, best.value_epoch) == (6, 3)
        assert best.value == pytest.approx(last.value - 0.9)  # (6 - 3) ** 2 / 10 above its best
