# The two commands of the README: `make demo` (set up and run) and `make test` (set up, test).
PYTHON ?= python3

.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	shoal demo

# Every tier runs: unit, integration (real Redis, SQL), k8s (real API server). No skips.
test:
	bash scripts/setup.sh --k8s
	SHOAL_K8S_NO_BUILD=1 $(PYTHON) -m pytest -p no:cacheprovider

lint:
	ruff format --check .
	ruff check .
	mypy
	lint-imports
