"""The README and docs/*.md against the code they describe (nothing is run: no sweep, no Ray, no store).

* ``docs/spec.md`` lists every field of ``tuner.spec.SweepSpec`` and of its nested models
  (``resources_per_trial.cpu``, ``asha.grace_period``, ``reevaluate.top_k``, ...) as the first cell of a
  table row, and nothing else; the README's annotated spec uses top-level keys that exist.
* Every ``tuner …`` command line shown in a fenced code block of README.md or docs/*.md goes through the
  CLI's own Click parser (``typer.main.get_command(tuner.cli.app)``; the subcommand's ``make_context``),
  so a renamed or removed command, option or argument fails here. The rule for reading a line:

  - a line is one that starts with ``tuner `` (or ``$ tuner ``), optionally after ``VAR=value``
    environment assignments; ``#`` after whitespace starts a comment, which is dropped;
  - synopsis notation: ``[...]`` marks an optional part, and the line is checked with every optional
    part given (the brackets dropped); ``a|b|c`` inside a word offers alternatives, and each is checked;
  - an upper-case word (``NAME``, ``SPEC``, ``N``, ``URL``) is a placeholder: as a positional argument it is
    a plain string; as the value of an option whose type refuses it (``--top K``: an int) it stands for
    ``1`` (a choice-valued option shows its choices instead, ``--format json|yaml|python``);
  - a bare ``...`` means "the arguments shown above": it stands for one placeholder per required positional
    argument of the command it follows (``tuner sweep show ... --server URL`` is ``show NAME --server URL``,
    ``tuner sweep list ... --server URL`` is ``list --server URL``).

  ``--version`` and similar eager options end parsing with exit code 0, which counts as parsed.
* A ``tuner …`` in inline code (```tuner sweep run SPEC```) names an existing command.
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest
import typer
import typer.main

try:  # Typer >= 0.2x carries its own copy of Click; earlier ones use Click itself
    from typer import _click as click
except ImportError:  # pragma: no cover
    import click  # type: ignore[no-redef]

import tuner.cli
from tuner.spec import Asha, Reevaluate, Resources, SweepSpec

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
COMMAND_LINE = re.compile(r"^(?:\$ )?(?:[A-Z_][A-Z0-9_]*=\S* )*(tuner(?: .*)?)$")


def test_the_docs_folder_is_there() -> None:
    assert {p.name for p in DOCS} >= {
        "README.md",
        "spec.md",
        "search.md",
        "workloads.md",
        "reviewing.md",
        "service.md",
        "cluster.md",
        "performance.md",
        "tuning-quality.md",
    }


# --- the spec reference ------------------------------------------------------------------------------------


def model_keys() -> set[str]:
    keys = set(SweepSpec.model_fields)
    for prefix, model in (("resources_per_trial", Resources), ("asha", Asha), ("reevaluate", Reevaluate)):
        keys |= {f"{prefix}.{name}" for name in model.model_fields}
    return keys


def documented_keys(text: str) -> list[str]:
    """The first cell of each table row, when it is one `key` in backticks."""
    return [m.group(1) for m in re.finditer(r"^\| `([a-z_][a-z0-9_.]*)` \|", text, re.MULTILINE)]


def test_docs_spec_lists_every_field_of_the_spec_models_and_nothing_else() -> None:
    documented = documented_keys((ROOT / "docs" / "spec.md").read_text())
    assert len(documented) == len(set(documented)), "a key is listed twice"
    assert sorted(model_keys() - set(documented)) == [], "fields of tuner.spec missing from docs/spec.md"
    assert sorted(set(documented) - model_keys()) == [], "keys in docs/spec.md that tuner.spec does not have"


def test_the_readme_spec_at_a_glance_uses_keys_that_exist() -> None:
    import yaml

    text = (ROOT / "README.md").read_text()
    section = text.split("### Sweep spec", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = yaml.safe_load(block)
    assert sorted(set(spec) - set(SweepSpec.model_fields)) == []
    for key, model in (("resources_per_trial", Resources), ("asha", Asha), ("reevaluate", Reevaluate)):
        assert sorted(set(spec[key]) - set(model.model_fields)) == [], key


# --- command lines -----------------------------------------------------------------------------------------


def fenced_lines(path: Path) -> list[tuple[int, str]]:
    out, fence = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
        elif fence:
            out.append((number, line.strip()))
    return out


def command_lines() -> list[tuple[str, str]]:
    """(where, the command line without comment and environment) for every tuner line in a code block."""
    found = []
    for path in DOCS:
        for number, line in fenced_lines(path):
            m = COMMAND_LINE.match(line)
            if m:
                command = re.split(r"\s+#", m.group(1), maxsplit=1)[0].strip()
                found.append((f"{path.relative_to(ROOT)}:{number}", command))
    return found


def expansions(command: str) -> list[list[str]]:
    """The concrete argument lists a synopsis line stands for (brackets dropped, alternatives expanded)."""
    words = shlex.split(command.replace("[", " ").replace("]", " "))[1:]  # without "tuner"
    choices = [word.split("|") if "|" in word and not word.startswith(("http", "{")) else [word] for word in words]
    return [list(combo) for combo in itertools.product(*choices)]


def resolve(args: list[str]) -> tuple[typer.core.TyperCommand, list[str], list[str]]:
    """Walk the command groups along the leading words: (the command, its path, the rest of the words)."""
    command = typer.main.get_command(tuner.cli.app)
    path = ["tuner"]
    while hasattr(command, "list_commands") and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command, info_name=path[-1]), args[0])
        if sub is None:
            raise click.exceptions.UsageError(f"no command {' '.join([*path, args[0]])!r}")
        command, path, args = sub, [*path, args[0]], args[1:]
    return command, path, args


def parse(args: list[str]) -> None:
    command, path, rest = resolve(args)
    if "..." in rest:
        required = [p for p in command.params if p.param_type_name == "argument" and p.required]
        at = rest.index("...")
        rest = [*rest[:at], *(p.name.upper() for p in required), *rest[at + 1 :]]
    while True:
        try:
            command.make_context(" ".join(path), list(rest), resilient_parsing=False)  # it consumes its list
            return
        except typer.Exit as stop:  # an eager option such as --version
            assert stop.exit_code == 0
            return
        except click.exceptions.BadParameter as e:
            # A placeholder refused as an option's value stands for 1 (then parse again).
            opts = getattr(e.param, "opts", [])
            spots = [i for i in range(1, len(rest)) if rest[i - 1] in opts and PLACEHOLDER.match(rest[i])]
            if not spots:
                raise
            rest = [*rest[: spots[0]], "1", *rest[spots[0] + 1 :]]


COMMANDS = command_lines()


def test_the_docs_show_command_lines() -> None:
    assert len(COMMANDS) >= 12, COMMANDS


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_command_line_in_the_docs_parses(where: str, command: str) -> None:
    for args in expansions(command):
        try:
            parse(args)
        except click.exceptions.ClickException as e:
            pytest.fail(f"{where}: `tuner {' '.join(args)}` does not parse: {e.format_message()}")


def test_every_inline_tuner_command_names_an_existing_command() -> None:
    bad = []
    for path in DOCS:
        for m in re.finditer(r"`tuner ([a-z][a-z|]*(?: [a-z][a-z|]*)?)[^`]*`", path.read_text()):
            for words in itertools.product(*(w.split("|") for w in m.group(1).split())):
                try:
                    resolve(list(words))
                except click.exceptions.UsageError:
                    bad.append(f"{path.name}: tuner {' '.join(words)}")
    assert bad == []
