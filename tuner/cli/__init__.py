"""The ``tuner`` command line: a thin face over :class:`tuner.SweepService`.

Exit codes: 0 success, 1 a sweep or backend failure, 2 bad input or a store that cannot
be used (one-line reason on stderr, no traceback), 130 interrupted (``--resume`` continues).
"""

from __future__ import annotations

import atexit
import os
import sys

from tuner.cli._app import app, err_console, skip_teardown
from tuner.errors import StoreError, SweepInterruptedError, TunerError, UserInputError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``tuner`` console script."""
    skip_teardown.clear()  # set by this call's command only
    try:
        _main()
    except SystemExit as e:
        if not skip_teardown.is_set():
            raise
        # Nothing is left running (the command stopped Ray and the MLflow writer): run the exit
        # handlers (multiprocessing's cleanup among them, ~30 ms), then skip the native teardown
        # of torch's, Ray's and gRPC's extension modules that follows (measured: 2-4 s).
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(e.code if isinstance(e.code, int) else 0 if e.code is None else 1)


def _main() -> None:
    try:
        app()
    except (UserInputError, StoreError) as e:
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
from tuner.cli import _export, _report, _serve, _sweep, _ui  # noqa: F401 - imported to register their commands
