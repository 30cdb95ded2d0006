"""Finding workloads by name through the ``adamtune.workloads`` entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from workers.workloads import (
    ENTRY_POINT_GROUP,
    UnknownWorkloadError,
    Workload,
    available_workloads,
    get_workload,
    load_workload,
    workload_target,
)
from workers.workloads.diabetes import DiabetesMLP
from workers.workloads.digits import DigitsMLP


def test_bundled_workloads_are_listed_sorted() -> None:
    names = available_workloads()
    assert {"digits_mlp", "diabetes_mlp"} <= set(names)
    assert names == sorted(set(names))


@pytest.mark.parametrize(("name", "cls"), [("digits_mlp", DigitsMLP), ("diabetes_mlp", DiabetesMLP)])
def test_get_workload_returns_a_fresh_instance(name: str, cls: type) -> None:
    workload = get_workload(name)
    assert type(workload) is cls
    assert isinstance(workload, Workload)
    assert workload.name == name
    assert workload.can_pack
    assert "val_loss" in workload.metrics
    assert workload.default_metric in workload.metrics
    assert workload.mode in ("min", "max")
    assert get_workload(name) is not workload


def test_unknown_name_error_names_the_value_and_the_choices() -> None:
    with pytest.raises(UnknownWorkloadError) as info:
        get_workload("digits_cnn")
    error = info.value
    assert isinstance(error, LookupError)
    message = str(error)
    assert "'digits_cnn'" in message
    assert "'digits_mlp'" in message and "'diabetes_mlp'" in message
    assert ENTRY_POINT_GROUP in message
    assert error.name == "digits_cnn"
    assert error.available == available_workloads()


def test_non_string_name_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="str"):
        get_workload(DigitsMLP)  # type: ignore[arg-type]


def test_workload_base_is_abstract() -> None:
    with pytest.raises(TypeError):
        Workload()  # type: ignore[abstract]


def _install_fake_distribution(root: Path, entry_points: dict[str, str]) -> None:
    """A minimal installed distribution registering ``entry_points``, found via sys.path."""
    (root / "third_party_tasks.py").write_text(
        textwrap.dedent(
            """
            from workers.workloads.digits import DigitsMLP

            class WideDigits(DigitsMLP):
                name = "wide_digits"
                def __init__(self):
                    super().__init__(hidden=128)

            class NotAWorkload:
                pass

            def fit(trial):
                trial.report(val_loss=1.0)
            """
        )
    )
    dist = root / "third_party_tasks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: third-party-tasks\nVersion: 1.0\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_third_party_packages_extend_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_distribution(
        tmp_path,
        {
            "wide_digits": "third_party_tasks:WideDigits",
            "broken": "third_party_tasks:NotAWorkload",
            "fit_fn": "third_party_tasks:fit",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "third_party_tasks", raising=False)

    assert {"wide_digits", "broken", "digits_mlp"} <= set(available_workloads())
    wide = get_workload("wide_digits")
    assert wide.name == "wide_digits"
    assert wide.hidden == 128
    with pytest.raises(TypeError, match="'broken' is the class NotAWorkload, not a Workload subclass"):
        get_workload("broken")
    # An entry point may register a function train(trial) as well as a Workload class.
    fit = load_workload("fit_fn", {"anything": 1})
    assert callable(fit) and fit.__name__ == "fit" and workload_target("fit_fn") == "third_party_tasks:fit"
    with pytest.raises(TypeError, match="is a function, not a workers.workloads.Workload"):
        get_workload("fit_fn")
    assert get_workload("third_party_tasks:WideDigits").hidden == 128  # module:attr works as well
