"""The device bundle (bench/device_bundle.sh) and the sweeps bench/gpu_check.sh runs from it.

The GPU machine's image has torch and much else (bench/gpu_image_packages.txt) but no Ray, Optuna,
MLflow or SQLAlchemy, and no package index. The slow tests build the bundle for this interpreter,
unpack it into a clean folder and run a sweep from it in an interpreter that has only the image's
packages (a bare venv holding links to this venv's copies of them), as on that machine with
``PYTHONPATH`` at the bundle. The fast ones check which distributions go in, how a wheel's tag is
read for the image's CPython 3.12, and that the GPU sweeps' specs parse.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import subprocess
import sys
import sysconfig
from collections import defaultdict
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.utils import canonicalize_name

from tuner.spec import parse_spec
from tuner.workload import check_workload

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "device_bundle.sh"
GPU_CHECK = ROOT / "bench" / "gpu_check.sh"
MIB = 1 << 20
BUNDLE_MAX_MIB = 60  # the slow tests build at xz -0 (see the bundle fixture)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


device_bundle = _load("device_bundle")
gpu_sweeps = _load("gpu_sweeps")


# --- fast: what goes in ----------------------------------------------------------------------------------


def test_wheel_tags_read_for_the_images_python() -> None:
    cp312 = device_bundle.Target(3, 12)
    assert cp312.accepts("py3-none-any")
    assert cp312.accepts("cp311-abi3-manylinux_2_34_x86_64")  # cryptography: abi3 from 3.11 on
    assert cp312.accepts("cp312-cp312-manylinux_2_17_x86_64")
    assert not cp312.accepts("cp311-cp311-manylinux_2_17_x86_64")
    assert not cp312.accepts("cp313-abi3-manylinux_2_17_x86_64")
    assert device_bundle.Target.parse("native").native


def test_the_bundle_holds_the_control_plane_and_nothing_the_image_has() -> None:
    image = device_bundle.image_packages()
    assert {"torch", "triton", "numpy", "pandas", "pyyaml"} <= image
    dists, left = device_bundle.closure(device_bundle.Target(3, 12), image)
    names = {canonicalize_name(d.metadata["Name"]) for d in dists}
    assert {"ray", "optuna", "mlflow", "sqlalchemy", "alembic", "pydantic", "pydantic-core", "fastapi"} <= names
    assert not names & image
    assert not any(n.startswith(("torch", "triton", "nvidia-")) for n in names)
    assert "psycopg" not in names and "psycopg-binary" not in names  # left out: the stores are SQLite
    assert {"torch", "numpy"} <= set(left)
    # built for this venv's Python: the compiled ones come from their cp312 wheels, abi3 and pure ones from here
    by_name = {canonicalize_name(d.metadata["Name"]): d for d in dists}
    if sys.version_info[:2] != (3, 12):
        assert not device_bundle.runs_on(by_name["ray"], device_bundle.Target(3, 12))
        assert not device_bundle.runs_on(by_name["pydantic-core"], device_bundle.Target(3, 12))
    assert device_bundle.runs_on(by_name["optuna"], device_bundle.Target(3, 12))


def test_pruned_paths_are_left_out() -> None:
    assert device_bundle.skipped("ray/jars/ray_dist.jar")
    assert device_bundle.skipped("ray/dashboard/client/build/index.html")
    assert device_bundle.skipped("mlflow/server/js/build/static/main.js")
    assert device_bundle.skipped("ray/rllib/__init__.py")
    assert device_bundle.skipped("optuna/__pycache__/study.cpython-312.pyc")
    assert device_bundle.skipped("../../../bin/ray")
    assert not device_bundle.skipped("ray/train/__init__.py")  # Ray Tune imports ray.train and ray.data
    assert not device_bundle.skipped("ray/data/__init__.py")
    assert not device_bundle.skipped("mlflow/server/handlers.py")


# --- fast: the GPU check's sweeps -------------------------------------------------------------------------


def test_gpu_check_dry_run_prints_four_sweeps_that_parse(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "ADAMTUNE_BUNDLE": str(tmp_path / "none.tar.xz")}
    done = subprocess.run(
        ["bash", str(GPU_CHECK), "--dry-run", "--only", "gpu-sweeps"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    head, _, documents = done.stdout.partition("\n---\n")
    assert "bundle: none at" in head
    specs = [parse_spec(doc) for doc in yaml.safe_load_all("---\n" + documents) if doc]
    ways = {(s.execution, s.resources_per_trial.gpu, s.pack_size if s.execution == "packed" else None) for s in specs}
    assert ways == {("standard", 1.0, None), ("standard", 0.25, None), ("packed", 1.0, 8), ("packed", 1.0, 16)}
    for spec in specs:
        assert spec.workload == "char_lm" and spec.scheduler == "none" and spec.n_trials >= 16
        assert spec.workload_args["d_model"] == 384 and spec.workload_args["bf16"] is True
        check_workload(spec.workload, spec.workload_args, metric=spec.metric, execution=spec.execution)


def test_gpu_sweep_figures_are_read_from_the_cli_lines_and_nvidia_smi(tmp_path: Path) -> None:
    lines = [
        (100.0, "starting Ray…"),
        (112.0, "sweep gpu-char-lm-gpu-1: 16 trials, optimizing val_bpc (min)  [0:12]"),
        (130.0, "[16/16] trial 3: completed after 2 epochs, val_bpc=2.9  [0:30]"),
        (132.0, "16/16 trials finished; best val_bpc 2.8 (trial 3)  [0:32]"),
    ]
    assert gpu_sweeps.trial_phase(lines) == (112.0, 20.0)
    assert gpu_sweeps.trial_phase(lines[:1]) is None
    smi = tmp_path / "smi.csv"
    t0 = datetime.datetime(2026, 11, 29, 12, 0, 0)
    rows = [(0, 0, 500), (10, 80, 9000), (15, 100, 12000), (30, 0, 600)]  # (second, util %, MiB)
    smi.write_text(
        "".join(
            f"{(t0 + datetime.timedelta(seconds=s)).strftime('%Y/%m/%d %H:%M:%S.%f')[:-3]}, {u}, {m}\n"
            for s, u, m in rows
        )
    )
    start = t0.timestamp()
    assert gpu_sweeps.samples(smi, start + 5, start + 20) == (90.0, 12000.0, 4)  # mean of the window, peak of all
    assert gpu_sweeps.samples(tmp_path / "missing.csv", 0, None) == (None, None, 0)


def test_gpu_check_refuses_an_unknown_step() -> None:
    done = subprocess.run(["bash", str(GPU_CHECK), "--only", "nope"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "no step nope" in done.stderr


# --- slow: build it, unpack it, run a sweep from it --------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(the tar.xz, the folder it was unpacked into, the builder's output), built for this interpreter."""
    folder = tmp_path_factory.mktemp("bundle")
    out = folder / "adamtune-site.tar.xz"
    done = subprocess.run(
        # xz -0, not the script's -9: 7 s instead of about 2 minutes here, and larger (56.8 MiB
        # for cp311 against 38.5 MiB at -9 for cp312), so the limit is the 60 MiB the device's 64
        # MiB carry leaves beside the tree: content that grows shows at -0 as at -9
        ["bash", str(SCRIPT), "--python", "native", "--out", str(out), "--work", str(folder), "--level", "0"]
        + ["--max-mib", str(BUNDLE_MAX_MIB)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    site = folder / "site"
    site.mkdir()
    subprocess.run(["tar", "xJf", str(out), "-C", str(site)], check=True, timeout=300)
    return out, site, done.stdout


def image_interpreter(folder: Path) -> Path:
    """A bare venv whose site-packages links this venv's copies of the GPU image's distributions.

    A top-level entry that only image distributions own is linked whole; one shared with others
    (a namespace such as ``google/``) gets a real folder with links to the image distributions'
    files alone, so nothing the bundle must bring leaks in.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip())
    here = Path(sysconfig.get_paths()["purelib"]).resolve()
    image = device_bundle.image_packages()
    dists = [d for d in metadata.distributions() if Path(d.locate_file("")).resolve() == here and d.files]
    owners: dict[str, set[str]] = defaultdict(set)
    for dist in dists:
        for file in dist.files:
            parts = PurePosixPath(file).parts
            if parts and parts[0] != "..":
                owners[parts[0]].add(canonicalize_name(dist.metadata["Name"]))
    for dist in dists:
        if canonicalize_name(dist.metadata["Name"]) not in image:
            continue
        for file in dist.files:
            parts = PurePosixPath(file).parts
            if not parts or parts[0] == ".." or "__pycache__" in parts:
                continue
            rel = parts[0] if owners[parts[0]] <= image else str(PurePosixPath(file))
            link, target = site / rel, here / rel
            if link.is_symlink() or not target.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
    return python


def image_env(site: Path, home: Path) -> dict[str, str]:
    """This environment less Python's, the tuner's and Ray's settings, the venv off PATH, the bundle on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "TUNER_", "RAY_"))}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env | {"PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1", "TUNER_HOME": str(home)}


@pytest.mark.slow
def test_the_bundle_fits_and_leaves_out_what_it_should(bundle: tuple[Path, Path, str]) -> None:
    out, site, printed = bundle
    size = out.stat().st_size
    assert size <= BUNDLE_MAX_MIB * MIB, f"{size / MIB:.1f} MiB"
    assert f"bundle: {out} {size / MIB:.1f} MiB" in printed and "ok)" in printed
    for gone in ("ray/jars", "ray/dashboard/client", "ray/rllib", "ray/serve", "mlflow/server/js", "torch", "psycopg"):
        assert not (site / gone).exists(), gone
    assert not list(site.glob("*/__pycache__"))
    assert os.access(site / "ray" / "core" / "src" / "ray" / "raylet" / "raylet", os.X_OK)
    entry_points = (site / "adamtune-0.1.0.dist-info" / "entry_points.txt").read_text()
    assert "char_lm = workers.workloads.char_lm:CharLM" in entry_points
    assert (site / "search_spaces" / "adamw-warmup-cosine.yaml").is_file()
    assert (site / "adamtune-examples" / "char-lm.yaml").is_file()


@pytest.mark.slow
def test_a_sweep_runs_from_the_bundle_with_only_the_image_packages(
    bundle: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, site, _ = bundle
    python = image_interpreter(tmp_path / "image")
    env = image_env(site, tmp_path / "home")

    where = (
        "import importlib.util as u, ray, optuna, mlflow, sqlalchemy, pydantic, tuner, workers, torch\n"
        "for m in (ray, optuna, mlflow, sqlalchemy, pydantic, tuner, workers, torch): print(m.__name__, m.__file__)\n"
        "print('psycopg', u.find_spec('psycopg'))"
    )
    done = subprocess.run([python, "-c", where], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    for name in ("ray", "optuna", "mlflow", "sqlalchemy", "pydantic", "tuner", "workers"):
        assert found[name].startswith(str(site)), (name, found[name])
    assert found["torch"].startswith(str(tmp_path / "image")), found["torch"]  # the image's
    assert found["psycopg"] == "None"  # nothing of this venv beyond the image's packages

    check = subprocess.run(
        [python, str(ROOT / "bench" / "device_bundle.py"), "check", str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    spec = tmp_path / "smoke.yaml"
    spec.write_text(
        "name: bundle-smoke\nworkload: digits_mlp\nsearch_space: auto\nn_trials: 2\nmax_epochs: 1\n"
        "scheduler: none\nlr_range_test: false\nresources_per_trial: {cpu: 1, gpu: 0}\n"
    )
    sweep = subprocess.run(
        [python, "-m", "tuner", "sweep", "run", str(spec)],
        cwd=tmp_path,
        env=env | {"RAY_ADDRESS": "local"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    printed = sweep.stdout + sweep.stderr
    assert sweep.returncode == 0, printed
    assert "sweep bundle-smoke: 2 trials (2 completed, 0 early-stopped, 0 failed)" in printed, printed
    assert "best config: trial" in printed, printed
