# streamgate: `make run` serves locally (echo upstream), `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8080
KEYS_FILE ?= .local/keys.json

.PHONY: run test lint venv dev-venv clean package-aws openapi terraform-checks hardening bench bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@ $(VENV)/.runtime

venv: $(VENV)/.runtime
dev-venv: $(VENV)/.dev

# Serves exactly what is deployed: functions-framework's ASGI mode, one event loop. (Deployed, Cloud
# Run sends an instance at most 250 concurrent requests: Terraform's max_instance_request_concurrency.)
run: venv
	@$(BIN)/python -m tools.devkey $(KEYS_FILE)
	STREAMGATE_KEYS=$${STREAMGATE_KEYS:-$(KEYS_FILE)} STREAMGATE_UPSTREAM=$${STREAMGATE_UPSTREAM:-echo} \
	FUNCTION_USE_ASGI=true $(BIN)/functions-framework --target gateway --port $(PORT)

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build

# The AWS Lambda deployment zip (runtime dependencies only) that terraform/aws uploads.
package-aws: venv
	$(BIN)/python -m tools.package_aws

# Regenerate terraform/gcp/openapi.yaml.tftpl from the route table (a test fails when it is stale).
openapi: venv
	$(BIN)/python -m tools.openapi

# terraform fmt -check (when a terraform binary is present) and checkov in its own venv.
terraform-checks:
	bash .ci/terraform-checks.sh

# The hardening report: larger fuzz, hostile-input, fault and disconnect runs, then a table (~2 min).
hardening: dev-venv
	$(BIN)/python -m tools.hardening

# The benchmark: gateway vs nginx vs the upstream directly; writes bench/RESULTS.md and bench/latency.png.
bench: venv
	bash bench/run.sh

# Every scenario at tiny sizes (~20 s): proves the benchmark runs; no timing verdicts in its exit code.
bench-quick: venv
	bash bench/run.sh --quick
