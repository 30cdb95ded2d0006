"""The REST API's happy paths and state rules, in process."""

from __future__ import annotations

from api_cases import SPEC, store_trials


def test_submit_get_list_cancel(client) -> None:
    created = client.post("/sweeps", json=SPEC)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["state"] == "queued" and body["id"] and body["n_trials"] == 4
    assert client.get(f"/sweeps/{body['id']}").json()["name"] == "digits-api"
    assert client.get("/sweeps/digits-api").json()["id"] == body["id"]
    assert [s["name"] for s in client.get("/sweeps", params={"state": "queued"}).json()] == ["digits-api"]
    assert client.get("/sweeps", params={"state": "running"}).json() == []

    cancelled = client.post(f"/sweeps/{body['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = client.post(f"/sweeps/{body['id']}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]


def test_duplicate_name_is_409(client) -> None:
    assert client.post("/sweeps", json=SPEC).status_code == 201
    dup = client.post("/sweeps", json=SPEC)
    assert dup.status_code == 409 and "digits-api" in dup.json()["detail"]


def test_best_before_any_trial_is_409_and_unknown_is_404(client) -> None:
    client.post("/sweeps", json=SPEC)
    assert client.get("/sweeps/digits-api/best").status_code == 409
    assert client.get("/sweeps/nope").status_code == 404
    assert client.get("/sweeps/nope/best").status_code == 404
    assert client.post("/sweeps/nope/cancel").status_code == 404


def test_trials_lists_every_trial_by_number(client, service) -> None:
    store_trials(service, {**SPEC, "name": "ran"}, [0.5, None, 0.25])
    trials = client.get("/sweeps/ran/trials")
    assert trials.status_code == 200, trials.text
    body = trials.json()
    assert [(t["number"], t["state"], t["epochs"], t["value"]) for t in body] == [
        (0, "completed", 2, 0.5),
        (1, "failed", 2, None),
        (2, "completed", 2, 0.25),
    ]
    assert body[1]["reason"] == "train_loss became nan at epoch 2" and body[0]["reason"] is None
    assert 0 < body[0]["config"]["beta1"] < 1 and body[0]["config"]["schedule"] == "constant"

    queued = client.post("/sweeps", json=SPEC).json()
    assert client.get(f"/sweeps/{queued['id']}/trials").json() == []  # by id too; none until it runs
    assert client.get("/sweeps/nope/trials").status_code == 404


def test_health_and_openapi(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/sweeps",
        "/sweeps/{ref}",
        "/sweeps/{ref}/cancel",
        "/sweeps/{ref}/best",
        "/sweeps/{ref}/trials",
        "/healthz",
    } <= set(paths)


def test_card_answers_with_the_config_card_and_refuses_bad_transfers(client, service) -> None:
    store_trials(service, {**SPEC, "name": "carded"}, [0.5, 0.25])
    card = client.get("/sweeps/carded/card")
    assert card.status_code == 200, card.text
    body = card.json()
    assert body["optimizer"]["name"] == "Adam" and body["result"]["value"] == 0.25 and body["source"]["trial"] == 1
    assert client.get("/sweeps/nope/card").status_code == 404
    client.post("/sweeps", json=SPEC)
    assert client.get("/sweeps/digits-api/card").status_code == 409  # queued: nothing completed yet
    # Stored without the workload's facts (as a sweep made before they were recorded): no transfer.
    refused = client.get("/sweeps/carded/card", params={"batch_size": 128})
    assert refused.status_code == 400 and "batch size" in refused.json()["detail"]
