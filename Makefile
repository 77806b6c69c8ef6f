# Trending Now — developer entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
BUILD ?= build

.PHONY: help venv demo test lint format compile bench clean

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

demo: venv ## Run the whole loop locally: data, Feast, KFP (kfp.local), registry, KServe
	$(BIN)/trending demo

test: venv ## Run the test suite (cluster tests skip without a cluster)
	$(BIN)/pytest $(PYTEST_ARGS)

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

clean: ## Remove build output and local state (keeps .venv)
	rm -rf $(BUILD) .trending .pytest_cache
