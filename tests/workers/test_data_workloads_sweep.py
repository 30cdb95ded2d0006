"""The bundled data workloads in real sweeps: ``cifar10_cnn`` on the CIFAR-10 miniature
(packed) and a tiny ``char_lm`` (standard), through ``tuner sweep run``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cifar10_fixture import write_cifar10_miniature

pytestmark = pytest.mark.slow

SPEC = """
name: {name}
workload: {workload}
workload_args: {args}
search_space: adamw-warmup-cosine
n_trials: 4
max_epochs: 2
metric: {metric}
scheduler: none
execution: {execution}
pack_size: 4
"""


def _sweep(tmp_path: Path, **fields: str) -> tuple[subprocess.CompletedProcess, Path]:
    home = tmp_path / "home"
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(**fields))
    env = {**os.environ, "TUNER_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "tuner", "sweep", "run", str(spec)], env=env, capture_output=True, text=True, timeout=600
    )
    return done, home


def _runs(home: Path, name: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name(name).experiment_id])


def test_cifar10_miniature_sweep_packs(tmp_path: Path) -> None:
    folder = write_cifar10_miniature(tmp_path / "cifar", per_batch=20)
    done, home = _sweep(
        tmp_path,
        name="cifar",
        workload="cifar10_cnn",
        metric="val_loss",
        execution="auto",
        args=f"{{data_dir: {folder}, batch_size: 25, width: 8}}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = _runs(home, "cifar")
    [parent] = [r for r in runs if r.data.tags["adamtune.kind"] == "sweep"]
    assert (
        parent.data.tags["adamtune.data.train_images"] == "100" and len(parent.data.tags["adamtune.data.sha256"]) == 64
    )
    assert parent.data.params["workload_args.width"] == "8" and parent.data.params["execution"] == "auto"
    trials = [r for r in runs if r.data.tags["adamtune.kind"] == "trial"]
    assert len(trials) == 4 and all(r.data.tags["adamtune.state"] == "completed" for r in trials)
    assert all("val_accuracy" in r.data.metrics for r in trials)


def test_tiny_char_lm_sweep(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("".join(f"def f{i}(x):\n    return x * {i % 7}\n" for i in range(300)))
    done, home = _sweep(
        tmp_path,
        name="lm",
        workload="char_lm",
        metric="val_bpc",
        execution="standard",
        args=f"{{text_path: {text}, n_layer: 1, d_model: 16, n_head: 2, context: 16, steps_per_epoch: 5}}",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    trials = [r for r in _runs(home, "lm") if r.data.tags["adamtune.kind"] == "trial"]
    assert len(trials) == 4 and all(0 < r.data.metrics["val_bpc"] < 8 for r in trials)
