"""Each bad request gets its documented 4xx and leaves the stores unchanged; no input gives a 500."""

from __future__ import annotations

import json

import pytest
from api_cases import SPEC, snapshot
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.api import MAX_BODY_BYTES, create_app

BAD = [
    ("wrong type", {**SPEC, "n_trials": "many"}, 422, "n_trials"),
    ("out of range", {**SPEC, "n_trials": 10_001}, 422, "n_trials"),
    ("zero epochs", {**SPEC, "max_epochs": 0}, 422, "max_epochs"),
    ("unknown workload", {**SPEC, "workload": "os.system"}, 422, "workload"),
    ("module:attr workload", {**SPEC, "workload": "os:system"}, 422, "registered workloads only"),
    ("file workload", {**SPEC, "workload": "/tmp/train.py:train"}, 422, "registered workloads only"),
    (
        "relative file workload",
        {**SPEC, "workload": "../examples/own_model/train.py:train"},
        422,
        "registered workloads only",
    ),
    ("bad workload_args", {**SPEC, "workload_args": {"hidden": "wide"}}, 422, "workload_args"),
    ("unknown workload_args", {**SPEC, "workload_args": {"depth": 3}}, 422, "workload_args"),
    (
        "d_model not divisible by n_head",
        {**SPEC, "workload": "char_lm", "metric": "val_bpc", "workload_args": {"d_model": 66, "n_head": 4}},
        422,
        "d_model",
    ),
    (
        "missing CIFAR-10 folder",
        {**SPEC, "workload": "cifar10_cnn", "workload_args": {"data_dir": "/nonexistent/cifar"}},
        422,
        "/nonexistent/cifar",
    ),
    ("unknown key", {**SPEC, "trainer": "x"}, 422, "trainer"),
    ("unsafe name", {**SPEC, "name": "../../etc"}, 422, "name"),
    ("path as search space", {**SPEC, "search_space": "/etc/passwd"}, 422, "search_space"),
    ("relative path", {**SPEC, "search_space": "../search_spaces/adam.yaml"}, 422, "search_space"),
    ("beta out of (0,1)", {**SPEC, "search_space": {"params": {"beta2": 1.0}}}, 422, "beta2"),
    ("metric not reported", {**SPEC, "metric": "val_bleu"}, 422, "metric"),
    ("not an object", [1, 2, 3], 422, ""),
    ("7,000-character search space name", {**SPEC, "search_space": "a" * 7000}, 422, "search_space"),
    ("infinite cpu", {**SPEC, "resources_per_trial": {"cpu": float("inf")}}, 422, "resources_per_trial.cpu"),
    ("infinite reduction factor", {**SPEC, "asha": {"reduction_factor": float("inf")}}, 422, "asha.reduction_factor"),
    ("NaN gpu", {**SPEC, "resources_per_trial": {"gpu": float("nan")}}, 422, "resources_per_trial.gpu"),
    ("infinite grad clip", {**SPEC, "workload_args": {"grad_clip_norm": float("inf")}}, 422, "workload_args"),
    ("huge hidden", {**SPEC, "workload_args": {"hidden": 1_000_000_000_000}}, 422, "hidden"),
]


@pytest.mark.parametrize(("case", "body", "status", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_spec(client, service, case, body, status, needle) -> None:
    before = snapshot(service)
    content = json.dumps(body).encode()  # NaN and infinity as Python writes them: NaN, Infinity
    response = client.post("/sweeps", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert needle in detail and "\n" not in detail
    assert snapshot(service) == before


def test_not_found_names_no_store(client, service) -> None:
    client.post("/sweeps", json=SPEC)  # the stores exist
    for response in (client.get("/sweeps/nope"), client.post("/sweeps/nope/cancel"), client.get("/sweeps/nope/best")):
        assert response.status_code == 404
        assert (
            "sqlite" not in response.json()["detail"]
            and str(service.settings.home_dir) not in response.json()["detail"]
        )


def test_malformed_json_and_oversize_body(client, service) -> None:
    before = snapshot(service)
    assert client.post("/sweeps", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    big = {**SPEC, "padding": "x" * (MAX_BODY_BYTES + 1)}
    assert (
        client.post(
            "/sweeps", content=json.dumps(big).encode(), headers={"content-type": "application/json"}
        ).status_code
        == 413
    )

    def chunks():
        yield b'{"name": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    streamed = client.post("/sweeps", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert snapshot(service) == before


def test_token_required_when_configured(service) -> None:
    with TestClient(create_app(service, token="s3cret")) as client:
        before = snapshot(service)
        assert client.post("/sweeps", json=SPEC).status_code == 401
        assert client.get("/sweeps", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/healthz", headers={"Authorization": "s3cret"}).status_code == 401
        assert snapshot(service) == before
        ok = client.post("/sweeps", json=SPEC, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 201


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
spec_like = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=70) | st.sampled_from(["ok-name", "a"]),
        "workload": st.sampled_from(["digits_mlp", "diabetes_mlp"]) | st.text(max_size=10),
        "search_space": st.sampled_from(["adam", "adamw"]) | json_values,
        "n_trials": st.integers(-5, 20_000) | json_values,
        "max_epochs": st.integers(-5, 20_000) | json_values,
        "metric": st.sampled_from(["val_loss", "val_accuracy"]) | st.text(max_size=8),
        "mode": st.sampled_from(["min", "max"]) | json_values,
        "scheduler": st.sampled_from(["asha", "none"]) | json_values,
        "resources_per_trial": json_values,
        "seed": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=spec_like | json_values)
def test_fuzzed_specs_never_500(client, body) -> None:
    response = client.post("/sweeps", json=body)
    assert response.status_code in {201, 409, 422}, response.text
