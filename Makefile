# Developer and CI entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
PY_CHECK := import sys; sys.exit(0 if sys.version_info >= (3, 11) else "aiguilleur needs Python 3.11 or newer: run make PYTHON=python3.11 ...")

.PHONY: venv demo test test-full lint bench

venv: $(STAMP)

# The demo needs aiguilleur alone; the tests, linters and benchmarks add their extras.
$(DEMO_STAMP): pyproject.toml
	@$(PYTHON) -c '$(PY_CHECK)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e .
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c '$(PY_CHECK)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/aiguilleur demo

# One BLAS thread per test worker: two workers on two cores must not oversubscribe.
test: venv
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

# The default run plus the long reference checks (C-MAPSS FD002 and FD003 on the full sets).
test-full: venv
	AIGUILLEUR_FULL_REFERENCE=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Benchmarks are scripts, not tests: each prints aiguilleur's time, the anchor's and the ratio.
bench: $(BENCH_STAMP)
	@set -e; for f in benchmarks/[!_]*.py; do \
		[ -e "$$f" ] || { echo "no benchmark scripts in benchmarks/"; exit 0; }; \
		echo "== $$f"; $(BIN)/python "$$f"; \
	done
