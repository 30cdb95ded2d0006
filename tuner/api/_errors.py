"""Domain errors → HTTP status codes, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tuner.errors import SpecError, SweepExistsError, SweepNotFoundError, SweepStateError, UserInputError

__all__ = ["install_error_handlers", "STATUS"]

#: Status code per error class; the first matching base class wins.
STATUS: list[tuple[type[Exception], int]] = [
    (SpecError, 422),
    (SweepNotFoundError, 404),
    (SweepExistsError, 409),
    (SweepStateError, 409),
    (UserInputError, 400),
]


def install_error_handlers(app: FastAPI) -> None:
    """Map :class:`UserInputError` subclasses and request validation errors to JSON 4xx responses."""

    @app.exception_handler(UserInputError)
    async def _user_error(request: Request, exc: UserInputError) -> JSONResponse:
        status = next(code for cls, code in STATUS if isinstance(exc, cls))
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)
