"""Request guards: a bearer token (when configured) and a cap on request bodies."""

from __future__ import annotations

import hmac

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_BYTES", "BodyLimit", "TokenAuth"]

#: Largest request body accepted, in bytes (a sweep spec is well under 4 KiB).
MAX_BODY_BYTES = 64 * 1024


class TokenAuth:
    """ASGI middleware: every request must carry ``Authorization: Bearer <token>``.

    The comparison is constant-time (:func:`hmac.compare_digest`). Missing or
    wrong tokens get 401 with a ``WWW-Authenticate: Bearer`` header.
    """

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self._app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self._expected):
            response = JSONResponse(
                {"detail": "missing or invalid bearer token; send 'Authorization: Bearer $TUNER_API_TOKEN'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            return await response(scope, receive, send)
        await self._app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: bodies over ``limit`` bytes get 413, declared or streamed."""

    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self._app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._limit):
            return await self._too_large(scope, receive, send)
        received = 0
        rejected = False

        async def limited() -> Message:
            # Past the limit: answer 413 ourselves and tell the app the client left.
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._limit:
                rejected = True
                await self._too_large(scope, receive, send)
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            if not rejected:
                await send(message)

        try:
            await self._app(scope, limited, guarded)
        except Exception:
            if not rejected:
                raise

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"request body over {self._limit} bytes"}, status_code=413)
        await response(scope, receive, send)
