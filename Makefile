# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test tools lint unit integration bench bench-full-pass localnet clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The keeper against the embedded local chain and its demo world.
demo: $(STAMP)
	$(BIN)/nosana-keeper demo

## Deployment tools the tests use (promtool, prometheus, helm, kubectl) into .tools/.
tools: $(STAMP)
	bash scripts/install-tools.sh

## Everything CI runs: lint, types, layer contracts, all tests.
test: $(STAMP) tools lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check keeper tests bench
	$(BIN)/ruff format --check keeper tests bench
	$(BIN)/mypy --strict keeper
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/python -m pytest -q --ignore=tests/integration

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

localnet: $(STAMP)
	$(BIN)/nosana-keeper localnet --world demo --port 8899

bench: $(STAMP)
	$(BIN)/python bench/scale.py

## Issue 14's figures: a full dry-run pass against the floor (1M jobs, 50 markets, 85% due).
bench-full-pass: $(STAMP)
	$(BIN)/python bench/full_pass.py

clean-venv:
	rm -rf $(VENV)
