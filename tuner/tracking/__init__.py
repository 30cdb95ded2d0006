"""Tracking: the MLflow adapter and the process that writes trials' runs while a sweep runs.

:class:`Tracker` owns MLflow: one experiment per sweep, a parent run per sweep, a child run
per trial (or re-evaluation run); MLflow objects never leave it. :class:`TrackingWriter` is a
child process that writes the trials' child runs through a :class:`Tracker` of its own, in
order, off the driver's core; its :class:`TrialEvents` observe a sweep's trial events, and its
:class:`WriterTracker` runs a sweep driver's own :class:`Tracker` calls there, so the driver never
imports MLflow. MLflow loads on first use.
"""

from tuner.tracking._tracker import Tracker
from tuner.tracking._writer import TrackingWriter, TrialEvents, WriterTracker

__all__ = ["Tracker", "TrackingWriter", "TrialEvents", "WriterTracker"]
