"""``ADAMTUNE_TEST_DEVICE``: which device the backend-parametrized optimizer tests run on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from adam_cases import DEVICE_ENV, device_unavailable, devices_under_test

HERE = Path(__file__).parent


def test_unset_means_cpu_plus_cuda_where_available(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert devices_under_test() == ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_named_device_only(monkeypatch, device):
    monkeypatch.setenv(DEVICE_ENV, device)
    assert devices_under_test() == [device]


def test_an_unknown_device_is_refused(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "gpu")
    with pytest.raises(ValueError, match=r"must be one of \('cpu', 'cuda'\).*'gpu'"):
        devices_under_test()


def test_cuda_is_unavailable_exactly_without_a_gpu():
    assert device_unavailable("cpu") is None
    why = device_unavailable("cuda")
    assert (why is None) == torch.cuda.is_available()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the cases run")
def test_cuda_cases_skip_cleanly_on_a_cpu_only_machine():
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        str(HERE / "test_fused_adam_training.py"),
    ]
    env = {**os.environ, DEVICE_ENV: "cuda"}
    env.pop("TRITON_INTERPRET", None)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    assert "sees no CUDA device" in out, out[-4000:]
    summary = out.strip().splitlines()[-1]
    assert "skipped" in summary and "failed" not in summary and "error" not in summary, summary
