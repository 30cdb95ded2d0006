"""The public surface of ``workers`` and its import-time promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import workers
import workers.workloads


def test_workers_all_is_pinned() -> None:
    assert sorted(workers.__all__) == [
        "FusedAdam",
        "FusedAdamax",
        "FusedNAdam",
        "PackedAdam",
        "Trial",
        "UnknownWorkloadError",
        "Workload",
        "available_workloads",
        "get_workload",
        "train",
    ]
    for name in workers.__all__:
        assert getattr(workers, name) is not None


def test_workloads_all_is_pinned() -> None:
    assert sorted(workers.workloads.__all__) == [
        "Batch",
        "ENTRY_POINT_GROUP",
        "Split",
        "TensorWorkload",
        "UnknownWorkloadError",
        "Workload",
        "WorkloadArgsError",
        "available_workloads",
        "check_target",
        "check_training_options",
        "check_workload_args",
        "get_workload",
        "load_workload",
        "resolve_target",
        "workload_target",
    ]


def test_lazy_attributes_are_the_real_objects() -> None:
    from workers.optim import FusedAdam
    from workers.training import train

    assert workers.FusedAdam is FusedAdam
    assert workers.train is train
    assert "train" in dir(workers)


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        workers.no_such_thing  # noqa: B018 - the attribute access is what raises
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")


def _modules_after(code: str) -> dict:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_listing_workloads_imports_neither_torch_nor_workload_modules() -> None:
    loaded = _modules_after("import workers\nassert 'digits_mlp' in workers.available_workloads()")
    assert "torch" not in loaded
    assert "sklearn" not in loaded
    assert "workers.workloads.digits" not in loaded
    assert "workers.training" not in loaded


def test_workers_never_imports_the_control_plane() -> None:
    loaded = _modules_after(
        "import workers, workers.training, workers.packed, workers.trial, workers.trainable\n"
        "for n in workers.available_workloads(): workers.workloads.resolve_target(n)\n"
        "workers.get_workload('digits_mlp').load_data()"
    )
    assert "torch" in loaded  # the probe really loaded the heavy parts
    for forbidden in ("tuner", "ray", "optuna", "mlflow", "sqlalchemy", "fastapi"):
        assert forbidden not in loaded, forbidden


def test_one_module_touches_ray() -> None:
    """As ``workers/__init__.py`` says: only workers.trainable (the functions Ray runs on a worker) imports Ray."""
    root = Path(workers.__file__).parent
    touching = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if re.search(r"^\s*(import ray|from ray)\b", p.read_text(), re.MULTILINE)
    )
    assert touching == ["trainable.py"]
