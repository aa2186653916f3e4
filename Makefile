# The one entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CLUSTER_DIR := $(CURDIR)/.cluster
PYTEST_ARGS ?=

.PHONY: help venv tools crds lint test unit cluster-up cluster-down demo demo-down bench e2e-kind clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "[make] creating/refreshing the virtual environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create or refresh .venv with the project and its dev/test extras

tools: ## build (or reuse from the cache) etcd, kube-apiserver, kubectl and helm
	@bash hack/build-tools.sh

crds: venv ## regenerate the CRD YAML from the Python schema (crds/ and the chart)
	@$(BIN)/python hack/gen-crds.py

lint: venv ## ruff (lint + format check) and mypy
	@$(BIN)/ruff check operator tests hack
	@$(BIN)/ruff format --check operator tests hack
	@$(BIN)/mypy

test: venv tools lint ## everything CI runs: lint, type-check, unit + contract + integration tests
	@$(BIN)/pytest $(PYTEST_ARGS)

unit: venv ## only the tests that need no control plane (fast inner loop)
	@$(BIN)/pytest tests/unit $(PYTEST_ARGS)

cluster-up: tools ## start a local control plane; prints KUBECONFIG=<path>
	@$(PYTHON) hack/controlplane.py up --dir $(CLUSTER_DIR)

cluster-down: ## stop the local control plane started by cluster-up
	@$(PYTHON) hack/controlplane.py down --dir $(CLUSTER_DIR)

clean: cluster-down ## remove the venv and build outputs (the binary cache stays)
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache

demo: venv tools ## local control plane + PAI emulator + operator, samples applied, a guided tour
	@bash hack/demo.sh

demo-down: ## stop everything `make demo` started
	@bash hack/demo-down.sh

bench: venv tools ## measure PAI calls, Kubernetes writes, latency, throughput and leader handover (writes bench/RESULTS.md)
	@$(BIN)/python hack/bench.py
	@$(BIN)/python hack/bench_ha.py

e2e-kind: ## image + kind + Helm end to end (needs Docker and kind; skips with a reason otherwise)
	@bash hack/e2e-kind.sh
