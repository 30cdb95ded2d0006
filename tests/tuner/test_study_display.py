"""What optuna-dashboard shows of a sweep's study: the metric's name, the spec as YAML in the
study's note, and each trial's config in one line with 4 significant digits (the exact values
stay in the params and the config user attributes the code reads)."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
import yaml
from optuna_dashboard import get_note
from test_sweep_study import BASE, drive, new_study

from tuner.executor import SweepStudy
from tuner.spec import parse_spec
from tuner.study import CONFIG_TEXT_ATTR, config_text, spec_note


def test_the_study_names_its_metric_and_notes_its_spec_as_yaml(tmp_path: Path) -> None:
    studies, spec = new_study(tmp_path)
    study = optuna.load_study(study_name="proto", storage=studies.storage)
    assert study.metric_names == ["val_loss"]
    note = get_note(study)
    assert note.startswith("## Sweep proto") and "```yaml\n" in note
    assert yaml.safe_load(note.split("```yaml\n")[1].split("```")[0]) == spec.model_dump(mode="json")
    shorter = parse_spec({**BASE, "search_space": {"params": {"lr": 1e-3}}})
    studies.create(shorter)  # the same study made again with a shorter spec: its note replaces the longer one whole
    assert get_note(study) == spec_note(shorter.model_dump(mode="json")) and len(get_note(study)) < len(note)


def test_each_trial_carries_its_config_in_one_readable_line(tmp_path: Path) -> None:
    studies, spec = new_study(tmp_path, n_trials=3)
    drive(SweepStudy(spec, studies.storage, n_trials=3, window=1), window=1, max_epochs=8, order=random.Random(0))
    trials = optuna.load_study(study_name="proto", storage=studies.storage).trials
    assert trials[0].user_attrs[CONFIG_TEXT_ATTR] == (
        "lr 0.001, beta1 0.9 (1-beta1 1.000e-01), beta2 0.999 (1-beta2 1.000e-03), eps 1e-08, weight_decay 0, "
        "schedule constant"
    )
    sampled = trials[1]
    assert sampled.user_attrs["beta2"] == 1 - sampled.params["one_minus_beta2"]  # exact, as the code reads it
    assert f"(1-beta2 {sampled.params['one_minus_beta2']:.3e})" in sampled.user_attrs[CONFIG_TEXT_ATTR]


def test_config_text_rounds_to_4_significant_digits() -> None:
    text = config_text(
        {
            "lr": 0.009573982979577652,
            "beta1": 0.7404485889303167,
            "beta2": 0.9997901643916594,
            "eps": 1.4828265561584065e-07,
            "weight_decay": 0.0,
            "schedule": "cosine",
            "warmup_fraction": 0.05,
        }
    )
    assert text == (
        "lr 0.009574, beta1 0.7404 (1-beta1 2.596e-01), beta2 0.9998 (1-beta2 2.098e-04), eps 1.483e-07, "
        "weight_decay 0, schedule cosine (warmup 0.05)"
    )
