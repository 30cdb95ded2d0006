"""Lightning and transformers are optional extras: ``workers`` and ``workers.integrations`` import
neither; each integration submodule imports only its own framework, and never ``tuner``."""

from __future__ import annotations

import json
import subprocess
import sys

import workers.integrations


def _modules_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_integrations_all_is_pinned() -> None:
    assert workers.integrations.__all__ == ["hf", "lightning"]
    assert set(workers.integrations.__all__) <= set(dir(workers.integrations))


def test_importing_workers_and_integrations_imports_no_framework() -> None:
    loaded = _modules_after("import workers, workers.integrations, workers.trial, workers.trainable")
    for framework in ("lightning", "pytorch_lightning", "transformers", "accelerate", "torch"):
        assert framework not in loaded, framework


def test_each_integration_imports_its_own_framework_and_never_the_control_plane() -> None:
    lightning = _modules_after("from workers.integrations import lightning\nassert lightning.TrialCallback")
    assert "lightning.pytorch" in lightning and "workers.integrations.hf" not in lightning
    hf = _modules_after("import workers.integrations as i\nassert i.hf.TrialCallback")
    assert (
        "transformers.trainer_callback" in hf and "lightning" not in hf and "workers.integrations.lightning" not in hf
    )
    for forbidden in ("tuner", "optuna", "mlflow", "sqlalchemy", "fastapi"):
        assert forbidden not in lightning | hf, forbidden
