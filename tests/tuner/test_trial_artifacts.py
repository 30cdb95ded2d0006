"""A trial's files (what it wrote in ``trial.dir``) become artifacts of its MLflow run when it
ends, and ``tuner export NAME --artifacts DIR`` copies the recommended trial's back out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tuner import parse_spec
from tuner.cli import main
from tuner.records import Outcome
from tuner.tracking import Tracker, TrackingWriter

SPEC = parse_spec(
    {"name": "files-test", "workload": "digits_mlp", "search_space": "adam", "n_trials": 2, "max_epochs": 2}
)
CONFIG = SPEC.search_space.to_adam_config({"lr": 1e-3, "one_minus_beta1": 0.1, "one_minus_beta2": 1e-3, "eps": 1e-8})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A trial's folder as a trial leaves it: a checkpoint, a log in a subfolder, and links."""
    folder = tmp_path / "trial"
    (folder / "logs").mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"weights" * 100)
    (folder / "logs" / "train.log").write_text("epoch 1\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.bin").write_bytes(b"d")
    (folder / "data.bin").symlink_to(elsewhere / "data.bin")  # a link: not the trial's file
    (folder / "data").symlink_to(elsewhere, target_is_directory=True)
    return folder


@pytest.fixture
def tracker(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())


def test_a_trials_files_are_logged_without_links_and_come_back(folder: Path, tracker: Tracker, tmp_path: Path) -> None:
    parent = tracker.start_sweep(SPEC.name, SPEC.model_dump(mode="json"))
    run_id = tracker.start_trial(SPEC.name, parent, 0, CONFIG)
    assert tracker.log_trial_files(run_id, folder) == [Path("logs/train.log"), Path("model.pt")]
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "train.log").write_text("an older log\n")
    assert tracker.download_trial_files(run_id, out) == [Path("logs/train.log"), Path("model.pt")]
    assert (out / "model.pt").read_bytes() == b"weights" * 100 and (
        out / "logs" / "train.log"
    ).read_text() == "epoch 1\n"
    assert sorted(p.name for p in out.iterdir()) == ["logs", "model.pt"]  # no download folder left behind
    assert tracker.log_trial_files(run_id, tmp_path / "on-another-node") == []  # not on this disk: nothing
    other = tracker.start_trial(SPEC.name, parent, 1, CONFIG)
    assert tracker.download_trial_files(other, tmp_path / "none") == [] and not (tmp_path / "none").exists()


def test_files_past_the_bounds_are_left_out_and_counted(
    folder: Path, tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    from tuner.tracking import _files

    monkeypatch.setattr(_files, "MAX_BYTES", 100)  # model.pt (700 bytes) does not fit; train.log does
    parent = tracker.start_sweep(SPEC.name, SPEC.model_dump(mode="json"))
    run_id = tracker.start_trial(SPEC.name, parent, 0, CONFIG)
    assert tracker.log_trial_files(run_id, folder) == [Path("logs/train.log")]
    tag = MlflowClient(tracking_uri=tracker.tracking_uri).get_run(run_id).data.tags["adamtune.files_left_out"]
    assert tag.startswith("1 files, 700 bytes")


def test_the_writer_logs_a_trials_files_when_it_ends(folder: Path, tracker: Tracker, tmp_path: Path) -> None:
    parent = tracker.start_sweep(SPEC.name, SPEC.model_dump(mode="json"))
    writer = TrackingWriter(tracker.tracking_uri, (tmp_path / "artifacts").as_uri())
    try:
        events = writer.events(SPEC.name, parent)
        events.trial_started(0, CONFIG)
        events.trial_started(1, CONFIG)
        events.epoch_reported(0, 1, {"val_loss": 0.5})
        events.trial_finished(0, Outcome("completed", 0.5, 1, folder=str(folder)))
        events.trial_finished(1, Outcome("failed", None, 0, "boom"))  # a Workload's trial: no folder
        events.close()
    finally:
        writer.close()
    runs = tracker.trial_run_ids(SPEC.name)
    assert tracker.download_trial_files(runs[0], tmp_path / "got") == [Path("logs/train.log"), Path("model.pt")]
    assert tracker.download_trial_files(runs[1], tmp_path / "none") == []


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["tuner", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code


def test_export_artifacts_copies_the_recommended_trials_files(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import optuna

    from tuner.service import SweepService
    from tuner.settings import Settings
    from tuner.study import distributions

    service = SweepService(Settings(home=tmp_path / "home"))
    service.studies.create(SPEC)
    study = optuna.load_study(study_name=SPEC.name, storage=service.studies.storage)
    for value in (0.5, 0.25):  # trial 1 is the recommended one
        trial = study.ask(distributions(SPEC.search_space))
        trial.set_user_attr("epochs", 2)
        study.tell(trial, value)
    parent = service.tracker.start_sweep(SPEC.name, SPEC.model_dump(mode="json"))
    for record in service.summary(SPEC.name).trials:
        run_id = service.tracker.start_trial(SPEC.name, parent, record.number, record.config)
        if record.number == 1:
            service.tracker.log_trial_files(run_id, folder)
        service.tracker.end_trial(run_id, "completed")
    monkeypatch.setenv("TUNER_HOME", str(tmp_path / "home"))

    out = tmp_path / "best"
    assert run_cli(monkeypatch, "export", SPEC.name, "--artifacts", str(out)) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["source"]["trial"] == 1  # the config, as without --artifacts
    assert printed.err.splitlines()[-3:] == [  # after MLflow's progress bar
        f"trial 1, the recommended one: 2 file(s) copied into {out}",
        f"  {out / 'logs' / 'train.log'}",
        f"  {out / 'model.pt'}",
    ]
    assert (out / "model.pt").read_bytes() == b"weights" * 100

    study.tell(study.ask(distributions(SPEC.search_space)), 0.1)  # now the best has no files
    assert run_cli(monkeypatch, "export", SPEC.name, "--artifacts", str(tmp_path / "none")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: trial 2 of sweep 'files-test', the recommended one, has no files in MLflow")
    assert "\n" not in err and not (tmp_path / "none").exists()
    assert run_cli(monkeypatch, "export", SPEC.name, "--artifacts", str(out), "--server", "http://x:1") == 2
    assert "without --server" in capsys.readouterr().err
