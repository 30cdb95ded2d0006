"""Schemathesis walks every route of /openapi.json with schema-valid and schema-violating
requests: no request makes the API answer 5xx, and every response matches the published
schema (its status codes, content types, bodies and headers)."""

from __future__ import annotations

import tempfile

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tuner.api import create_app
from tuner.service import SweepService
from tuner.settings import Settings

_home = tempfile.TemporaryDirectory(prefix="adamtune-api-")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SweepService(Settings(home=_home.name))))

#: Left out, as the schema cannot say it: specs pass pydantic's lax coercion ("16" is 16 and
#: 0 is false, which the schema does not list), and rules across fields (asha.grace_period <=
#: max_epochs, a metric the workload reports) refuse some schema-valid specs with 422.
_NOT_EXPRESSIBLE = [negative_data_rejection, positive_data_acceptance]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_response_matches_the_schema(case) -> None:
    case.call_and_validate(excluded_checks=_NOT_EXPRESSIBLE)


def test_the_spec_body_is_the_spec_model() -> None:
    body = schema.raw_schema["paths"]["/sweeps"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["name", "workload", "search_space"]
    assert body["additionalProperties"] is False and "digits_mlp" in body["properties"]["workload"]["enum"]
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == error, (method, path, code)
