# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

export PACT_DO_NOT_TRACK := true

.PHONY: install test test-pg test-all lint demo up bench scenarios clean load test-compose pacts contracts openapi fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The integration suite again with the core's store (DBOS, inbox, DLQ, crosswalk) on PostgreSQL at
# 127.0.0.1:5432; the tests skip with the reason when no server answers.
test-pg: $(STAMP)
	LOCKSTEP_TEST_CORE_BACKEND=postgres $(BIN)/python -m pytest tests/integration
	$(MAKE) test-compose

# docker-compose.yml's services started natively (no Docker engine needed), the core on PostgreSQL.
test-compose: $(STAMP)
	$(BIN)/python -m pytest -m compose tests/compose

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ''

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: $(STAMP)
	$(BIN)/lockstep up --demo

up: $(STAMP)
	$(BIN)/lockstep up

# Consumer pacts: the real connectors against Pact's mock server -> contracts/pacts/ (commit the result).
pacts: $(STAMP)
	$(BIN)/python -m contracts.build

# Every pact verified against every mock version, OpenAPI drift, matrix + JUnit XML in reports/.
contracts: $(STAMP)
	$(BIN)/lockstep contracts verify --junit reports/contracts.xml

# OpenAPI snapshots of every mock API version -> contracts/openapi/ (commit the result with a new version).
openapi: $(STAMP)
	$(BIN)/python -m contracts.openapi

# Longer property-based runs: the core API (stateless + stateful links) with many more examples, and the
# mocks' Schemathesis suites.
fuzz: $(STAMP)
	LOCKSTEP_FUZZ_EXAMPLES=200 $(BIN)/python -m pytest tests/contracts/test_core_schemathesis.py \
		tests/billing/test_api_schemathesis.py tests/crm/test_schemathesis.py tests/erp/test_schemathesis.py \
		tests/cs/test_schemathesis.py

bench: $(STAMP)
	$(BIN)/python -m bench

# Every scenario pack in-process (4 worker processes: the fastest measured on 2 cores); reports in reports/scenarios/
scenarios: $(STAMP)
	$(BIN)/lockstep run --workers 4

# A Locust run against the sandbox, then the books (duplicates, lost, DLQ, 429s) held to loadtests/thresholds.toml.
# The issue's must-show: make load LOAD_ARGS="--invoices 10000 --users 60 --duration 600 --workers 2"
LOAD_SHAPE ?= month_end_invoice_run
LOAD_ARGS ?= --invoices 1000 --users 40 --duration 300 --workers 2
load: $(STAMP)
	$(BIN)/lockstep load $(LOAD_SHAPE) $(LOAD_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis reports
