"""Where CLI commands go: the local stores, or a ``tuner serve`` at ``--server``.

Both answer with the same plain dicts (the REST API's JSON), so each command has one printing path.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from tuner.cli._app import settings
from tuner.errors import SweepStateError

__all__ = ["Backend", "backend", "recommended_files"]


class Backend(Protocol):
    def submit(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def list(self, state: str | None = None) -> list[dict[str, Any]]: ...
    def status(self, ref: str) -> dict[str, Any]: ...
    def trials(self, ref: str) -> list[dict[str, Any]]: ...
    def cancel(self, ref: str) -> dict[str, Any]: ...
    def best(self, ref: str, *, top: int = 1, fmt: str = "json") -> str: ...
    def card(self, ref: str, *, batch_size: int | None = None) -> dict[str, Any]: ...


class _Local:
    """The sweep service on this machine's stores, answering like the API.

    Raises:
        StoreError: ``TUNER_HOME`` or a store cannot be read (:func:`tuner.storage.check_stores`);
            for ``submit`` and ``cancel``, the queue cannot be written.
    """

    def __init__(self) -> None:
        from tuner.service import SweepService
        from tuner.storage import check_stores

        config = settings()
        check_stores(config, write=False)
        self._service = SweepService(config)

    def _writing_queue(self) -> None:
        from tuner.storage import check_store

        check_store("queue", self._service.settings.database_url, write=True)

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        from tuner.spec import parse_spec

        self._writing_queue()

        # The queue holds registered workloads only, as over HTTP: `tuner serve` never imports
        # code a request named. Own code runs with `tuner sweep run`.
        return asdict(self._service.submit(parse_spec(spec, allow_paths=False)))

    def list(self, state: str | None = None) -> list[dict[str, Any]]:
        return [asdict(s) for s in self._service.statuses(state)]

    def status(self, ref: str) -> dict[str, Any]:
        return asdict(self._service.status(ref))

    def trials(self, ref: str) -> list[dict[str, Any]]:
        return [asdict(t) for t in self._service.trials(ref)]

    def cancel(self, ref: str) -> dict[str, Any]:
        self._writing_queue()
        return asdict(self._service.cancel(ref))

    def best(self, ref: str, *, top: int = 1, fmt: str = "json") -> str:
        from tuner.review import render

        return render(self._service.best(ref, top=top), fmt)

    def card(self, ref: str, *, batch_size: int | None = None) -> dict[str, Any]:
        return self._service.card(ref, batch_size=batch_size)

    def recommended_files(self, ref: str, dest: Path) -> tuple[int, list[Path]]:
        [card] = self._service.best(ref)
        source = card["source"]
        run_id = source["mlflow_run_id"]
        copied = self._service.tracker.download_trial_files(run_id, dest) if run_id else []
        if not copied:
            raise SweepStateError(
                f"trial {source['trial']} of sweep {source['sweep']!r}, the recommended one, has no files in MLflow: "
                "only what a function or script trial writes in trial.dir is logged, on the driver's node "
                "(docs/reviewing.md)"
            )
        return source["trial"], copied


def recommended_files(ref: str, dest: Path) -> tuple[int, list[Path]]:
    """Copy the files of sweep ``ref``'s recommended trial from this machine's MLflow store into
    ``dest`` (see :meth:`tuner.tracking.Tracker.download_trial_files`); returns the trial's number
    and the files copied, relative to ``dest``.

    Raises:
        SweepNotFoundError: no such sweep.
        SweepStateError: no trial has completed, or the recommended one has no files.
    """
    return _Local().recommended_files(ref, dest)


def backend(server: str | None) -> Backend:
    """The server at ``server`` (token from ``TUNER_API_TOKEN``), or the local stores when ``None``."""
    if server is None:
        return _Local()
    from tuner.client import RemoteSweeps

    token = settings().api_token
    return RemoteSweeps(server, token=token.get_secret_value() if token else None)
