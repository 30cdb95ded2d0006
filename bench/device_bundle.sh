#!/usr/bin/env bash
# Build the device bundle: adamtune's control plane (Ray, Optuna, MLflow, SQLAlchemy, pydantic, ... less
# what the GPU machine's image has) and the project itself, as one tar.xz of a site folder for CPython 3.12.
#
#   bash bench/device_bundle.sh                    # .bundle/adamtune-site-cp312.tar.xz, at most 50 MiB
#   bash bench/device_bundle.sh --python native    # for the venv's own Python (no download)
#   bash bench/device_bundle.sh --help             # every option
#
# It reads the distributions installed in .venv (make install first): pure-Python ones and abi3 builds
# are copied from there, the few with compiled code for another Python come from their wheels of the same
# version, fetched once with pip into .bundle-build/wheels (ignored). Prints each distribution, the size
# and exits 1 where the bundle is over the limit. Only the bundle lies in .bundle/, so the device tool
# can carry that folder (docs/performance.md, "The GPU check"); there:
#   mkdir -p /tmp/site && tar xJf .bundle/adamtune-site-cp312.tar.xz -C /tmp/site && export PYTHONPATH=/tmp/site
# See bench/device_bundle.py for what is left out and why.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || { echo "device_bundle: $PY not found: run make install (or set PYTHON)" >&2; exit 2; }
exec "$PY" bench/device_bundle.py "$@"
