"""Schemathesis walks every route of /openapi.json: no generated request makes the API answer 5xx."""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings

from tuner.api import create_app
from tuner.settings import Settings
from tuner.sweeps import SweepService

_home = tempfile.TemporaryDirectory(prefix="adamtune-api-")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SweepService(Settings(home=_home.name))))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:
    response = case.call()
    assert response.status_code < 500, response.text
