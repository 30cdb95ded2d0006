"""The driver's Ray job carries the sweep's code: kept while the code is the same, started
anew for other code, and a folder too large to ship is a clear spec error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tuner.errors import SpecError
from tuner.executor import start_local_ray
from tuner.workload import runtime_env

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_module():
    import ray

    yield ray
    ray.shutdown()


def _imported_from(ray, module: str) -> str:
    @ray.remote
    def where() -> str:
        import importlib

        return importlib.import_module(module).__file__

    return ray.get(where.remote())


def _sys_path() -> list[str]:
    import sys

    return sys.path


def test_same_code_keeps_the_job_other_code_starts_a_new_one(ray_module, tmp_path: Path) -> None:
    ray = ray_module
    global _sys_path
    _sys_path = ray.remote(_sys_path)
    (tmp_path / "user_mod_xyz.py").write_text("def train(trial):\n    pass\n")
    start_local_ray(runtime_env("digits_mlp"))
    node = ray.get_runtime_context().get_node_id()
    assert any("py_modules_files" in entry for entry in ray.get(_sys_path.remote()))  # workers was shipped
    start_local_ray(runtime_env("diabetes_mlp"))  # the same code: workers only
    assert ray.get_runtime_context().get_node_id() == node
    start_local_ray(runtime_env(f"{tmp_path / 'user_mod_xyz.py'}:train"))
    assert ray.get_runtime_context().get_node_id() != node  # a new local Ray
    imported = Path(_imported_from(ray, "user_mod_xyz"))
    assert imported.parent != tmp_path and "runtime_resources" in imported.parts


def test_a_folder_over_rays_upload_limit_is_a_spec_error(ray_module, tmp_path: Path, monkeypatch) -> None:
    from ray._private.runtime_env import packaging

    # 1 MiB instead of Ray's 512 MiB, so that a small folder is over it: the limit is no public setting
    # (ray-project/ray#24421 made it follow an internal gRPC flag only).
    monkeypatch.setattr(packaging, "GCS_STORAGE_MAX_SIZE", 1024 * 1024)
    (tmp_path / "train.py").write_text("def train(trial):\n    pass\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "shard.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    with pytest.raises(
        SpecError,
        match=r"exceeds the maximum size .* list its data, checkpoint or output folders under the spec's `excludes`",
    ):
        start_local_ray(runtime_env(f"{tmp_path / 'train.py'}:train"))
    start_local_ray(runtime_env(f"{tmp_path / 'train.py'}:train", ["data/"]))
    assert ray_module.is_initialized()
