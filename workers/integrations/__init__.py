"""Tune code that trains with PyTorch Lightning or the Hugging Face ``Trainer``.

Each framework gets a callback that turns its validation results into
``trial.report(...)`` calls and turns a sweep's stop into the framework's own stop, plus a
helper that hands it the trial's optimizer and lr schedule:

- :mod:`workers.integrations.lightning`: ``TrialCallback`` (a
  ``lightning.pytorch.callbacks.Callback``) and ``optimizer_config`` for
  ``LightningModule.configure_optimizers``; needs ``pip install adamtune[lightning]``.
- :mod:`workers.integrations.hf`: ``TrialCallback`` (a ``transformers.TrainerCallback``)
  and ``optimizers`` for ``Trainer(optimizers=...)``; needs ``pip install adamtune[hf]``.

Importing ``workers.integrations`` imports neither framework: a submodule is imported
when it is first named (``from workers.integrations import lightning`` or
``workers.integrations.hf``), and only it imports its framework.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["hf", "lightning"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
