# Every target bootstraps .venv on first use, so a fresh clone needs only
# Python 3.11+ and make.  PYTHON may point at another interpreter.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.PHONY: help install test test-fast test-sdk fuzz lint typecheck format bench bench-quick demo sim clean

help:
	@echo "make demo         stream a large simulated job with progress and a summary"
	@echo "make test         lint-free test suite with coverage (what CI runs)"
	@echo "make test-sdk     the official SDK 2.19.0 conformance tests (own virtualenv)"
	@echo "make fuzz         the hostile-server property test, thousands of examples (SEED=n)"
	@echo "make lint         ruff + mypy --strict"
	@echo "make bench        full benchmark suite (writes benchmarks/results/)"
	@echo "make bench-quick  the same, small and under a minute"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,cli,parquet]'
	@touch $(STAMP)

install: $(STAMP)

# coverage starts before pytest: the simulator's pytest plugin (an entry point)
# imports aiobatch while pytest loads plugins, before pytest-cov would start.
test: $(STAMP)
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest -q -m "not slow"
	$(BIN)/python -m coverage run --append -m pytest -q -m slow
	$(BIN)/python -m coverage report --fail-under=90
	$(MAKE) test-sdk

# The official SDK 2.19.0 conformance tests: 2.19.0 cannot share .venv with the
# 2.13.0 of the bench extra, so they run in a virtualenv outside the clone
# (~/.cache/aiobatch/sdk-2.19.0, built once by tests/sdk219/build_venv.py, ~20 s),
# with this checkout first on PYTHONPATH.
test-sdk: $(STAMP)
	@SDK_PY=$$($(BIN)/python tests/sdk219/build_venv.py) && \
	  PYTHONPATH="$(CURDIR)" "$$SDK_PY" -m pytest -q -p no:cacheprovider tests/sdk219

# the fast set alone, stopping at the first failure (no soaks, no SDK virtualenv)
test-fast: $(STAMP)
	$(PYTEST) -q -x -m "not slow"

# Thousands of drawn server behaviours (``make test`` runs a bounded few); each
# failure prints its example and a @reproduce_failure blob.  SEED=n replays a run.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PYTEST) -q -p no:cacheprovider tests/hostile \
		--hypothesis-show-statistics $(if $(SEED),--hypothesis-seed=$(SEED))

lint: $(STAMP)
	$(BIN)/ruff check aiobatch tests benchmarks
	$(BIN)/ruff format --check aiobatch tests benchmarks
	$(BIN)/mypy

typecheck: lint

format: $(STAMP)
	$(BIN)/ruff format aiobatch tests benchmarks
	$(BIN)/ruff check --fix aiobatch tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

# twice: whether the API sends total_size is not published, so also without it
demo: $(STAMP)
	$(BIN)/python -m aiobatch demo
	$(BIN)/python -m aiobatch demo --no-total-size

sim: $(STAMP)
	$(BIN)/python -m aiobatch.testing

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
