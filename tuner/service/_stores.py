"""The stores a sweep service works on, opened on first use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from tuner.settings import Settings
from tuner.storage import check_stores

if TYPE_CHECKING:
    from tuner.store import SweepStore
    from tuner.study import StudyStore
    from tuner.tracking import Tracker, TrackingWriter

__all__ = ["StoreName", "Stores"]

#: The stores :meth:`Stores.readable` knows.
StoreName = Literal["store", "studies", "tracker"]


class Stores:
    """The queue (``tuner.db``), the Optuna studies, the MLflow store and the MLflow writer
    process, each built from ``settings`` on first use unless given.

    Reading creates no store: :meth:`readable` says whether reading one would create an
    empty SQLite file, so a read in an empty folder writes nothing.

    Args:
        settings: where the stores are.
        store, studies, tracker, writer: stores of the caller's own (tests pass them); the
            others are opened from ``settings`` when first used.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: SweepStore | None = None,
        studies: StudyStore | None = None,
        tracker: Tracker | None = None,
        writer: TrackingWriter | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._studies = studies
        self._tracker = tracker
        self._writer = writer

    @property
    def store(self) -> SweepStore:
        """The sweep queue (``tuner.db``)."""
        if self._store is None:
            from tuner.store import SweepStore

            self._store = SweepStore(self.settings.database_url)
        return self._store

    @property
    def studies(self) -> StudyStore:
        """The Optuna studies (one per sweep)."""
        if self._studies is None:
            from tuner.study import StudyStore

            self._studies = StudyStore(self.settings.study_storage)
        return self._studies

    @property
    def tracker(self) -> Tracker:
        """The MLflow store (one experiment per sweep): the one given or opened here, else, once the
        MLflow writer process runs, that process's (:class:`tuner.tracking.WriterTracker`: a
        sweep's driver does not import MLflow), else one opened here now."""
        if self._tracker is None and self._writer is not None:
            return cast("Tracker", self._writer.tracker)
        if self._tracker is None:
            from tuner.tracking import Tracker

            settings = self.settings
            self._tracker = Tracker(
                settings.tracking_uri, settings.artifact_root, retry_seconds=settings.mlflow_retry_seconds
            )
        return self._tracker

    @property
    def writer(self) -> TrackingWriter:
        """The child process that writes trials to MLflow while sweeps run (started on first use)."""
        if self._writer is None:
            from tuner.tracking import TrackingWriter

            settings = self.settings
            self._writer = TrackingWriter(
                settings.tracking_uri, settings.artifact_root, retry_seconds=settings.mlflow_retry_seconds
            )
        return self._writer

    def open(self) -> None:
        """Open the three stores and start the MLflow writer now rather than on first use.

        ``tuner serve`` calls it before its threads start: opening a store on first use is
        not thread-safe, and a bad URL then fails at start, not at the first request.

        Raises:
            StoreError: ``TUNER_HOME`` or a store cannot be written (:func:`tuner.storage.check_stores`).
        """
        check_stores(self.settings, write=True)
        _ = (self.store, self.studies, self.tracker)  # each opened now, on this thread
        self.writer.flush()  # up and connected

    def close_writer(self) -> None:
        """Stop the MLflow writer process once its events are written, if it was started (a later
        use starts a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def readable(self, store: StoreName) -> bool:
        """Whether reading ``store`` creates nothing: it is open already, or its URL is not
        an SQLite file that is missing (opening that would create it, empty)."""
        if getattr(self, f"_{store}") is not None or (store == "tracker" and self._writer is not None):
            return True
        url = {
            "store": self.settings.database_url,
            "studies": self.settings.study_storage,
            "tracker": self.settings.tracking_uri,
        }[store]
        return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()
