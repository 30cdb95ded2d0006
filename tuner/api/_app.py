"""The FastAPI application: routes, error mapping, guards; the service is injected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from tuner.api._errors import InternalErrors, error_responses, install_error_handlers
from tuner.api._routes import router
from tuner.api._security import MAX_BODY_BYTES, BodyLimit, TokenAuth

if TYPE_CHECKING:
    from tuner.service import QueueRunner, SweepService

__all__ = ["create_app"]


def create_app(
    service: SweepService,
    *,
    runner: QueueRunner | None = None,
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """Build the adamtune REST API.

    Args:
        service: the sweep service every route calls.
        runner: the queue runner to start with the app (``None``: the API only
            queues sweeps; tests use this).
        token: when set, every request needs ``Authorization: Bearer <token>``.
        max_body_bytes: requests with larger bodies get 413.

    Returns:
        The ASGI app; OpenAPI at ``/openapi.json``, docs at ``/docs``. Every error
        answers ``{"detail": "<one line>"}``; an unexpected one is a 500 that keeps
        the connection open and names no store path or URL.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            runner.start()
        yield
        if runner is not None:
            runner.stop()

    app = FastAPI(
        title="adamtune",
        summary="Tune torch.optim.Adam's lr, betas, eps and weight_decay: submit sweeps, watch them, export the best config.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.runner = runner
    install_error_handlers(app)
    app.include_router(router, responses=error_responses(401) if token else None)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    if token:
        app.add_middleware(TokenAuth, token=token)
    app.add_middleware(InternalErrors)  # added last: the outermost, around the guards too
    return app
