# adamtune — `make run` (install + default sweep), `make test` (install + Chromium + ruff + test suite).
PYTHON ?= python3
VENV ?= .venv
# pip arguments for torch: a requirement, optionally with pip options, e.g. a GPU build:
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
# Each word reaches pip as one argument, quoted (so `torch>=2.6` is no shell redirect).
TORCH ?= torch==2.13.0
SPEC ?= examples/digits.yaml
# How `make browser` installs Debian's chromium for tests/browser (Playwright drives it; it downloads no browser).
CHROMIUM_INSTALL ?= apt-get install -y --no-install-recommends chromium
BIN := $(VENV)/bin

.PHONY: install browser run lint test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(foreach arg,$(TORCH),'$(arg)')
	$(BIN)/pip install --quiet -e ".[dev,triton,lightning,hf]"
	touch $@

run: install
	$(BIN)/tuner sweep run $(SPEC) --resume

# Best effort: where chromium cannot be installed (no apt, not root, offline) the tests still run
# and tests/browser skips, saying why. `apt-get update` only when the first install fails.
browser:
	@command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive $(CHROMIUM_INSTALL) \
		|| { apt-get update && DEBIAN_FRONTEND=noninteractive $(CHROMIUM_INSTALL); } \
		|| echo 'make browser: chromium not installed; tests/browser will be skipped' >&2

# ruff's lint rules and formatting (pyproject.toml [tool.ruff]); `ruff format .` and `ruff check --fix .` repair most.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Test files spread over TEST_WORKERS processes (pytest-xdist; a file's tests stay together, so a
# module's shared sweep runs once), files with slow tests first (tests/conftest.py orders them;
# --no-loadscope-reorder keeps that order); the 25 slowest tests are listed at the end.
TEST_WORKERS ?= 2
test: install browser lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

clean:
	rm -rf $(VENV) tuner-data .pytest_cache
