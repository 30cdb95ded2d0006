"""The PostgreSQL rule of ``tests/conftest.py``: unreachable is a skip, but a failure under CI."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from serving import free_port


def shared_conftest() -> ModuleType:
    """``tests/conftest.py`` under a name of its own (every test folder's conftest is ``conftest``)."""
    spec = importlib.util.spec_from_file_location("adamtune_tests_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("ci", ["true", "True", "1"])
def test_unreachable_postgresql_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    port = free_port()  # nothing listens there
    with pytest.raises(
        pytest.fail.Exception, match=rf"PostgreSQL not reachable on 127\.0\.0\.1:{port} .*CI=true requires it"
    ):
        shared_conftest().connect_postgres_admin(port=port)


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_unreachable_postgresql_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    port = free_port()
    with pytest.raises(
        pytest.skip.Exception, match=rf"PostgreSQL not reachable on 127\.0\.0\.1:{port} .*with CI=true this fails"
    ):
        shared_conftest().connect_postgres_admin(port=port)
