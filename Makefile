# VMC Duel: `make duel` races, `make test` tests. Each creates the virtual environment it needs:
# the duel only the base install (no torch, as on the edge), the tests the extras on top.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
DEV := $(VENV)/.installed-dev
DOCS := $(VENV)/.installed-docs

.PHONY: duel test lint bench docs clean

$(BASE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV): $(BASE)
	$(BIN)/python -m pip install --quiet -e ".[dev,train,cluster,docs]"
	touch $@

duel: $(BASE)  ## watch a duel in the terminal app
	$(BIN)/vmc-duel

test: $(DEV)  ## lint and run the whole test suite (tests/test_docs.py builds the docs site with --strict)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(DEV)
	$(BIN)/ruff check .

bench: $(DEV)  ## stock vs exact vs fast renderer, and vectorised throughput
	$(BIN)/python benchmarks/bench_env.py

$(DOCS): $(BASE)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(DOCS)  ## the documentation site, strictly: build/site/index.html
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
