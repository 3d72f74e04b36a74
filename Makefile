# The two commands a new user needs: `make up` and `make test`. Everything else is optional.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: cluster-up cluster-down cluster-test cluster-chaos compose-up compose-down
.PHONY: help install up down demo bench chaos docs test security audit typecheck test-unit test-integration test-e2e lint fmt schemas schemas-check status logs clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

install: $(VENV)/.installed  ## create .venv with every workspace package (uv)

$(VENV)/.installed: pyproject.toml uv.lock schemas/pyproject.toml libs/runtime/pyproject.toml services/*/pyproject.toml tools/devstack/pyproject.toml
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	python3 -m uv sync --all-packages --locked
	@touch $@

up: install  ## start Kafka, PostgreSQL and every service locally, then process a sample CSV
	$(PY) -m devstack up

down:  ## stop everything `make up` and `make test` started (by pid)
	@if [ -x $(PY) ]; then $(PY) -m devstack down; $(PY) -m devstack --profile test down; fi

demo: install  ## upload the sample CSV again to the running stack
	$(PY) -m devstack demo

status: install  ## what is running
	$(PY) -m devstack status

test: install security typecheck  ## every test: the security scan and the type check, then unit, integration, e2e, chaos and the hostile-use suite
	$(PY) -m pytest

chaos: install  ## the chaos suite alone: faults mid-flight, then exactly-once checks, printed as a table
	$(PY) -m pytest tests/chaos

test-unit: install  ## unit tests only (no servers)
	$(PY) -m pytest tests/unit

test-integration: install  ## integration tests only (starts the test profile's Kafka and PostgreSQL; no services)
	$(PY) -m pytest tests/integration

test-e2e: install  ## end-to-end tests only
	$(PY) -m pytest tests/e2e

bench: install  ## benchmarks: print throughput and memory figures (see bench/)
	$(PY) bench/run.py

security: install  ## static security scan: ruff's bandit rules (exceptions in pyproject.toml, each explained)
	$(PY) -m ruff check --select S --quiet .

typecheck: install  ## mypy over schemas, libs, services, tools and the CLI (configuration in pyproject.toml)
	$(PY) -m mypy

audit: install  ## dependency audit: every locked package against PyPI's advisory data (scripts/audit_deps.py)
	python3 scripts/audit_deps.py

lint: install security audit typecheck  ## ruff, the security scan, the dependency audit and the type check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

fmt: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

schemas: install  ## regenerate schemas/jsonschema from the pydantic models
	$(PY) -m pipeline_schemas._generate

schemas-check: install
	$(PY) -m pipeline_schemas._generate --check

docs: install  ## regenerate the generated parts of docs/ (settings reference, API collection)
	$(PY) scripts/gen_docs.py

compose-up: install  ## docker compose up --build -d, with one compressor member per two cores (1 to 4), as make up
	IMGPIPE_COMPRESSOR_MEMBERS=$$($(PY) -m devstack members) docker compose up --build -d

compose-down:  ## stop what compose-up started (volumes are kept)
	docker compose down

logs:  ## follow the logs of the dev stack
	tail -F .run/dev/logs/*.log

cluster-up: install  ## a 3-broker Kafka, PostgreSQL, an object store and compressors on 3 hosts (netns, root)
	$(PY) -m devstack --profile cluster up

cluster-down:  ## stop the cluster profile and remove its namespaces and bridge
	@if [ -x $(PY) ]; then $(PY) -m devstack --profile cluster down; fi

cluster-test: install  ## the cluster profile's tests: replication from settings, hosts apart, a broker down (~3.5 min)
	IMGPIPE_CLUSTER_TESTS=1 $(PY) -m pytest tests/cluster

cluster-chaos: install  ## a 1,000-image request per fault on the cluster profile, printed as a table (~10 min)
	$(PY) -m tests.cluster.chaos

clean: down  ## remove run state (data of the local Kafka and PostgreSQL)
	rm -rf .run
