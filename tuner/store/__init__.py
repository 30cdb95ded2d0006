"""The sweep queue: our own SQL database (SQLite file or PostgreSQL), migrated by Alembic.

States and the only legal changes between them::

    queued ──► running ──► completed | failed | cancelled
       │          │
       └──► cancelled      running ──► queued   (requeued at service start after a crash)

SQLAlchemy objects stay inside this package; callers get frozen :class:`Sweep` values.
"""

from tuner.store._store import SweepStore
from tuner.store._sweep import TERMINAL_STATES, Sweep, SweepState

__all__ = ["SweepStore", "Sweep", "SweepState", "TERMINAL_STATES"]
