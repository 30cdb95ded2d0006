"""Sweep analysis: Optuna's plots as PNGs over every trial that trained and fANOVA importance, never an exception."""

from __future__ import annotations

import json
import math

import matplotlib
import optuna
import pytest
from optuna.trial import TrialState, create_trial
from study_cases import WITH_SCHEDULES, add_baseline, add_trials, new_study, space, sweep_in_home

from tuner.review import PLOT_TITLES, analysis_files, analysis_metrics, analyze
from tuner.study import StudyStore

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def storage() -> optuna.storages.BaseStorage:
    return optuna.storages.InMemoryStorage()


def test_every_plot_is_a_png_and_importances_sum_to_one_over_the_searched_params(storage) -> None:
    study = new_study(storage, "full", WITH_SCHEDULES)
    baseline = add_baseline(study, WITH_SCHEDULES)
    add_trials(study, WITH_SCHEDULES, 15, pruned_every=5)
    assert "weight_decay" not in baseline  # torch's 0.0 lies outside the log-uniform range: the baseline lacks it

    analysis = analyze(storage, "full")

    assert list(analysis.plots) == list(PLOT_TITLES)
    assert all(png.startswith(PNG) for png in analysis.plots.values())
    searched = set(space(WITH_SCHEDULES).searched())
    assert {"lr", "one_minus_beta2", "weight_decay", "schedule"} <= searched
    assert set(analysis.importance) == {"fanova"}  # one method, everywhere
    assert analysis.n_trials == 15  # the 3 early-stopped ones too; the baseline lacks weight_decay
    assert analysis.value_label == "val_loss at epoch 1"  # the early-stopped trials stopped after epoch 1
    assert any("fANOVA importance from only 15 trials" in note for note in analysis.notes)
    for values in analysis.importance.values():
        assert set(values) == searched
        assert math.fsum(values.values()) == pytest.approx(1.0)
    assert max(analysis.importance["fanova"], key=analysis.importance["fanova"].get) == "lr"  # the value depends on lr


def test_a_baseline_with_partial_params_neither_crashes_nor_drops_a_param_from_importance(storage) -> None:
    study = new_study(storage, "baseline", "adamw-warmup-cosine")
    add_baseline(study, "adamw-warmup-cosine")
    add_trials(study, "adamw-warmup-cosine", 10)

    analysis = analyze(storage, "baseline")

    assert set(analysis.importance["fanova"]) == set(space("adamw-warmup-cosine").searched())  # weight_decay kept
    assert {"optimization_history", "parallel_coordinate", "slice", "contour_lr_beta2"} <= set(analysis.plots)


def test_a_sweep_of_16_with_13_early_stopped_plots_all_16_at_their_common_rung(storage) -> None:
    study = new_study(storage, "asha", "adam")
    add_trials(study, "adam", 13, pruned_every=1)  # 13 stopped after epoch 1
    completed = [t for t in study.trials][:3]
    for t in completed:  # 3 ran every epoch (the configs of the first 3, trained again)
        study.add_trial(
            create_trial(
                params=t.params,
                distributions=t.distributions,
                value=t.intermediate_values[1] - 0.5,
                intermediate_values={1: t.intermediate_values[1], 2: 0.9, 3: 0.8},
            )
        )
    assert len(study.trials) == 16 and sum(t.state == TrialState.PRUNED for t in study.trials) == 13

    analysis = analyze(storage, "asha")

    assert analysis.n_trials == 16 and analysis.value_label == "val_loss at epoch 1"
    assert {"parallel_coordinate", "slice", "contour_lr_beta2", "importance"} <= set(analysis.plots)
    assert analysis.continued == {1: max(t.intermediate_values[1] for t in completed), 2: 0.9}


@pytest.mark.parametrize(
    ("epochs", "label"),
    [((3, 2, 3), "val_loss at epoch 2"), ((3, 0, 3), "val_loss (each trial's last epoch)")],
    ids=["shared-epoch-2", "one-reported-no-epoch"],
)
def test_trials_are_compared_at_the_highest_epoch_all_reported_else_at_their_last(storage, epochs, label) -> None:
    study = new_study(storage, "rungs", "adam")
    add_trials(study, "adam", len(epochs))  # each reported epochs 1-3
    compared = optuna.create_study(storage=storage, study_name="compared", direction="minimize")
    compared.set_user_attr("spec", study.user_attrs["spec"])
    for t, n in zip(study.trials, epochs, strict=True):
        compared.add_trial(
            create_trial(
                params=t.params,
                distributions=t.distributions,
                value=t.value,
                intermediate_values={e: v for e, v in t.intermediate_values.items() if e <= n},
            )
        )

    analysis = analyze(storage, "compared")

    assert analysis.n_trials == len(epochs) and analysis.value_label == label
    assert analyze(storage, new_study(storage, "empty", "adam").study_name).value_label == (
        "val_loss (each trial's last epoch)"
    )


def test_few_trials_draw_no_contour_and_no_importance(storage) -> None:
    study = new_study(storage, "five", "adam")
    add_trials(study, "adam", 5)

    analysis = analyze(storage, "five")

    assert analysis.importance == {} and "contour_lr_beta2" not in analysis.plots
    assert any("importance needs at least 8 trials" in note for note in analysis.notes)
    assert any("contour_lr_beta2 plot skipped: needs at least 10 trials; got 5" in note for note in analysis.notes)


@pytest.mark.parametrize("n_trials", [0, 1])
def test_too_few_trials_give_notes_not_exceptions(storage, n_trials: int) -> None:
    study = new_study(storage, "few", "adamw-warmup-cosine")
    if n_trials:
        add_baseline(study, "adamw-warmup-cosine")  # completed, but lacks weight_decay: no usable trial
    study.add_trial(create_trial(state=TrialState.FAIL))

    analysis = analyze(storage, "few")

    assert analysis.importance == {}
    assert set(analysis.plots) == ({"optimization_history", "intermediate_values"} if n_trials else set())
    assert any("importance needs at least 8 trials" in note for note in analysis.notes)
    assert any(note.startswith("contour_lr_beta2 plot skipped") for note in analysis.notes)


def test_a_single_searched_param_skips_importance_and_contour_with_notes(storage) -> None:
    one = {"params": {"lr": {"distribution": "log_uniform", "low": 1.0e-5, "high": 1.0e-1}}}
    study = new_study(storage, "one", one)
    add_trials(study, one, 4)

    analysis = analyze(storage, "one")

    assert analysis.importance == {}
    assert {"optimization_history", "slice"} <= set(analysis.plots)
    assert any("at least 2 searched params" in note for note in analysis.notes)
    assert any("contour_lr_beta2 plot skipped: needs lr and beta2" in note for note in analysis.notes)


def test_equal_values_leave_a_note_for_the_evaluator_that_cannot_run(storage) -> None:
    study = new_study(storage, "flat", "adam")
    add_trials(study, "adam", 9)
    flat = new_study(storage, "flat-copy", "adam")
    for trial in study.trials:
        flat.add_trial(create_trial(params=trial.params, distributions=trial.distributions, value=1.0))

    analysis = analyze(storage, "flat-copy")

    assert "fanova" not in analysis.importance
    assert any(note.startswith("fanova importance skipped") for note in analysis.notes)


def test_metrics_and_files_name_each_importance_and_plot(storage) -> None:
    study = new_study(storage, "files", "adam")
    add_trials(study, "adam", 9)
    analysis = analyze(storage, "files")

    metrics = analysis_metrics(analysis)
    files = analysis_files(analysis)

    assert metrics["importance_fanova_lr"] == analysis.importance["fanova"]["lr"]
    assert {f"importance_fanova_{p}" for p in space("adam").searched()} == set(metrics)
    assert {f"analysis/{name}.png" for name in analysis.plots} <= set(files)
    assert json.loads(files["analysis/importance.json"])["importance"] == analysis.importance


def test_reads_a_sweep_from_its_sqlite_study_and_leaves_matplotlib_style_alone(tmp_path) -> None:
    sweep_in_home(tmp_path, "stored", "adam", n=4)
    before = dict(matplotlib.rcParams)

    analysis = analyze(StudyStore(f"sqlite:///{tmp_path}/optuna.db").storage, "stored")

    assert list(analysis.plots) == [n for n in PLOT_TITLES if n not in ("contour_lr_beta2", "importance")]  # 4-5 trials
    assert dict(matplotlib.rcParams) == before  # Optuna's ggplot style stays inside the analysis


def test_an_unknown_study_raises_key_error(storage) -> None:
    with pytest.raises(KeyError):
        analyze(storage, "missing")
