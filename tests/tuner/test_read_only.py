"""Reading commands create no store: in a folder without one they answer "no such sweep" or an
empty list, and the folder stays as it was."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tuner.cli import main

READS = [
    (("sweep", "show", "digits-mlp"), 2, "no sweep named 'digits-mlp'; known sweeps: none yet"),
    (("sweep", "show", "digits-mlp", "--json"), 2, "no sweep named 'digits-mlp'"),
    (("export", "digits-mlp"), 2, "no sweep named 'digits-mlp'"),
    (("sweep", "list"), 0, ""),
    (("sweep", "list", "--state", "queued"), 0, ""),
]


@pytest.mark.parametrize(("args", "code", "error"), READS, ids=[" ".join(r[0]) for r in READS])
def test_reading_an_empty_folder_creates_no_store(
    args, code: int, error: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # the default home, ./tuner-data, as a new user meets it
    monkeypatch.delenv("TUNER_HOME", raising=False)
    monkeypatch.setattr(sys, "argv", ["tuner", *args])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == code
    assert error in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_reading_a_queue_only_home_leaves_the_other_stores_uncreated(tmp_path: Path, monkeypatch, capsys) -> None:
    """A home with only the queue (sweeps submitted, none run yet) gets no Optuna or MLflow store from reads."""
    from tuner import parse_spec
    from tuner.service import SweepService
    from tuner.settings import Settings

    spec = parse_spec(
        {"name": "queued", "workload": "digits_mlp", "search_space": "adam", "n_trials": 2, "max_epochs": 2}
    )
    SweepService(Settings(home=tmp_path)).store.submit(spec.name, spec.model_dump(mode="json"))
    monkeypatch.setenv("TUNER_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["tuner", "sweep", "show", "queued", "--json"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "queued" and shown["trial_records"] == []
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".db"] == ["tuner.db"]
