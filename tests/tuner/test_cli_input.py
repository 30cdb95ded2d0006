"""Bad input exits 2 with a one-line reason and writes nothing to the stores."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tuner.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "examples" / "digits.yaml").read_text()


def with_space(space: str) -> str:
    """GOOD with its search_space line replaced by ``search_space: <space>``."""
    bad = re.sub(r"^search_space:.*$", f"search_space: {space}", GOOD, count=1, flags=re.MULTILINE)
    assert bad != GOOD
    return bad


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["tuner", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code


BAD_SPECS = {
    "unknown-key": GOOD + "learning_rate: 0.1\n",
    "low-not-below-high": with_space("{params: {lr: {distribution: log_uniform, low: 0.1, high: 0.01}}}"),
    "beta-outside-0-1": with_space("{params: {beta1: 1.0}}"),
    "eps-not-positive": with_space("{params: {eps: -1.0e-8}}"),
    "unknown-workload": GOOD.replace("workload: digits_mlp", "workload: imagenet"),
    "zero-trials": GOOD.replace("n_trials: 16", "n_trials: 0"),
    "malformed-yaml": GOOD + "  : : [\n",
    "metric-not-reported": GOOD.replace("metric: val_loss", "metric: val_bleu"),
    "workload-arg-over-bound": GOOD + "workload_args: {hidden: 1000000000000}\n",
    "model-over-memory-limit": GOOD.replace("workload: digits_mlp", "workload: char_lm")
    + "workload_args: {n_layer: 128, d_model: 16384, n_head: 128}\n",
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
    assert (
        err.startswith("error: invalid sweep spec: ")
        and "workload" in err
        and "\n" not in err
        and "Traceback" not in err
    )
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


def _workload_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, str]]:
    """Spec lines for the bundled data workloads' bad inputs (files made in ``tmp_path``), and
    what the error must name."""
    import pickle

    monkeypatch.syspath_prepend(str(ROOT / "tests" / "workers"))
    from cifar10_fixture import write_cifar10_miniature

    truncated = write_cifar10_miniature(tmp_path / "truncated")
    (truncated / "data_batch_3").write_bytes((truncated / "data_batch_3").read_bytes()[:500])
    reshaped = write_cifar10_miniature(tmp_path / "reshaped")
    batch = pickle.loads((reshaped / "data_batch_1").read_bytes(), encoding="bytes")
    batch[b"data"] = batch[b"data"].reshape(-1, 3, 32, 32)
    (reshaped / "data_batch_1").write_bytes(pickle.dumps(batch))
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1") * 50)
    (tmp_path / "short.txt").write_text("print('hi')\n" * 20)
    lm = "workload: char_lm\nworkload_args: "
    return {
        "cifar-missing-folder": (f"workload: cifar10_cnn\nworkload_args: {{data_dir: {tmp_path / 'nope'}}}", "nope"),
        "cifar-truncated-batch": (f"workload: cifar10_cnn\nworkload_args: {{data_dir: {truncated}}}", "data_batch_3"),
        "cifar-wrong-shape": (f"workload: cifar10_cnn\nworkload_args: {{data_dir: {reshaped}}}", "data_batch_1"),
        "lm-empty-text": (lm + f"{{text_path: {tmp_path / 'empty.txt'}}}", "empty.txt"),
        "lm-not-utf8": (lm + f"{{text_path: {tmp_path / 'latin1.txt'}}}", "UTF-8"),
        "lm-context-too-long": (lm + f"{{text_path: {tmp_path / 'short.txt'}, context: 512}}", "context"),
        "lm-d_model-not-divisible": (lm + "{d_model: 66, n_head: 4}", "d_model"),
    }


DATA_CASES = [
    "cifar-missing-folder",
    "cifar-truncated-batch",
    "cifar-wrong-shape",
    "lm-empty-text",
    "lm-not-utf8",
    "lm-context-too-long",
    "lm-d_model-not-divisible",
]


@pytest.mark.parametrize("case", DATA_CASES)
def test_bad_workload_data_exits_2_before_any_trial(case: str, tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TUNER_HOME", str(home))
    monkeypatch.delenv("ADAMTUNE_CIFAR10_DIR", raising=False)
    lines, needle = _workload_data(tmp_path, monkeypatch)[case]
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD.replace("workload: digits_mlp", lines))
    assert run_cli(monkeypatch, "sweep", "run", str(spec)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid sweep spec: workload_args: ") and needle in err and "\n" not in err
    assert not home.exists() or not any(home.iterdir())
