"""The compose files are valid Compose files and wire the production shape (no Docker engine needed).

docker-compose.yml must run on a machine without GPUs; docker-compose.gpu.yml, an override
added with a second ``-f``, gives ray-worker a CUDA image and NVIDIA device reservations.
Where the ``docker compose`` plugin is installed, ``docker compose config`` checks both too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE, GPU = ROOT / "docker-compose.yml", ROOT / "docker-compose.gpu.yml"
NVIDIA_ALL_GPUS = {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file, for mappings (what docker-compose.gpu.yml uses);
    scalars and lists of the override replace the base's."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: merge(base[k], v) if k in base else v for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    return override


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())


def validate(document: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(schema).validate(document)  # the spec says draft-07


def test_compose_file_is_valid_and_complete(schema) -> None:
    compose = load(BASE)
    validate(compose, schema)
    services = compose["services"]
    assert {"postgres", "mlflow", "ray-head", "ray-worker", "tuner"} <= set(services)
    env = services["tuner"]["environment"]
    urls = {env["TUNER_DB_URL"], env["TUNER_OPTUNA_STORAGE"]}
    assert len(urls) == 2 and all(u.startswith("postgresql://") for u in urls)  # never one database for two owners
    assert "TUNER_API_TOKEN" in env and "--host 0.0.0.0" in services["tuner"]["command"]
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    init = (ROOT / "deploy" / "init-db.sql").read_text()
    assert all(f"CREATE DATABASE {db};" in init for db in ("mlflow", "optuna", "tuner"))


def test_base_file_runs_without_gpus() -> None:
    """No service of docker-compose.yml reserves a device: `up` works on a CPU-only host."""
    services = load(BASE)["services"]
    assert all(not gpu_devices(s) for s in services.values())
    assert services["ray-worker"]["deploy"]["replicas"] == 0  # added with --scale ray-worker=N
    assert "--scale ray-worker=N" in BASE.read_text()
    assert "docker-compose.gpu.yml" in BASE.read_text()


def test_gpu_override_is_valid_and_gives_ray_worker_the_gpus(schema) -> None:
    override = load(GPU)
    validate(override, schema)
    assert set(override["services"]) == {"ray-worker"}  # nothing else needs a GPU
    merged = merge(load(BASE), override)
    validate(merged, schema)
    worker = merged["services"]["ray-worker"]
    assert gpu_devices(worker) == [NVIDIA_ALL_GPUS]
    assert worker["command"].startswith("ray start --address=ray-head:6379")  # kept from the base
    assert worker["build"]["args"]["TORCH_INDEX_URL"].startswith("https://download.pytorch.org/whl/cu")
    assert worker["image"] != merged["services"]["tuner"]["image"]  # the CUDA image is its own tag
    others = {n: s for n, s in merged["services"].items() if n != "ray-worker"}
    assert all(not gpu_devices(s) for s in others.values())


def test_dockerfile_takes_the_torch_wheel_and_installs_triton() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ARG TORCH="torch==' in text
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text  # CPU by default
    assert '--index-url "$TORCH_INDEX_URL" $TORCH' in text
    assert 'pip install --no-cache-dir ".[triton]"' in text
    assert "gcc" in text  # Triton builds its launcher with the system C compiler


def _docker_compose() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed: `docker compose config` not checked")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(
            "the docker compose plugin is not installed (`docker compose version` fails): "
            "`docker compose config` not checked"
        )
    return [docker, "compose"]


@pytest.mark.parametrize("files", [[BASE], [BASE, GPU]], ids=["cpu", "cpu+gpu"])
def test_docker_compose_config_accepts_the_files(files) -> None:
    """`docker compose config` (no daemon needed) resolves the files as Docker will."""
    command = [*_docker_compose(), *(a for f in files for a in ("-f", str(f))), "config", "--format", "json"]
    env = {**os.environ, "TUNER_API_TOKEN": "test-token"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    worker = json.loads(result.stdout)["services"]["ray-worker"]
    assert bool(gpu_devices(worker)) == (GPU in files)
