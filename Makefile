# VMC Duel: `make duel` races, `make test` tests. Each creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: duel test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,train]"
	touch $@

duel: $(STAMP)  ## watch a duel in the terminal app
	$(BIN)/vmc-duel

test: $(STAMP)  ## lint and run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)  ## stock vs exact vs fast renderer, and vectorised throughput
	$(BIN)/python benchmarks/bench_env.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
