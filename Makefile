# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

export PACT_DO_NOT_TRACK := true

.PHONY: install test test-pg test-all lint demo up bench clean pacts contracts openapi fuzz

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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis reports
