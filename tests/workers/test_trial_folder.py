"""What a trial leaves in its own folder: once it ended, only what it wrote (the user's files
placed there for it to read are gone again), and every row names the folder, so the driver can
log those files as the trial's artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workers import trainable
from workers.trainable import train_trial, trial_folder

CONFIG = {"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "trial_number": 0}

SCRIPT = """
import torch
from pathlib import Path
from workers import trial

assert Path("data/vocab.txt").read_text() == "a b c\\n" and Path("big.bin").is_symlink()  # the user's files
model = torch.nn.Linear(2, 1)
optimizer = trial.optimizer(model.parameters())
for epoch in range(2):
    trial.report(val_loss=1.0 / (epoch + 1))
    torch.save(model.state_dict(), "model.pt")
Path("logs").mkdir()
Path("logs/train.log").write_text("done\\n")
Path("notes.txt").write_text("rewritten by the trial\\n")
"""


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(trainable, "MIRROR_COPY_BYTES", 64)  # big.bin is linked, not copied
    folder = tmp_path / "code"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "vocab.txt").write_text("a b c\n")
    (folder / "notes.txt").write_text("the user's notes\n")
    (folder / "big.bin").write_bytes(b"x" * 1000)
    (folder / "train.py").write_text(SCRIPT)
    return folder


def run(script: Path, trial_dir: Path | None) -> list[dict]:
    rows: list[dict] = []
    train_trial(
        CONFIG, workload=str(script), max_epochs=2, seed=0, metric="val_loss", trial_dir=trial_dir, report=rows.append
    )
    return rows


def test_a_trials_folder_keeps_only_what_it_wrote_and_its_rows_name_it(code: Path, tmp_path: Path) -> None:
    folder = tmp_path / "trial-0"
    rows = run(code / "train.py", folder)
    assert [r.get("error") for r in rows] == [None, None]
    assert all(r["trial_dir"] == str(folder.resolve()) for r in rows)
    left = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    assert left == ["logs", "logs/train.log", "model.pt", "notes.txt"]  # data/, big.bin, train.py: the user's, gone
    assert (folder / "notes.txt").read_text() == "rewritten by the trial\n"  # a copy the trial rewrote is its own
    assert (code / "notes.txt").read_text() == "the user's notes\n" and (code / "big.bin").stat().st_size == 1000


def test_a_failed_trial_names_its_folder_too_and_a_temporary_one_is_not_named(code: Path, tmp_path: Path) -> None:
    (code / "train.py").write_text(SCRIPT.replace('Path("logs").mkdir()', "1 / 0"))
    rows = run(code / "train.py", tmp_path / "trial-1")
    assert rows[-1]["error"].startswith("ZeroDivisionError") and rows[-1]["trial_dir"] == str(
        (tmp_path / "trial-1").resolve()
    )
    assert sorted(os.listdir(tmp_path / "trial-1")) == ["model.pt"]
    rows = run(code / "train.py", None)  # a re-evaluation's: removed once it ends, nothing to log
    assert "trial_dir" not in rows[-1]


def test_a_folder_without_the_users_files_is_left_as_the_trial_left_it(tmp_path: Path) -> None:
    with trial_folder(tmp_path / "t", None) as folder:
        Path("out.txt").write_text("x")
        assert Path.cwd() == folder
    assert os.listdir(tmp_path / "t") == ["out.txt"]
