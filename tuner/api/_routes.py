"""The REST routes: thin calls into :class:`~tuner.service.SweepService`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import WithJsonSchema

from tuner.api._errors import error_responses
from tuner.api._schema import spec_body_schema
from tuner.records import SweepStatus, TrialRecord
from tuner.spec import parse_spec

__all__ = ["router"]

router = APIRouter()

SWEEP_STATES = Literal["queued", "running", "completed", "failed", "cancelled", "incomplete"]

SPEC_EXAMPLE = {
    "name": "digits-mlp",
    "workload": "digits_mlp",
    "search_space": "adam",
    "n_trials": 16,
    "max_epochs": 8,
    "metric": "val_loss",
    "mode": "min",
    "scheduler": "asha",
    "resources_per_trial": {"cpu": 1, "gpu": 0},
    "seed": 0,
}


def _service(request: Request):
    return request.app.state.service


@router.get("/healthz", tags=["service"])
async def healthz() -> dict[str, str]:
    """Liveness: the API answers."""
    return {"status": "ok"}


@router.post(
    "/sweeps",
    status_code=201,
    response_model=SweepStatus,
    tags=["sweeps"],
    responses=error_responses(400, 409, 413, 422),
)
async def submit(
    request: Request,
    spec: Annotated[
        dict[str, Any],
        Body(),
        WithJsonSchema({**spec_body_schema(), "examples": [SPEC_EXAMPLE]}),  # parse_spec below validates it
    ],
) -> SweepStatus:
    """Queue a sweep. 422: invalid spec (the message names the field); 409: the name is taken."""
    parsed = parse_spec(spec, allow_paths=False)
    status = await run_in_threadpool(_service(request).submit, parsed)
    runner = request.app.state.runner
    if runner is not None:
        runner.wake()
    return status


@router.get("/sweeps", response_model=list[SweepStatus], tags=["sweeps"], responses=error_responses(422))
async def list_sweeps(request: Request, state: SWEEP_STATES | None = Query(None)) -> list[SweepStatus]:
    """All sweeps, optionally those in one state."""
    return await run_in_threadpool(_service(request).statuses, state)


@router.get("/sweeps/{ref}", response_model=SweepStatus, tags=["sweeps"], responses=error_responses(404, 422))
async def get_sweep(request: Request, ref: str) -> SweepStatus:
    """One sweep by queue id or name: state, trial counts, best so far, MLflow ids. 404: unknown."""
    return await run_in_threadpool(_service(request).status, ref)


@router.get(
    "/sweeps/{ref}/trials", response_model=list[TrialRecord], tags=["sweeps"], responses=error_responses(404, 422)
)
async def trials(request: Request, ref: str) -> list[TrialRecord]:
    """Every trial by number: state, epochs, value, Adam config, reason (none while queued). 404: unknown."""
    return await run_in_threadpool(_service(request).trials, ref)


@router.post(
    "/sweeps/{ref}/cancel", response_model=SweepStatus, tags=["sweeps"], responses=error_responses(404, 409, 422)
)
async def cancel(request: Request, ref: str) -> SweepStatus:
    """Cancel a queued sweep, or stop a running one. 409: it already ended."""
    return await run_in_threadpool(_service(request).cancel, ref)


@router.get(
    "/sweeps/{ref}/best",
    tags=["sweeps"],
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}, **error_responses(404, 409, 422)},
)
async def best(
    request: Request,
    ref: str,
    top: int = Query(1, ge=1, le=100),
    format: Literal["json", "yaml", "python"] = Query("json"),
) -> Response:
    """The best config card(s) (torch.optim.Adam kwargs + lr schedule + source). 409: no completed trial yet."""
    from tuner.review import render

    cards = await run_in_threadpool(lambda: _service(request).best(ref, top=top))
    return Response(render(cards, format), media_type="application/json" if format == "json" else "text/plain")


@router.get("/sweeps/{ref}/card", tags=["sweeps"], responses=error_responses(400, 404, 409, 422))
async def card(request: Request, ref: str, batch_size: int | None = Query(None, ge=1, le=10_000_000)) -> dict[str, Any]:
    """The Adam config card of the recommended trial (:func:`tuner.review.adam_card`); with ``batch_size``, a config
    transferred to it by the square-root rule. 409: no completed trial yet; 400: no transfer possible."""
    return await run_in_threadpool(lambda: _service(request).card(ref, batch_size=batch_size))
