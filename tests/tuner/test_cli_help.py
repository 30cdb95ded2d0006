"""``--help`` shows flags as flags, and ``tuner --version`` names the installed version."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tuner(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuner", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_version() -> None:
    done = tuner("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"adamtune {version('adamtune')}\n"


@pytest.mark.parametrize(("command", "flags"), [(("sweep", "run"), ("--resume", "--help")), (("sweep", "show"), ("--json", "--help"))])
def test_flags_show_no_value_placeholder(command: tuple[str, ...], flags: tuple[str, ...]) -> None:
    done = tuner(*command, "--help")
    assert done.returncode == 0, done.stderr
    for flag in flags:
        assert re.search(rf"{flag}\s", done.stdout) and not re.search(rf"{flag}[\s│]+<", done.stdout), done.stdout
    assert re.search(r"--server\s+<str>", tuner("sweep", "show", "--help").stdout)  # options with a value keep theirs
