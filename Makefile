# fmfl-audit developer entry points. `make demo` and `make test` set everything up from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torch first, pinned: this version installs from local disk here; an unpinned torch would pull a
# multi-GB CUDA build. pyproject declares a range (torch>=2.2), so pip keeps this one.
TORCH  ?= torch==2.13.0
DEMO_MANIFEST ?= examples/reading-tutor/compromised/manifest.yaml

.PHONY: install demo test test-fast lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,flower,probe]"
	touch $(STAMP)

install: $(STAMP)

## Scan the bundled example deployment (the report is graded; the demo never fails on the gate).
demo: $(STAMP)
	@manifest="$(DEMO_MANIFEST)"; [ -f "$$manifest" ] || manifest=examples/quickstart/manifest.yaml; \
	$(BIN)/fmfl-audit scan "$$manifest" --exit-zero

## Run the whole test suite (slow model tests included), two workers.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

## Skip the slow model tests while iterating.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
