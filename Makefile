# Two commands from a fresh clone: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/evidence serve

lint: $(STAMP)
	$(BIN)/lint-imports

test: $(STAMP) lint
	infra/test-services.sh
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	infra/test-services.sh
	$(BIN)/python -m bench.upload

clean:
	rm -rf $(VENV) var build *.egg-info
