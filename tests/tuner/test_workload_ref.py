"""Where a workload comes from: registered names, module:attr and file.py:attr, checked on the driver."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tuner.errors import SpecError
from tuner.spec import parse_spec
from tuner.workload import DEFAULT_EXCLUDES, WorkloadInfo, check_workload, parse_ref, runtime_env

FUNCTION = """
def train(trial):
    trial.report(val_loss=1.0)
"""

WITH_ARGS = """
from pydantic import BaseModel

class Args(BaseModel):
    model_config = {"extra": "forbid"}
    hidden: int = 32

def train(trial):
    pass

train.Args = Args
"""


def spec(workload: str, tmp_path: Path, **extra) -> dict:
    return {"name": "own", "workload": workload, "search_space": "adam", **extra}


def test_file_ref_resolves_against_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text(FUNCTION)
    parsed = parse_spec(spec("code/train.py:train", tmp_path), base_dir=tmp_path)
    assert parsed.workload == f"{(tmp_path / 'code' / 'train.py').resolve()}:train"
    ref = parse_ref(parsed.workload)
    assert (ref.kind, ref.module, ref.attr, ref.worker_target) == ("file", "train", "train", "train:train")
    assert check_workload(parsed.workload, {}, metric="val_loss").can_pack is False  # a function never packs


def test_registered_name_targets_its_module_for_the_workers() -> None:
    ref = parse_ref("digits_mlp")
    assert ref.kind == "registered" and ref.worker_target == "workers.workloads.digits:DigitsMLP"
    assert check_workload("digits_mlp", {"hidden": 16}, metric="val_loss", execution="packed").can_pack is True


def test_module_ref_imports_from_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "my_tasks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fit.py").write_text(FUNCTION)
    monkeypatch.chdir(tmp_path)
    parsed = parse_spec(spec("my_tasks.fit:train", tmp_path))
    assert check_workload(parsed.workload, {}) == WorkloadInfo(can_pack=False, fingerprint={})
    env = runtime_env(parsed.workload)
    assert env["py_modules"][1] == str(package) and "working_dir" not in env
    monkeypatch.delitem(sys.modules, "my_tasks.fit")
    monkeypatch.delitem(sys.modules, "my_tasks")


def test_runtime_env_ships_workers_and_the_files_folder(tmp_path: Path) -> None:
    import workers

    (tmp_path / "train.py").write_text(FUNCTION)
    env = runtime_env(f"{tmp_path / 'train.py'}:train", ["data/"])
    assert env["py_modules"] == [str(Path(workers.__file__).parent)]
    assert env["working_dir"] == str(tmp_path)
    assert env["excludes"] == [*DEFAULT_EXCLUDES, "data/"] and ".git" in env["excludes"]
    assert env["env_vars"] == {"RAY_CHDIR_TO_TRIAL_DIR": "0"}
    assert "working_dir" not in runtime_env("digits_mlp")


def test_declared_args_are_checked(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(WITH_ARGS)
    workload = f"{tmp_path / 'train.py'}:train"
    check_workload(workload, {"hidden": 8})
    with pytest.raises(SpecError, match=r"^invalid sweep spec: workload_args: hidden: .*integer"):
        check_workload(workload, {"hidden": "wide"})
    with pytest.raises(SpecError, match="workload_args: depth: Extra inputs are not permitted"):
        check_workload(workload, {"depth": 3})
    with pytest.raises(SpecError, match="workload_args: depth: Extra inputs are not permitted"):
        check_workload("digits_mlp", {"depth": 3})  # a bundled workload's Args
    (tmp_path / "wide.py").write_text(
        "from workers.workloads.digits import DigitsMLP\n\n"
        "class Wide(DigitsMLP):\n    def __init__(self, width=128):\n        super().__init__(hidden=width)\n"
    )
    wide = f"{tmp_path / 'wide.py'}:Wide"
    assert check_workload(wide, {"width": 8}).facts["parameters"] == 64 * 8 + 8 + 8 * 10 + 10
    with pytest.raises(SpecError, match="workload_args: .*unexpected keyword argument 'hidden'.*it takes: width"):
        check_workload(wide, {"hidden": 3})  # its own constructor, not the base's Args


BAD_CODE = {
    "missing file": ("nope.py:train", None, "workload: no file"),
    "missing attribute": ("train.py:fit", FUNCTION, "has no attribute 'fit'"),
    "not callable": ("train.py:train", "train = 3\n", "is a int: it must be a workers.Workload subclass or a function"),
    "two arguments": ("train.py:train", "def train(a, b):\n    pass\n", "signature (a, b)"),
    "not a Workload class": ("train.py:train", "class train:\n    pass\n", "the class train, not a Workload subclass"),
    "raises at import": (
        "train.py:train",
        "import nonexistent_pkg_xyz\n",
        "raised ModuleNotFoundError: No module named 'nonexistent_pkg_xyz'",
    ),
    "bad module ref": ("no_such_module_xyz:train", None, "raised ModuleNotFoundError"),
}


@pytest.mark.parametrize("case", sorted(BAD_CODE))
def test_bad_code_is_one_line_spec_error(case: str, tmp_path: Path) -> None:
    workload, source, needle = BAD_CODE[case]
    if source is not None:
        (tmp_path / "train.py").write_text(source)
    with pytest.raises(SpecError) as info:
        parsed = parse_spec(spec(workload, tmp_path), base_dir=tmp_path)
        check_workload(parsed.workload, parsed.workload_args, metric=parsed.metric)
    message = str(info.value)
    assert needle in message and "\n" not in message and "workload" in message


def test_packing_a_function_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(FUNCTION)
    with pytest.raises(SpecError, match="cannot pack .*a function with its own training loop"):
        check_workload(f"{tmp_path / 'train.py'}:train", {}, execution="packed")


@pytest.mark.parametrize("workload", ["my_pkg.tasks:train", "train.py:train", "/etc/passwd.py:x"])
def test_code_refs_are_refused_where_code_is_not_allowed(workload: str, tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("raise SystemExit('imported!')\n")
    with pytest.raises(SpecError, match="workload: .* names code; the service runs registered workloads only"):
        parse_spec(spec(workload, tmp_path), base_dir=tmp_path, allow_paths=False)
