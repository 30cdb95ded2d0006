"""Domain errors → HTTP status codes, in one place, and the error body every 4xx and 5xx carries."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuner.errors import SpecError, SweepExistsError, SweepNotFoundError, SweepStateError, UserInputError

__all__ = ["ErrorBody", "InternalErrors", "STATUS", "error_responses", "install_error_handlers"]

_log = logging.getLogger(__name__)

#: Status code per error class; the first matching base class wins.
STATUS: list[tuple[type[Exception], int]] = [
    (SpecError, 422),
    (SweepNotFoundError, 404),
    (SweepExistsError, 409),
    (SweepStateError, 409),
    (UserInputError, 400),
]

#: What each error status means, as the OpenAPI schema documents it.
_MEANING = {
    400: "The request cannot be served as asked: a body that is not JSON, or a config card that cannot be transferred.",
    401: "Missing or wrong bearer token (when the service requires one).",
    404: "No sweep has that queue id or name.",
    409: "The sweep's state does not allow it, or the name is taken.",
    413: "The request body is over the service's limit.",
    422: "Invalid input: the detail names the field, the bad value and the rule.",
}


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: str = Field(description="What was wrong and what to do, in one line.")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error ``codes`` a route answers, each with an :class:`ErrorBody`."""
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in codes}


def install_error_handlers(app: FastAPI) -> None:
    """Map :class:`UserInputError` subclasses, request validation errors and the router's own
    errors (404, 405) to JSON 4xx responses."""

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # the router names only the first route of the path
            headers["Allow"] = ", ".join(sorted(_methods(request)))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(UserInputError)
    async def _user_error(request: Request, exc: UserInputError) -> JSONResponse:
        status = next(code for cls, code in STATUS if isinstance(exc, cls))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)


def _methods(request: Request) -> set[str]:
    """Every method some route serves on the request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return methods


class InternalErrors:
    """ASGI middleware: an exception no handler mapped becomes a JSON 500 that names no
    path or URL (the traceback goes to the log), and the connection stays open.

    Without it the exception reaches the server, which closes a keep-alive connection
    once a response has started, so the client's next request on it is reset.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self._app(scope, receive, send)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, tracked)
        except Exception:
            _log.exception("%s %s failed", scope["method"], scope["path"])
            if started:
                raise  # half a response is out: only closing the connection ends it
            response = JSONResponse({"detail": "internal error; the service's log has the details"}, status_code=500)
            await response(scope, receive, send)
