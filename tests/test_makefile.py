"""``make install``'s pip lines, as ``make -n`` prints them (nothing runs)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def torch_install(venv: Path, *assignments: str) -> list[str]:
    """The arguments of the pip command that installs torch."""
    shown = subprocess.run(["make", "-n", "install", f"VENV={venv}", *assignments], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    pips = [shlex.split(line) for line in shown.splitlines() if line.startswith(f"{venv}/bin/pip install")]
    (args,) = [args for args in pips if any(a.startswith("torch") for a in args[2:])]
    return args


def test_torch_with_an_index_url_reaches_pip_as_separate_arguments(tmp_path: Path) -> None:
    args = torch_install(tmp_path / "venv", "TORCH=torch==2.13.0 --index-url https://example.invalid/whl")
    assert args[-3:] == ["torch==2.13.0", "--index-url", "https://example.invalid/whl"]


def test_the_default_torch_install_is_one_requirement(tmp_path: Path) -> None:
    assert torch_install(tmp_path / "venv") == [f"{tmp_path / 'venv'}/bin/pip", "install", "--quiet", "torch==2.13.0"]
    assert torch_install(tmp_path / "venv", "TORCH=torch>=2.6")[-1] == "torch>=2.6"  # quoted: no shell redirect
