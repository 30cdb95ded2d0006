"""A client for a running ``tuner serve`` (httpx): what the CLI uses with ``--server``."""

from __future__ import annotations

from typing import Any

import httpx

from tuner.errors import SpecError, SweepExistsError, SweepNotFoundError, SweepStateError, TunerError, UserInputError

__all__ = ["RemoteSweeps"]

_ERRORS: dict[int, type[TunerError]] = {
    401: UserInputError,
    404: SweepNotFoundError,
    413: UserInputError,
    422: SpecError,
}


class RemoteSweeps:
    """The sweep API at ``base_url``.

    Args:
        base_url: e.g. ``http://127.0.0.1:8765``.
        token: the server's ``TUNER_API_TOKEN``, if it requires one.
        transport: an ``httpx`` transport (tests pass ``httpx.ASGITransport`` or a mock).

    Every method raises the :mod:`tuner.errors` class matching the HTTP status
    (422 → SpecError, 404 → SweepNotFoundError, 409 → SweepExistsError/SweepStateError),
    and :class:`TunerError` when the server cannot be reached or fails.
    """

    def __init__(
        self, base_url: str, *, token: str | None = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self._url, headers=headers, timeout=30.0, transport=transport)

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Queue a sweep; returns its status (with ``id``)."""
        return self._call("POST", "/sweeps", json=spec).json()

    def list(self, state: str | None = None) -> list[dict[str, Any]]:
        """Statuses of all sweeps (optionally one state)."""
        return self._call("GET", "/sweeps", params={"state": state} if state else None).json()

    def status(self, ref: str) -> dict[str, Any]:
        """Status of the sweep with that id or name."""
        return self._call("GET", f"/sweeps/{ref}").json()

    def trials(self, ref: str) -> list[dict[str, Any]]:
        """Every trial of the sweep (``number``, ``state``, ``epochs``, ``value``, ``config``, ``reason``)."""
        return self._call("GET", f"/sweeps/{ref}/trials").json()

    def cancel(self, ref: str) -> dict[str, Any]:
        """Cancel a queued or running sweep; returns its status."""
        return self._call("POST", f"/sweeps/{ref}/cancel").json()

    def best(self, ref: str, *, top: int = 1, fmt: str = "json") -> str:
        """The best config card(s) rendered as ``fmt`` (json, yaml or python)."""
        return self._call("GET", f"/sweeps/{ref}/best", params={"top": top, "format": fmt}).text

    def card(self, ref: str, *, batch_size: int | None = None) -> dict[str, Any]:
        """The Adam config card of the recommended trial (:func:`tuner.review.adam_card`)."""
        params = {} if batch_size is None else {"batch_size": batch_size}
        return self._call("GET", f"/sweeps/{ref}/card", params=params).json()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise TunerError(f"cannot reach the tuner server at {self._url}: {e}") from e
        if response.is_success:
            return response
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        if response.status_code == 409:
            cls = SweepExistsError if "already exists" in str(detail) else SweepStateError
        else:
            cls = _ERRORS.get(response.status_code, UserInputError if response.status_code < 500 else TunerError)
        raise cls(f"{detail} (HTTP {response.status_code} from {self._url})")
