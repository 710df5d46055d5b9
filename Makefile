# One entry point. `make run` and `make test` work on a fresh clone: they build the
# virtual environments from the hash-pinned requirements, then start what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
POLICY_VENV := .venv-policy
CHECKOV_VENV := .venv-checkov
LOCUST_VENV := .venv-locust
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python

.PHONY: help install run replay deadletters docs check test lint typecheck tests-offline tests-all tests-policy plan \
	preflight cost-diff checkov lock clean bench locust-env notebook conformance

# Python caches bytecode (in .venv and the gitignored __pycache__/) even where PYTHONDONTWRITEBYTECODE
# is set: a test run starts dozens of Python processes, and each would compile its imports again.
unexport PYTHONDONTWRITEBYTECODE
# The tests wait on emulators, bridges and runners far more than they use the CPU: on 2 cores,
# 3 workers, each given whole test files, slowest first (tests/conftest.py), finish first.
# The offline lane is CPU-bound: 2 workers, one per core (each renders the stacks once).
TEST_WORKERS ?= 3
CHECK_WORKERS ?= 2
PYTEST_PARALLEL := $(VENV)/bin/pytest --dist loadfile --no-loadscope-reorder --durations=10
OFFLINE_TESTS := tests/unit tests/platform tests/delivery

help:
	@echo "make run        start emulators, bridge, replay flights, serve the API on http://127.0.0.1:8000"
	@echo "make replay     ARGS=\"--days N | --all | --resume\": replay more flights into the running stack"
	@echo "make deadletters ARGS=\"list | redrive ... | discard ...\": the running stack's dead letters (docs/ingest.md)"
	@echo "make docs       print the running API's interactive docs URL"
	@echo "make check      the fast lane: lint, types, unit, platform, delivery and policy tests; no emulators (~2 min)"
	@echo "make test       all of make check, plus integration, fuzz, e2e and notebook tests on emulators (~5 min)"
	@echo "make plan       render the dev/staging/prod stacks offline into plans/, diff them, estimate their cost"
	@echo "make cost-diff  BASE_PLANS=dir HEAD_PLANS=dir: each stack's monthly cost before and after (markdown)"
	@echo "make conformance STACK=dev|staging|prod   check a deployed stack as only a real project can (docs/operations.md)"
	@echo "make notebook   run notebooks/walkthrough.ipynb fully (its own stack) and store it with its outputs"
	@echo "make checkov    checkov over the Dockerfile and the GitHub workflows (its own environment; CI runs it)"
	@echo "make lock       re-export the hash-pinned requirements from pyproject.toml"
	@echo "make bench      performance against ceilings measured in the same run (needs wrk; 3-5 min)"
	@echo "make locust-env Locust in .venv-locust, for load tests of a deployed stack (docs/performance.md)"

install: $(VENV)/.installed $(POLICY_VENV)/.installed

$(VENV)/.installed: requirements/bootstrap.txt requirements/dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/bootstrap.txt
	$(UV) pip sync --python $(PY) --require-hashes requirements/dev.txt
	$(UV) pip install --python $(PY) --no-deps -e .
	# bqemulator loads DuckDB's spatial extension at start-up; install it from the wheel, offline.
	$(PY) -c "from duckdb_extensions import import_extension; import_extension('spatial')"
	touch $@

$(POLICY_VENV)/.installed: requirements/bootstrap.txt requirements/policy.txt
	test -x $(POLICY_VENV)/bin/python || $(PYTHON) -m venv $(POLICY_VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/bootstrap.txt
	$(UV) pip sync --python $(POLICY_VENV)/bin/python --require-hashes requirements/policy.txt
	touch $@

# checkov pins cyclonedx-python-lib below what cyclonedx-bom needs, so it gets an environment of its own.
$(CHECKOV_VENV)/.installed: requirements/bootstrap.txt requirements/checkov.txt $(VENV)/.installed
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV) pip sync --python $(CHECKOV_VENV)/bin/python --require-hashes requirements/checkov.txt
	touch $@

# Locust brings gevent, Flask and its own pytest, so it gets an environment of its own.
$(LOCUST_VENV)/.installed: requirements/locust.txt $(VENV)/.installed
	test -x $(LOCUST_VENV)/bin/python || $(PYTHON) -m venv $(LOCUST_VENV)
	$(UV) pip sync --python $(LOCUST_VENV)/bin/python --require-hashes requirements/locust.txt
	touch $@

locust-env: $(LOCUST_VENV)/.installed

# The local stack's commands, from the project's environment (no activated venv needed).
# ARGS passes options on, e.g. `make run ARGS=--all`, `make deadletters ARGS="redrive --all-fitting"`;
# STATE_DIR is where the running stack describes itself (stack.json).
ARGS ?=
STATE_DIR ?= .local
run: $(VENV)/.installed
	$(PY) -m app.local run --state-dir $(STATE_DIR) $(ARGS)

replay: $(VENV)/.installed
	$(PY) -m app.local replay --state-dir $(STATE_DIR) $(ARGS)

deadletters: $(VENV)/.installed
	$(PY) -m app.deadletters --stack-file $(STATE_DIR)/stack.json $(ARGS)

# The running stack's interactive docs (Swagger UI, served offline by the API): a URL to open.
docs: $(VENV)/.installed
	@$(PY) -c 'import json, sys; print(json.load(open(sys.argv[1]))["api_base_url"] + "/schema")' \
		$(STATE_DIR)/stack.json 2>/dev/null || { echo "no local stack running: start one with make run"; exit 1; }

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy app bench notebooks/execute.py platform/airline_platform platform/bootstrap/airline_bootstrap

# The lanes run their parts side by side (lint, types and the policy tests beside pytest, which waits a lot);
# pytest's progress shows as it runs (no --output-sync: make would hold it back until pytest ends),
# and every part runs even when another fails.
check: install
	@$(MAKE) --no-print-directory --jobs --keep-going lint typecheck tests-offline tests-policy

test: install
	@$(MAKE) --no-print-directory --jobs --keep-going lint typecheck tests-all tests-policy

tests-offline: $(VENV)/.installed
	$(PYTEST_PARALLEL) -n $(CHECK_WORKERS) -m 'not cli' $(OFFLINE_TESTS)

tests-all: $(VENV)/.installed
	$(PYTEST_PARALLEL) -n $(TEST_WORKERS)

tests-policy: $(POLICY_VENV)/.installed
	$(POLICY_VENV)/bin/pytest -q -p no:cacheprovider platform/policy/tests

# Not part of `make test`: timing belongs in a benchmark that prints numbers, not in assertions.
# Options as variables: BENCH_REPLAY_DAYS (30; 365 = the full year), BENCH_ROUNDS, BENCH_SECONDS,
# BENCH_CONNECTIONS, BENCH_IMAGE=1 (also build the image). See docs/performance.md.
bench: $(VENV)/.installed
	@command -v wrk >/dev/null || { echo "make bench needs wrk: sudo apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)"; exit 1; }
	$(PY) -m bench

# The walkthrough, full size (30 days of flights; a few minutes). `make test` runs it in its fast mode.
notebook: $(VENV)/.installed
	$(PY) -m notebooks.execute

# Before a deploy (the workflow passes STACK): GitHub's environment and branch rules are still the
# bootstrap's. Needs GITHUB_TOKEN (actions: read, contents: read) and GITHUB_REPOSITORY.
preflight: $(VENV)/.installed
	PYTHONPATH=platform/bootstrap $(PY) -m airline_bootstrap.preflight $(STACK)

plan: $(VENV)/.installed
	PYTHONPATH=platform $(PY) -m airline_platform.plan

# A pull request's cost delta, as markdown: make cost-diff BASE_PLANS=<base's plans/> HEAD_PLANS=<head's plans/>
cost-diff: $(VENV)/.installed
	PYTHONPATH=platform $(PY) -m airline_platform.cost diff --base $(BASE_PLANS) --head $(HEAD_PLANS)

# After `pulumi up` and the canary: reads the stack's outputs with the Pulumi CLI and checks the
# deployed resources through Google's APIs (Application Default Credentials; ID_TOKEN if private).
conformance: $(VENV)/.installed
	@test -n "$(STACK)" || { echo "usage: make conformance STACK=dev|staging|prod"; exit 2; }
	PYTHONPATH=platform $(PY) -m airline_platform.conformance --stack $(STACK)

# CKV_DOCKER_7 cannot resolve FROM ${BASE_IMAGE}; tests/delivery checks that ARG is pinned by digest.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework dockerfile --file Dockerfile \
		--skip-check CKV_DOCKER_7
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework github_actions --directory .github

# Declared by the runtime's libraries but never imported by the service, so kept out of the image
# (docs/performance.md#the-image): Litestar's CLI (rich, rich-click and their pygments, markdown-it-py,
# mdurl), example factories (polyfactory, faker), test client (httpx, httpcore) and htmx plugin;
# swagger-ui-py's Python side (jinja2, markupsafe: the API serves only its files); google-auth's
# pure-Python RSA fallback (pyasn1, pyasn1-modules: cryptography is installed); cffi's build-time
# parser (pycparser); Pub/Sub's optional tracing SDK (opentelemetry-sdk); download checksums
# (google-crc32c); uvicorn's h11 parser (SERVER_OPTIONS picks httptools).
# tests/integration/test_runtime_image.py serves every route from this trimmed set.
RUNTIME_NEVER_IMPORTED := faker polyfactory rich rich-click pygments markdown-it-py mdurl httpx httpcore \
	litestar-htmx jinja2 markupsafe pyasn1 pyasn1-modules pycparser opentelemetry-sdk google-crc32c h11

lock: $(VENV)/.installed
	$(UV) pip compile pyproject.toml --group platform --group local --group dev --generate-hashes --python-version 3.11 -q -o requirements/dev.txt
	$(UV) pip compile pyproject.toml --generate-hashes --python-version 3.11 -c requirements/dev.txt -q -o requirements/runtime.txt \
		$(foreach p,$(RUNTIME_NEVER_IMPORTED),--no-emit-package $(p))
	$(UV) pip compile requirements/bootstrap.in --generate-hashes --python-version 3.11 -q -o requirements/bootstrap.txt
	$(UV) pip compile platform/policy/requirements.in --generate-hashes --python-version 3.11 -q -o requirements/policy.txt
	$(UV) pip compile requirements/checkov.in --generate-hashes --python-version 3.11 -q -o requirements/checkov.txt
	$(UV) pip compile requirements/locust.in --generate-hashes --python-version 3.11 -q -o requirements/locust.txt

clean:
	rm -rf $(VENV) $(POLICY_VENV) $(CHECKOV_VENV) $(LOCUST_VENV) .local .bench plans .pytest_cache .mypy_cache .ruff_cache

# Post-deploy checks of a deployed stack, run by .github/workflows/deploy-stack.yml after `pulumi up`
# from the hash-pinned .venv (no tool installed by tag beside the deployer's token). URL is the
# service's URL; ID_TOKEN (environment) an ID token whose audience is that URL, sent both as
# Cloud Run's invoker credential (X-Serverless-Authorization) and as the publisher's (Authorization).
# Schemathesis hides both headers in its output (its sensitive markers include "auth"). Its events are
# marked synthetic (X-Synthetic), so they stay out of analysts' data (docs/api.md).
.PHONY: fuzz-deployed canary
FUZZ_ARGS ?=
fuzz-deployed: $(VENV)/.installed
	@case "$$URL" in https://*) ;; *) echo "usage: make fuzz-deployed URL=https://<service> [FUZZ_ARGS=...] with ID_TOKEN set"; exit 2;; esac
	$(VENV)/bin/schemathesis run "$$URL/schema/openapi.json" --checks all --max-examples 50 \
		--wait-for-schema 60 --continue-on-failure \
		--header "X-Serverless-Authorization: Bearer $${ID_TOKEN:?}" --header "Authorization: Bearer $${ID_TOKEN:?}" \
		--header "X-Synthetic: true" $(FUZZ_ARGS)

# The end-to-end canary (tests/e2e) against a deployed stack: URL as above; E2E_PROJECT, ID_TOKEN.
canary: $(VENV)/.installed
	@case "$$URL" in https://*) ;; *) echo "usage: make canary URL=https://<service> with E2E_PROJECT and ID_TOKEN set"; exit 2;; esac
	E2E_BASE_URL="$$URL" E2E_ID_TOKEN="$${ID_TOKEN:?}" $(VENV)/bin/pytest tests/e2e -p no:cacheprovider
