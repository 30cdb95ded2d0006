"""Bad input exits 2 with a one-line reason and writes nothing to the stores."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tuner.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "examples" / "digits.yaml").read_text()


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["tuner", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code


BAD_SPECS = {
    "unknown-key": GOOD + "learning_rate: 0.1\n",
    "low-not-below-high": GOOD.replace("search_space: adam", "search_space: {params: {lr: {distribution: log_uniform, low: 0.1, high: 0.01}}}"),
    "beta-outside-0-1": GOOD.replace("search_space: adam", "search_space: {params: {beta1: 1.0}}"),
    "eps-not-positive": GOOD.replace("search_space: adam", "search_space: {params: {eps: -1.0e-8}}"),
    "unknown-workload": GOOD.replace("workload: digits_mlp", "workload: imagenet"),
    "zero-trials": GOOD.replace("n_trials: 16", "n_trials: 0"),
    "malformed-yaml": GOOD + "  : : [\n",
    "metric-not-reported": GOOD.replace("metric: val_loss", "metric: val_bleu"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_exits_2_and_writes_nothing(case: str, tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TUNER_HOME", str(home))
    spec = tmp_path / "spec.yaml"
    spec.write_text(BAD_SPECS[case])
    assert run_cli(monkeypatch, "sweep", "run", str(spec)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not home.exists() or not any(home.iterdir())


def test_unknown_sweep_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TUNER_HOME", str(tmp_path))
    assert run_cli(monkeypatch, "export", "nope") == 2
    assert "no sweep named 'nope'" in capsys.readouterr().err


def test_usage_errors_exit_2(monkeypatch) -> None:
    assert run_cli(monkeypatch, "sweep", "run") == 2
    assert run_cli(monkeypatch, "export", "x", "--format", "toml") == 2


def test_help_does_not_import_heavy_libraries() -> None:
    import subprocess

    code = "import sys, tuner.cli; print(sorted(m for m in ('torch', 'ray', 'mlflow', 'optuna') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


BAD_CODE = {
    "missing-file": ("workload: nope.py:train", None),
    "missing-attribute": ("workload: train.py:fit", "def train(trial):\n    pass\n"),
    "not-a-workload": ("workload: train.py:train", "train = {'lr': 0.1}\n"),
    "raises-at-import": ("workload: train.py:train", "raise RuntimeError('no GPU here')\n"),
    "bad-workload-args": (
        "workload: train.py:train\nworkload_args: {hidden: wide}",
        "from pydantic import BaseModel\nclass Args(BaseModel):\n    hidden: int = 8\n"
        "def train(trial):\n    pass\ntrain.Args = Args\n",
    ),
    "packed-function": ("workload: train.py:train\nexecution: packed", "def train(trial):\n    pass\n"),
}


@pytest.mark.parametrize("case", sorted(BAD_CODE))
def test_bad_own_code_exits_2_and_writes_nothing(case: str, tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TUNER_HOME", str(home))
    workload, source = BAD_CODE[case]
    if source is not None:
        (tmp_path / "train.py").write_text(source)
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD.replace("workload: digits_mlp", workload))
    assert run_cli(monkeypatch, "sweep", "run", str(spec)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid sweep spec: ") and "workload" in err and "\n" not in err and "Traceback" not in err
    assert not home.exists() or not any(home.iterdir())


def test_submit_refuses_own_code_for_the_queue(tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TUNER_HOME", str(home))
    (tmp_path / "train.py").write_text("raise SystemExit('imported')\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD.replace("workload: digits_mlp", "workload: train.py:train"))
    assert run_cli(monkeypatch, "sweep", "submit", str(spec)) == 2
    assert "runs registered workloads only" in capsys.readouterr().err
    assert not home.exists() or not any(home.iterdir())
