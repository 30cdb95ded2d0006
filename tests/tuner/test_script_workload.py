"""The driver's side of script mode: a script is named, stored, checked without being run and
shipped; script_args belong to scripts; import errors of a file workload name file and line,
and the file is imported from its own folder, as the workers run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.errors import SpecError
from tuner.executor import trial_kwargs
from tuner.spec import parse_spec
from tuner.workload import check_workload, parse_ref, runtime_env


def spec(tmp_path: Path, **fields: object):
    return parse_spec({"name": "s", "search_space": "auto", **fields}, base_dir=tmp_path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text("import sys\nopen('ran', 'w').write('the driver ran me')\nsys.exit(3)\n")
    return tmp_path


def test_a_script_is_stored_absolute_and_shipped_with_its_folder(folder: Path) -> None:
    s = spec(folder, workload="train.py", script_args=["--epochs", "3"])
    assert s.workload == str((folder / "train.py").resolve()) and s.script_args == ["--epochs", "3"]
    ref = parse_ref(s.workload)
    assert (ref.kind, ref.worker_target) == ("script", "train.py")
    assert runtime_env(s.workload)["working_dir"] == str(folder.resolve())
    kwargs = trial_kwargs(s)
    assert kwargs["workload"] == "train.py" and kwargs["script_args"] == ["--epochs", "3"]


def test_the_driver_checks_a_script_without_running_it(folder: Path) -> None:
    s = spec(folder, workload="train.py")
    info = check_workload(s.workload, s.workload_args, metric=s.metric, execution="auto")
    assert not info.can_pack and info.facts == {}
    assert not (folder / "ran").exists()
    with pytest.raises(SpecError, match=r"execution: the script train.py cannot pack"):
        check_workload(s.workload, {}, execution="packed")
    (folder / "bad.py").write_text("x = 1\ndef f(:\n")
    with pytest.raises(SpecError, match=r"bad.py does not parse: SyntaxError: .* \(at bad.py:2\)"):
        check_workload(spec(folder, workload="bad.py").workload, {})


def test_script_args_are_for_scripts_and_a_missing_script_is_named(folder: Path) -> None:
    (folder / "fit.py").write_text("def train(trial):\n    pass\n")
    with pytest.raises(SpecError, match="script_args: only a script takes a command line"):
        spec(folder, workload="fit.py:train", script_args=["--x"])
    with pytest.raises(SpecError, match="no file .*missing.py"):
        spec(folder, workload="missing.py")
    assert spec(folder, workload="fit.py:train").script_args == []


def test_a_file_workload_is_imported_from_its_folder_and_its_errors_name_file_and_line(
    tmp_path: Path, monkeypatch
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "vocab.txt").write_text("a b c\n")
    (code / "fit.py").write_text("VOCAB = open('vocab.txt').read().split()\n\ndef train(trial):\n    pass\n")
    monkeypatch.chdir(tmp_path)  # the driver runs elsewhere: the file still reads its folder's vocab.txt
    s = spec(tmp_path, workload="code/fit.py:train")
    check_workload(s.workload, {})
    (code / "vocab.txt").unlink()
    with pytest.raises(SpecError) as raised:
        check_workload(s.workload, {})
    assert "raised FileNotFoundError" in str(raised.value) and str(raised.value).endswith("(at fit.py:1 in <module>)")
