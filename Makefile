# Every target creates the virtual environment on first use; nothing else needs installing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help test lint format replay demo local bench bench-quick chaos openapi clean

help:
	@echo "make demo    - run the whole product locally on MovieLens 100K (no Docker, no AWS)"
	@echo "make test    - lint, type-check and run the test suite"
	@echo "make replay  - prequential replay on MovieLens 100K, writes build/replay.json"
	@echo "make local   - start the local stack (moto + poller + API on 127.0.0.1:3000)"
	@echo "make bench   - benchmarks, writes build/bench.json and build/bench.md"
	@echo "make chaos   - MovieLens through the ingest path with injected faults"
	@echo "make lint    - ruff, ruff format --check, mypy and cfn-lint only"
	@echo "make format  - ruff format and fixes"
	@echo "make bench-quick - the benchmarks at small scale (about a minute)"
	@echo "make clean   - remove build outputs and caches"
	@echo "options: make demo DEMO_ARGS='--live-events 20000'; make local LOCAL_ARGS=--seed-movielens"
	@echo "make openapi - regenerate docs/openapi.json from the API code"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

replay: $(STAMP)
	$(BIN)/python scripts/replay.py --k 10 --out build/replay.json

demo: $(STAMP)
	$(BIN)/python -m recsys_demo $(DEMO_ARGS)

local: $(STAMP)
	$(BIN)/python -m local_stack $(LOCAL_ARGS)

bench: $(STAMP)
	$(BIN)/python scripts/bench.py

bench-quick: $(STAMP)
	$(BIN)/python scripts/bench.py --quick

chaos: $(STAMP)
	$(BIN)/python scripts/chaos.py

openapi: $(STAMP)
	$(BIN)/python scripts/openapi.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .aws-sam
