"""The REST API of ``tuner serve`` (FastAPI): submit, list, show, cancel sweeps; fetch trials and best configs."""

from tuner.api._app import create_app
from tuner.api._security import MAX_BODY_BYTES

__all__ = ["MAX_BODY_BYTES", "create_app"]
