# Two commands from a fresh clone: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/evidence serve

# Types (mypy --strict), style and complexity (ruff, cyclomatic complexity 15 at most), and
# the one-way import layers (import-linter). `make test` runs it first.
lint: $(VENV)/.installed-test
	$(BIN)/mypy
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint
	infra/test-services.sh
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	infra/test-services.sh
	$(BIN)/python -m bench.upload $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info
