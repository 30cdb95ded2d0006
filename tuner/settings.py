"""Where the stores live: one settings object, built once at start-up.

Embedded default: everything under ``TUNER_HOME`` (``./tuner-data``) —
``tuner.db`` (the sweep queue), ``mlflow.db`` (MLflow tracking), ``optuna.db`` (Optuna studies), ``mlartifacts/``
and ``ray/`` (Ray Tune's experiment folders). Optuna, MLflow and the queue each own
an ``alembic_version`` table, so they never share a database.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Locations of the stores and the Ray cluster, read from ``TUNER_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="TUNER_", frozen=True)

    home: Path = Field(Path("tuner-data"), description="Folder of the embedded stores.")
    mlflow_uri: str | None = Field(
        None, description="MLflow tracking URI: a SQLAlchemy URL, or a tracking server's URL (http://host:5000)."
    )
    optuna_storage: str | None = Field(None, description="Optuna RDB storage URL.")
    ray_address: str | None = Field(None, description="Existing Ray cluster; local Ray if unset.")
    db_url: str | None = Field(None, description="The sweep queue's database (SQLAlchemy URL).")
    api_token: SecretStr | None = Field(None, description="Bearer token the API requires (needed off loopback).")
    server: str | None = Field(None, description="URL of a `tuner serve` the CLI talks to instead of local stores.")
    max_concurrent_sweeps: int = Field(1, ge=1, le=64, description="Sweeps `tuner serve` runs at once.")
    mlflow_retry_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description=(
            "Seconds an MLflow call is retried while the tracking server or database is unreachable "
            "(exponential backoff, at most 2 s apart); then the sweep fails with TrackingError. 0: no retries."
        ),
    )

    @property
    def home_dir(self) -> Path:
        """``home`` as an absolute path (created on first use by the stores)."""
        return self.home.expanduser().resolve()

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: ``TUNER_MLFLOW_URI`` or ``sqlite:///<home>/mlflow.db``."""
        return self.mlflow_uri or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def study_storage(self) -> str:
        """Optuna storage URL: ``TUNER_OPTUNA_STORAGE`` or ``sqlite:///<home>/optuna.db``."""
        return self.optuna_storage or f"sqlite:///{self.home_dir / 'optuna.db'}"

    @property
    def database_url(self) -> str:
        """The sweep queue's SQLAlchemy URL: ``TUNER_DB_URL`` or ``sqlite:///<home>/tuner.db``."""
        return self.db_url or f"sqlite:///{self.home_dir / 'tuner.db'}"

    @property
    def artifact_root(self) -> str | None:
        """Where new MLflow experiments store artifacts: ``<home>/mlartifacts``, or
        ``None`` when tracking goes to an MLflow server (it stores them itself)."""
        if self.tracking_uri.startswith(("http://", "https://")):
            return None
        return (self.home_dir / "mlartifacts").as_uri()

    @property
    def ray_storage(self) -> Path:
        """Ray Tune's ``storage_path`` for experiment folders (``<home>/ray``)."""
        return self.home_dir / "ray"
