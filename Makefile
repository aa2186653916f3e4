# The one entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CLUSTER_DIR := $(CURDIR)/.cluster
PYTEST_ARGS ?=
PYTEST_MIN_ARGS ?=
# The oldest supported Kubernetes (hack/versions.env); `make test` runs a subset against it too.
KUBERNETES_MIN_VERSION := $(shell sed -n 's/^KUBERNETES_MIN_VERSION=//p' hack/versions.env)

.PHONY: help venv tools crds lint test test-min unit cluster-up cluster-down demo demo-down bench e2e-kind clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "[make] creating/refreshing the virtual environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create or refresh .venv with the project and its dev/test extras

tools: ## build (or reuse from the cache) etcd, kube-apiserver, kubectl and helm (KUBERNETES_VERSION=vX.Y.Z overrides)
	@bash hack/build-tools.sh

crds: venv ## regenerate the CRD YAML from the Python schema (crds/ and the chart)
	@$(BIN)/python hack/gen-crds.py

lint: venv ## ruff (lint + format check) and mypy
	@$(BIN)/ruff check operator tests hack
	@$(BIN)/ruff format --check operator tests hack
	@$(BIN)/mypy

test: venv tools lint ## everything CI runs: lint, type-check, all tests on the newest Kubernetes, test-min
	@$(BIN)/pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-min

# The tests marked min_kubernetes (CRD, chart, kustomize, RBAC, operator lifecycle) on a second
# control plane of the oldest supported release. Its own pytest run because the control plane
# is one per session. Skipped for a foreign cluster: it would only test that cluster twice.
test-min: venv ## the install + lifecycle subset against KUBERNETES_MIN_VERSION (built and cached like tools)
	@if [[ -n "$${PAI_TEST_KUBECONFIG:-}" ]]; then \
	  echo "[make] test-min skipped: PAI_TEST_KUBECONFIG names a cluster of its own"; \
	else \
	  KUBERNETES_VERSION=$(KUBERNETES_MIN_VERSION) bash hack/build-tools.sh \
	  && KUBERNETES_VERSION=$(KUBERNETES_MIN_VERSION) $(BIN)/pytest -m min_kubernetes tests/integration $(PYTEST_MIN_ARGS); \
	fi

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

bench: venv tools ## measure PAI calls, Kubernetes writes, latency and throughput (writes bench/RESULTS.md)
	@$(BIN)/python hack/bench.py

e2e-kind: ## image + kind + Helm end to end (needs Docker and kind; skips with a reason otherwise)
	@bash hack/e2e-kind.sh
