# adamtune — `make run` (install + default sweep), `make test` (install + test suite).
PYTHON ?= python3
VENV ?= .venv
# pip arguments for torch: a requirement, optionally with pip options, e.g. a GPU build:
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
# Each word reaches pip as one argument, quoted (so `torch>=2.6` is no shell redirect).
TORCH ?= torch==2.13.0
SPEC ?= examples/digits.yaml
BIN := $(VENV)/bin

.PHONY: install run test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(foreach arg,$(TORCH),'$(arg)')
	$(BIN)/pip install --quiet -e ".[dev,triton]"
	touch $@

run: install
	$(BIN)/tuner sweep run $(SPEC) --resume

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) tuner-data .pytest_cache
