"""Fresh state per trial: the user's modules (a function's file and its siblings, a package, a
script's imports) run anew for every trial in one process, as Ray runs several trials in one
reused worker; each function or script trial runs in a folder of its own."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from workers.trainable import forget_modules, train_trial, user_source

CONFIG = {"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

MODEL = """
import torch

torch.manual_seed(123)
model = torch.nn.Linear(8, 1)      # built once at import: a reused module would keep training it
calls = []
"""

TRAIN = """
import json
import os
import torch
from shared import model, calls

def train(trial):
    calls.append(trial.number)
    start = float(sum(p.sum() for p in model.parameters()))
    optimizer = trial.optimizer(model.parameters())
    x = torch.randn(64, 8)
    for epoch in range(trial.max_epochs):
        for _ in range(20):
            loss = ((model(x) - 1) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        trial.report(val_loss=loss.item())
    with open(f"start-{trial.number}.json", "w") as f:   # in the trial's own folder
        json.dump({"start": start, "calls": list(calls), "files": sorted(os.listdir("."))}, f)
"""

SCRIPT = """
import json
import torch
from workers import trial
from shared import model, calls

calls.append(trial.number)
start = float(sum(p.sum() for p in model.parameters()))
optimizer = trial.optimizer(model.parameters())
x = torch.randn(64, 8)
for epoch in range(2):
    loss = ((model(x) - 1) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    trial.report(val_loss=loss.item())
with open("start.json", "w") as f:
    json.dump({"start": start, "calls": list(calls)}, f)
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "shared.py").write_text(MODEL)
    (folder / "fit.py").write_text(TRAIN)
    (folder / "script.py").write_text(SCRIPT)
    (folder / "data.txt").write_text("input\n")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    forget_modules(folder)


def trials(workload: str, folder: Path, out: Path, numbers: range) -> list[dict]:
    seen = []
    for number in numbers:
        rows: list[dict] = []
        train_trial(
            {**CONFIG, "trial_number": number},
            workload=workload,
            max_epochs=2,
            seed=number,
            metric="val_loss",
            trial_dir=out / f"trial-{number}",
            report=rows.append,
        )
        assert [r.get("error") for r in rows] == [None, None]
        name = "start.json" if workload.endswith(".py") else f"start-{number}.json"
        seen.append(json.loads((out / f"trial-{number}" / name).read_text()))
    return seen


def test_a_module_level_model_starts_every_function_trial_from_its_initial_weights(code: Path, tmp_path: Path) -> None:
    seen = trials("fit:train", code, tmp_path / "runs", range(3))
    assert len({s["start"] for s in seen}) == 1  # trial 2 does not start from trial 1's trained weights
    assert [s["calls"] for s in seen] == [[0], [1], [2]]  # the sibling module ran anew each trial


def test_a_script_and_its_imports_run_anew_every_trial(code: Path, tmp_path: Path) -> None:
    seen = trials(str(code / "script.py"), code, tmp_path / "runs", range(3))
    assert len({s["start"] for s in seen}) == 1 and [s["calls"] for s in seen] == [[0], [1], [2]]


def test_each_trial_has_its_own_folder_holding_the_users_files(code: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    seen = trials("fit:train", code, out, range(2))
    for number in range(2):
        assert seen[number]["files"] == ["data.txt", "fit.py", "script.py", "shared.py", f"start-{number}.json"]
        assert [p.name for p in (out / f"trial-{number}").iterdir()] == [f"start-{number}.json"]  # then its own only
    assert not list(code.glob("start-*.json"))  # nothing written into the user's folder


def test_what_is_the_users_code_and_what_is_not(code: Path) -> None:
    import workers

    assert user_source("fit:train").folder == code.resolve() and user_source("fit:train").mirror
    assert user_source(str(code / "script.py")).folder == code.resolve()
    assert user_source("workers.workloads.digits:DigitsMLP") is None  # ours: never re-imported
    assert user_source("json:loads") is None and user_source("torch.nn:Linear") is None
    assert user_source(lambda trial: None) is None and user_source("digits_mlp") is None
    import fit  # noqa: F401 - the import itself is what the test observes

    assert "fit" in forget_modules(code) and "fit" not in sys.modules and "workers" in sys.modules
    assert workers.__name__ == "workers"


def test_a_large_file_is_linked_not_copied(code: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import trainable

    monkeypatch.setattr(trainable, "MIRROR_COPY_BYTES", 10)
    (code / "big.bin").write_bytes(b"x" * 100)
    (code / "__pycache__").mkdir(exist_ok=True)
    target = tmp_path / "mirror"
    trainable.mirror(code, target)
    assert (target / "big.bin").is_symlink() and (target / "big.bin").read_bytes() == b"x" * 100
    assert (target / "data.txt").is_file() and not (target / "data.txt").is_symlink()  # small: copied
    assert not (target / "__pycache__").exists()
