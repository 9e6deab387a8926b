# The two commands of the README: `make demo` (set up and run) and `make test` (set up, test).
# Everything runs from the project virtual environment that scripts/setup.sh makes (.venv/), never
# the system Python; activate it (`. .venv/bin/activate`) to use `shoal` by hand.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export SHOAL_VENV := $(VENV)
export PATH := $(BIN):$(PATH)
PYTHON := $(BIN)/python

.PHONY: setup demo test lint e2e faults

setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/shoal demo

# Every tier runs: unit, integration (real Redis, SQL), k8s (real API server), e2e (a real node,
# the image, the chart; needs root). In CI nothing skips.
test:
	bash scripts/setup.sh --k8s
	if [ "$$(id -u)" = 0 ]; then bash scripts/e2e.sh --prepare; \
	else echo "not root: the e2e tier (a real node) will be skipped" >&2; fi
	SHOAL_K8S_NO_BUILD=1 $(PYTHON) -m pytest -p no:cacheprovider

lint:
	bash scripts/setup.sh --dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Only the end-to-end tier (builds what it needs first).
e2e:
	bash scripts/setup.sh --dev
	PYTHON=$(PYTHON) bash scripts/e2e.sh

# The fault suite (issue 11 B): one row of figures per fault scenario; FAULTS_ARGS=--short for
# the small variants CI runs, e.g. make faults FAULTS_ARGS="--scenario redis-freeze-5".
faults: setup
	$(PYTHON) bench/faults.py $(FAULTS_ARGS)
