"""The ``tuner`` command line: a thin face over :class:`tuner.SweepService`.

Exit codes: 0 success, 1 a sweep or backend failure, 2 bad input (one-line
reason on stderr, no traceback), 130 interrupted (``--resume`` continues).
"""

from __future__ import annotations

import sys

from tuner.cli._app import app, err_console
from tuner.errors import SweepInterruptedError, TunerError, UserInputError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``tuner`` console script."""
    try:
        app()
    except UserInputError as e:
        err_console.print(f"error: {e}", highlight=False, markup=False)
        sys.exit(2)
    except SweepInterruptedError as e:
        err_console.print(f"interrupted: {e}", markup=False)
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted; `tuner sweep run SPEC --resume` continues the sweep", markup=False)
        sys.exit(130)
    except TunerError as e:
        err_console.print(f"error: {e}", highlight=False, markup=False)
        sys.exit(1)


# Register the command groups on `app`.
from tuner.cli import _export, _report, _serve, _sweep, _ui  # noqa: E402,F401
