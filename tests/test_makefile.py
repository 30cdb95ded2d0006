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
    shown = subprocess.run(
        ["make", "-n", "install", f"VENV={venv}", *assignments], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    pips = [shlex.split(line) for line in shown.splitlines() if line.startswith(f"{venv}/bin/pip install")]
    (args,) = [args for args in pips if any(a.startswith("torch") for a in args[2:])]
    return args


def test_torch_with_an_index_url_reaches_pip_as_separate_arguments(tmp_path: Path) -> None:
    args = torch_install(tmp_path / "venv", "TORCH=torch==2.13.0 --index-url https://example.invalid/whl")
    assert args[-3:] == ["torch==2.13.0", "--index-url", "https://example.invalid/whl"]


def test_the_default_torch_install_is_one_requirement(tmp_path: Path) -> None:
    assert torch_install(tmp_path / "venv") == [f"{tmp_path / 'venv'}/bin/pip", "install", "--quiet", "torch==2.13.0"]
    assert torch_install(tmp_path / "venv", "TORCH=torch>=2.6")[-1] == "torch>=2.6"  # quoted: no shell redirect


def run_browser_target(
    tmp_path: Path, *, apt_exit: int, chromium: bool
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``make browser`` with only stubs on PATH: an ``apt-get`` that logs its arguments and exits
    ``apt_exit``, and (with ``chromium``) a ``chromium``; returns make's result and apt-get's calls."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt-get.log"
    bin_dir.mkdir()
    stubs = {"apt-get": f'echo "$*" >> "{log}"\nexit {apt_exit}\n'} | ({"chromium": "exit 0\n"} if chromium else {})
    for name, body in stubs.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    result = subprocess.run(
        [shutil.which("make"), "browser"], cwd=ROOT, capture_output=True, text=True, env={"PATH": str(bin_dir)}
    )
    return result, log.read_text().splitlines() if log.exists() else []


def test_make_test_installs_chromium_first_and_make_run_does_not() -> None:
    shown = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "apt-get install -y --no-install-recommends chromium" in shown
    run = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "chromium" not in run


def test_browser_installs_chromium_when_missing(tmp_path: Path) -> None:
    result, calls = run_browser_target(tmp_path, apt_exit=0, chromium=False)
    assert result.returncode == 0, result.stderr
    assert calls == ["install -y --no-install-recommends chromium"]  # no `apt-get update` when the install works


def test_browser_does_nothing_when_chromium_is_there(tmp_path: Path) -> None:
    result, calls = run_browser_target(tmp_path, apt_exit=0, chromium=True)
    assert (result.returncode, calls) == (0, [])


def test_browser_retries_after_apt_get_update_and_tolerates_failure(tmp_path: Path) -> None:
    result, calls = run_browser_target(tmp_path, apt_exit=100, chromium=False)
    assert result.returncode == 0, result.stderr  # the tests still run; tests/browser skips
    assert calls == ["install -y --no-install-recommends chromium", "update"]
    assert "tests/browser will be skipped" in result.stderr
