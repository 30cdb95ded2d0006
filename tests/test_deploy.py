"""docker-compose.yml is a valid Compose file and wires the production shape (no Docker engine needed)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_is_valid_and_complete() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.validate(compose, schema)
    services = compose["services"]
    assert {"postgres", "mlflow", "ray-head", "tuner"} <= set(services)
    env = services["tuner"]["environment"]
    urls = {env["TUNER_DB_URL"], env["TUNER_OPTUNA_STORAGE"]}
    assert len(urls) == 2 and all(u.startswith("postgresql://") for u in urls)  # never one database for two owners
    assert "TUNER_API_TOKEN" in env and "--host 0.0.0.0" in services["tuner"]["command"]
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    init = (ROOT / "deploy" / "init-db.sql").read_text()
    assert all(f"CREATE DATABASE {db};" in init for db in ("mlflow", "optuna", "tuner"))
