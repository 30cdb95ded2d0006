"""``tuner.sweep(train, **spec)``: a sweep of a function defined in Python (here, inside a test; in
``examples/notebook.ipynb``, in a notebook), sent to the Ray workers by value, with the CLI's stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tuner
from tuner.errors import SpecError, SweepExistsError, UserInputError
from tuner.spec import parse_spec
from tuner.workload import object_ref

ROOT = Path(__file__).resolve().parents[2]
SPEC = {
    "name": "py-api",
    "search_space": "adam",
    "n_trials": 3,
    "max_epochs": 2,
    "scheduler": "none",
    "reevaluate": {"top_k": 1, "seeds": 1},
}  # re-evaluation sends the function to Ray too


def module_level_train(trial: Any) -> None:
    """Importable by name (``test_python_api:module_level_train``): named, not sent by value."""


def make_train() -> Any:
    """A ``train(trial)`` defined inside a function, as a notebook's is: no worker can import it."""

    def train(trial: Any) -> None:
        import torch

        x = torch.randn(64, 4)
        y = x.sum(dim=1, keepdim=True)
        model = torch.nn.Linear(4, 1)
        optimizer = trial.optimizer(model.parameters())
        for _ in range(trial.max_epochs):
            for _ in range(5):
                loss = ((model(x) - y) ** 2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            trial.report(val_loss=loss.item())

    return train


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUNER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_unknown_keyword_arguments_are_refused_with_the_valid_keys(home: Path) -> None:
    with pytest.raises(
        UserInputError, match=r"unknown keyword argument\(s\) epochs, trials; .*: name, workload_args, "
    ) as info:
        tuner.sweep(make_train(), name="x", search_space="auto", trials=3, epochs=2)
    assert "max_epochs" in str(info.value) and "resume" in str(info.value)
    with pytest.raises(SpecError, match="search_space: required key is missing"):
        tuner.sweep(make_train(), name="x")
    with pytest.raises(
        SpecError, match="workload: .* must be a workers.Workload subclass or a function taking one argument"
    ):
        tuner.sweep(lambda: None, name="x", search_space="auto")
    assert not home.exists()  # nothing stored


def test_a_function_is_named_by_module_when_importable_else_sent_by_value() -> None:
    from tuner.executor import trial_kwargs

    named = parse_spec({**SPEC, "workload": object_ref(module_level_train)})
    assert named.workload == f"{__name__}:module_level_train"

    train = make_train()
    spec = parse_spec({**SPEC, "workload": object_ref(train)})
    assert spec.workload == f"<{__name__}>:make_train.<locals>.train"
    assert trial_kwargs(spec)["workload"] is train  # the function itself travels to the workers

    again = make_train()  # a notebook cell run again replaces the function of that name
    object_ref(again)
    assert trial_kwargs(spec)["workload"] is again

    with pytest.raises(SpecError, match="handed to tuner.sweep.. in another Python process.*hand it over again"):
        parse_spec({**SPEC, "workload": "<__main__>:never_handed_over"})


def test_a_workload_class_that_workers_cannot_import_is_refused() -> None:
    from workers.workloads import TensorWorkload

    class Local(TensorWorkload):
        pass

    with pytest.raises(SpecError, match="Workload class .*Local is defined in .*define it in a module"):
        object_ref(Local)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("py-api") / "home"
    train = make_train()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNER_HOME", str(home))
        yield {"home": home, "train": train, "result": tuner.sweep(train, **SPEC)}


@pytest.mark.slow
def test_sweep_of_a_function_defined_here_returns_config_trials_and_card(swept: dict[str, Any]) -> None:
    import torch

    result = swept["result"]
    assert isinstance(result, tuner.SweepResult) and result.name == "py-api"
    trials = result.trials
    assert list(trials["number"]) == [0, 1, 2] and set(trials["state"]) == {"completed"}
    assert list(trials.columns[:3]) == ["number", "state", "value"]
    assert {"lr", "beta1", "beta2", "eps", "weight_decay", "epochs", "reason", "baseline"} <= set(trials.columns)
    assert list(trials["epochs"]) == [2, 2, 2] and list(trials["baseline"]) == [True, False, False]
    assert trials["value"].notna().all()
    ((reevaluated, runs),) = result.summary.reevaluations.items()
    assert list(runs) == [1] and runs[1] is not None  # the best trial re-trained with seed 1 on a Ray worker

    best = result.best_config
    assert best["source"]["trial"] == reevaluated == trials.loc[trials["value"].idxmin(), "number"]
    assert best["source"]["workload"] == f"<{__name__}>:make_train.<locals>.train"
    exported = subprocess.run(
        [sys.executable, "-m", "tuner", "export", "py-api", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TUNER_HOME": str(swept["home"])},
        timeout=120,
    )
    assert json.loads(exported.stdout) == best  # what `tuner export` gives, from the same stores
    torch.optim.Adam(torch.nn.Linear(2, 2).parameters(), **{k: best[k] for k in ("lr", "betas", "eps", "weight_decay")})

    card = result.card
    assert card["source"]["trial"] == best["source"]["trial"] and card["optimizer"]["kwargs"]["lr"] == best["lr"]
    getattr(torch.optim, card["optimizer"]["name"])(torch.nn.Linear(2, 2).parameters(), **card["optimizer"]["kwargs"])


@pytest.mark.slow
def test_a_stored_sweep_resumes_with_the_function_handed_over_again(
    swept: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNER_HOME", str(swept["home"]))
    with pytest.raises(SweepExistsError, match="pass resume=True to continue it"):
        tuner.sweep(swept["train"], **SPEC)
    result = tuner.sweep(swept["train"], **{**SPEC, "n_trials": 4}, resume=True)
    assert list(result.trials["number"]) == [0, 1, 2, 3] and set(result.trials["state"]) == {"completed"}
    assert result.trials.iloc[:3].equals(swept["result"].trials)  # the first three are kept as they were


@pytest.mark.slow
def test_the_example_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbclient
    import nbformat

    from tuner.service import SweepService
    from tuner.settings import Settings

    home = tmp_path / "home"
    monkeypatch.setenv("TUNER_HOME", str(home))  # the kernel inherits this process's environment
    notebook = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    # "python3": jupyter_client starts the kernel with this interpreter (sys.executable), so the venv's ipykernel.
    nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = {cell.source: cell.outputs for cell in notebook.cells if cell.cell_type == "code"}
    shown = outputs["result.trials"][0]["data"]
    assert "text/html" in shown and "<table" in shown["text/html"]
    assert "'lr':" in outputs["result.best_config"][0]["data"]["text/plain"]
    assert outputs[next(s for s in outputs if s.startswith("model = make_model()"))][0]["data"][
        "text/plain"
    ].startswith("Adam (")

    summary = SweepService(Settings(home=home)).summary("notebook-mlp")
    assert summary.spec["workload"] == "<__main__>:train" and len(summary.trials) == 6
    assert summary.count("completed") >= 3 and summary.count("failed") == 0
