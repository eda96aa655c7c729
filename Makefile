# Thin wrappers; each target creates .venv and installs the project first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint fmt bench schema clean

# uv (from PyPI, installed into the venv by pip) resolves and installs the set in seconds where pip
# takes over a minute; the venv is an ordinary one, so `.venv/bin/pip` still works afterwards.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/media-service serve

# Run as root, SVT-AV1 (it encodes a test clip) and Chromium give their threads SCHED_FIFO, which
# starves every other process of a small machine while they spin; the tests never need that
# capability, so as root they run without CAP_SYS_NICE.
NO_REALTIME := $(shell [ "$$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 && echo setpriv --bounding-set=-sys_nice)

test: $(STAMP)
	$(NO_REALTIME) $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: $(STAMP)
	$(BIN)/media-service export-schema --output schema.graphql

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
