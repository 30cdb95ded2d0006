"""bench/gpu_check.sh refuses to run, with exit 2 and a reason, where it cannot check a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


def fake_nvidia_smi(folder: Path, body: str) -> dict[str, str]:
    """An environment whose PATH finds `folder/nvidia-smi` (a bash script) first."""
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/usr/bin/env bash\n{body}\n")
    tool.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable}


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_script_parses() -> None:
    assert shutil.which("bash")
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert "set -euo pipefail" in SCRIPT.read_text()


def test_refuses_when_nvidia_smi_fails(tmp_path: Path) -> None:
    result = run(fake_nvidia_smi(tmp_path, "echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no NVIDIA GPU here: nvidia-smi fails (NVIDIA-SMI has failed: no driver)" in result.stderr
    assert "nothing was run" in result.stderr and result.stdout == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a GPU here: the check would run")
def test_refuses_when_torch_sees_no_gpu(tmp_path: Path) -> None:
    result = run(fake_nvidia_smi(tmp_path, "echo 'Fake GPU, 1 MiB, 0.0'"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"torch {torch.__version__}" in result.stderr and "sees no CUDA device" in result.stderr
    assert result.stdout == ""
