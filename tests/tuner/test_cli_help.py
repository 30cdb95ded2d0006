"""``--help`` shows flags as flags, commands in a newcomer's order and untruncated, usage lines without
placeholder braces; ``tuner --version`` names the installed version; ``tuner workloads`` says what each is."""

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


@pytest.mark.parametrize(
    ("command", "flags"), [(("sweep", "run"), ("--resume", "--help")), (("sweep", "show"), ("--json", "--help"))]
)
def test_flags_show_no_value_placeholder(command: tuple[str, ...], flags: tuple[str, ...]) -> None:
    done = tuner(*command, "--help")
    assert done.returncode == 0, done.stderr
    for flag in flags:
        assert re.search(rf"{flag}\s", done.stdout) and not re.search(rf"{flag}[\s│]+<", done.stdout), done.stdout
    assert re.search(r"--server\s+<str>", tuner("sweep", "show", "--help").stdout)  # options with a value keep theirs


def run_in_process(*args: str) -> str:
    from typer.testing import CliRunner

    from tuner.cli import app

    done = CliRunner().invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return done.output


def test_top_level_help_lists_commands_in_a_newcomers_order_untruncated_with_an_example() -> None:
    text = run_in_process("--help")
    commands = text.split("Commands:\n")[1].split("\n\n")[0]
    names = [line.split()[0] for line in commands.splitlines() if line.startswith("  ") and not line.startswith("    ")]
    assert names[0] == "sweep" and names[-1] == "serve", names
    assert names.index("export") < names.index("report") < names.index("ui") < names.index("dashboard")
    assert not any(line.endswith("...") for line in commands.splitlines())  # whole first paragraphs
    assert "Ctrl-C or SIGTERM stops it." in commands
    assert "tuner sweep run examples/digits.yaml" in text


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (("sweep", "run"), "tuner sweep run [OPTIONS] SPEC"),
        (("sweep", "show"), "tuner sweep show [OPTIONS] NAME"),
        (("export",), "tuner export [OPTIONS] NAME"),
        (("dashboard",), "tuner dashboard [OPTIONS] NAME"),
    ],
)
def test_usage_lines_name_arguments_without_placeholder_braces(command: tuple[str, ...], usage: str) -> None:
    text = run_in_process(*command, "--help")
    assert text.splitlines()[0] == f"Usage: {usage}", text
    assert "{" not in text


def test_workloads_have_a_line_each() -> None:
    lines = dict(line.split(None, 1) for line in run_in_process("workloads").splitlines())
    assert {"digits_mlp", "char_lm"} <= lines.keys()
    assert lines["digits_mlp"].strip() == "MLP 64 -> hidden -> 10 (ReLU) trained with cross-entropy on load_digits."
