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
        "CACHE_DIR_ENV",
        "ENTRY_POINT_GROUP",
        "Split",
        "TensorWorkload",
        "UnknownWorkloadError",
        "Workload",
        "WorkloadArgsError",
        "available_workloads",
        "cached_split",
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


def test_a_trial_never_imports_torch_dynamo() -> None:
    """torch imports ``torch._dynamo`` (1.5-1.9 s here) on the first call of a ``_disable_dynamo``
    method such as ``Optimizer.add_param_group``: a fresh trial process pays it only if the fused
    optimizers call one (workers/optim/_fused.py)."""
    loaded = _modules_after(
        "import torch, workers\n"
        "from workers.trainable import retrain\n"
        "config = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)\n"
        "rows = retrain(config, workload='digits_mlp', workload_args={}, max_epochs=1, seed=0, metric='val_loss',"
        " threads=1, device='cpu')\n"
        "assert rows[-1]['epoch'] == 1\n"
        "for cls in (workers.FusedAdam, workers.FusedNAdam, workers.FusedAdamax):\n"
        "    p = torch.nn.Parameter(torch.ones(3))\n"
        "    opt = cls([p], lr=0.1)\n"
        "    p.sum().backward(); opt.step(); opt.zero_grad()"
    )
    assert {"torch", "workers.optim._fused", "workers.workloads.digits"} <= loaded  # the probe trained
    assert "torch._dynamo" not in loaded
