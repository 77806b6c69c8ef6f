# Trending Now — developer entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
BUILD ?= build
# Tests outside the fast tier carry one of these markers (declared in pyproject.toml).
FAST_MARKERS ?= not integration and not slow and not boot and not tools and not e2e
# The fast tier's temp folders (tmp_path) sit in memory when there is /dev/shm and no TMPDIR: the
# registry's local store fsyncs every object it writes, which on a busy shared disk was most of the
# registry and canary tests' wall time.
FAST_TMPDIR ?= $(or $(TMPDIR),$(if $(wildcard /dev/shm/.),/dev/shm,/tmp))

# Debian packages the integration tests and the demo use (real Prometheus, Alertmanager, promtool).
DEB_PACKAGES ?= prometheus prometheus-alertmanager redis-server bubblewrap
DEB_COMMANDS ?= prometheus prometheus-alertmanager promtool redis-server bwrap

.PHONY: help venv system-deps demo test test-fast lint format compile bench clean cluster-up cluster-down e2e

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

# The venv is rebuilt whenever the lock or the project metadata changes.
$(BIN)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (found %s); set PYTHON=/path/to/python3.11" % sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed ## Create .venv and install the locked dependencies

system-deps: ## Install the Debian packages for the monitoring tests and demo (if missing)
	@missing=""; for c in $(DEB_COMMANDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing $(DEB_PACKAGES) (missing:$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null; \
	else \
	  echo "missing:$$missing — install the Debian/Ubuntu packages: sudo apt-get install $(DEB_PACKAGES)"; \
	  echo "(tests that need them are skipped until then)"; \
	fi

demo: venv system-deps ## Run the whole loop locally: data, Feast, KFP (kfp.local), registry, KServe
	$(BIN)/trending demo

test: venv system-deps ## Run the test suite (cluster tests skip without a cluster)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: venv ## The fast tier (<= 90 s): no services started, no model trained beyond a few rows
	TMPDIR=$(FAST_TMPDIR) $(BIN)/pytest -m "$(FAST_MARKERS)" tests/unit tests/data tests/model $(PYTEST_ARGS)

lint: venv ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

compile: venv ## Compile every pipeline into $(BUILD)/pipelines
	$(BIN)/trending pipeline compile --output-dir $(BUILD)/pipelines

bench: venv ## Run the benchmarks; results go to benchmarks/results/
	$(BIN)/python -m benchmarks

cluster-up: ## Create the kind cluster (KServe, KFP, Prometheus Operator) and deploy with skaffold
	hack/cluster-up.sh

cluster-down: ## Delete the kind cluster
	hack/cluster-down.sh

e2e: venv ## Run the cluster tests against the current kind cluster
	$(BIN)/pytest -m e2e tests/e2e $(PYTEST_ARGS)

clean: ## Remove build output and local state (keeps .venv)
	rm -rf $(BUILD) .trending .pytest_cache
