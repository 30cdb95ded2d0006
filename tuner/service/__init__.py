"""The sweep service: the one place that knows all three stores and the executor.

:class:`SweepService` is the face the CLI, the REST API and :func:`tuner.sweep` call. It is
built from its parts, each on the same :class:`Stores` (the queue, the Optuna studies, the
MLflow store and its writer process, opened on first use; tests build their own):

- :class:`SweepRunner` runs a sweep: the workload checked once, the stores, Ray, the
  executor, a resumed sweep's MLflow runs repaired, the analysis on the parent run;
- :class:`SweepQueue` submits and cancels queued sweeps and runs one the queue handed out;
  :class:`QueueRunner` drains the queue inside ``tuner serve``, a process per sweep;
- :class:`Reevaluation` re-trains a sweep's top configs with new seeds;
- :class:`SweepQueries` answers reads: status, summary, trials, best configs, card,
  comparison, report.
"""

from tuner.service._queue import SweepQueue
from tuner.service._reading import SweepQueries
from tuner.service._reevaluation import Reevaluation, ReevaluationCallback
from tuner.service._runner import QueueRunner
from tuner.service._running import Executor, PhaseCallback, ProgressFactory, ResultCallback, SweepRunner
from tuner.service._service import SweepService
from tuner.service._stores import Stores

__all__ = [
    "Executor",
    "PhaseCallback",
    "ProgressFactory",
    "QueueRunner",
    "Reevaluation",
    "ReevaluationCallback",
    "ResultCallback",
    "Stores",
    "SweepQueries",
    "SweepQueue",
    "SweepRunner",
    "SweepService",
]
