# The one entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CLUSTER_DIR := $(CURDIR)/.cluster
PYTEST_ARGS ?=
# The one version source; Chart.yaml, the Dockerfile, deploy/ and CHANGELOG.md must agree (tested).
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' operator/pai_operator/__init__.py)
IMAGE ?= ghcr.io/pai-mlops/pai-operator:$(VERSION)
PYTEST_MIN_ARGS ?=
# The oldest supported Kubernetes (hack/versions.env); `make test` runs a subset against it too.
KUBERNETES_MIN_VERSION := $(shell sed -n 's/^KUBERNETES_MIN_VERSION=//p' hack/versions.env)

.PHONY: help venv lock tools node-tools crds monitoring lint test unit cluster-up cluster-down e2e demo demo-down bench bench-quick plots chaos test-min \
	e2e-kind clean install deploy docs version dist image image-push tfy-ml-venv

##@ Develop

help: ## list the targets, grouped by purpose
	@awk 'BEGIN {FS = ":.*## "} /^##@ / {printf "\n%s\n", substr($$0, 5)} /^[a-z0-9-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Exact, hashed versions from the lock (make lock), then the project itself without resolving
# anything: an install never floats to a release nobody has tested.
$(STAMP): pyproject.toml requirements-dev.lock
	@echo "[make] creating/refreshing the virtual environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	@$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(STAMP) ## create or refresh .venv with the project and its dev/test extras (from requirements-dev.lock)

lock: ## regenerate requirements.lock and requirements-dev.lock from pyproject.toml (UPGRADE=1: newest allowed)
	@test -x $(BIN)/uv || $(MAKE) --no-print-directory venv
	@$(BIN)/python hack/lock.py

tfy-ml-venv: venv ## build (or reuse from the cache) the venv of TrueFoundry's own client for tests/contract/test_truefoundry_ml.py
	@$(BIN)/python -c "from tests.support.tfy_ml import tfy_ml_python; print(tfy_ml_python())"

tools: ## build (or reuse from the cache) etcd, kube-apiserver, kubectl, helm, actionlint, kstatus, prometheus + promtool (KUBERNETES_VERSION=vX.Y.Z overrides)
	@bash hack/build-tools.sh

lint: venv ## ruff (lint + format check), mypy, the layer contracts (import-linter), actionlint
	@$(BIN)/ruff check operator tests hack bench
	@$(BIN)/ruff format --check operator tests hack bench
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-logo --cache-dir $(VENV)/.import_linter_cache
	@bash hack/actionlint.sh

cluster-up: tools ## start a local control plane; prints KUBECONFIG=<path> (WITH_NODE=1: + kubelet on containerd, root)
	@if [[ -n "$(WITH_NODE)" ]]; then \
	  bash hack/node-deps.sh && bash hack/build-tools.sh node \
	  && $(PYTHON) hack/controlplane.py up --dir $(CLUSTER_DIR) --with-node --nodes $(WITH_NODE); \
	else \
	  $(PYTHON) hack/controlplane.py up --dir $(CLUSTER_DIR); \
	fi

cluster-down: ## stop what cluster-up started (with a node: its containers, containerd, mounts too)
	@$(PYTHON) hack/controlplane.py down --dir $(CLUSTER_DIR)

demo: venv tools ## local control plane + PAI emulator + operator, samples applied, a guided tour
	@bash hack/demo.sh

demo-down: ## stop everything `make demo` started
	@bash hack/demo-down.sh

clean: cluster-down ## remove the venv and build outputs (the binary cache stays)
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache

##@ Test

test: venv tools lint node-tools ## everything CI runs: lint, type-check, all tests (the kubelet e2e too) on the newest Kubernetes, test-min
	@$(BIN)/pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-min

# The kubelet e2e (tests/e2e/test_node.py) is part of `make test`: its Debian packages and node
# binaries are installed here, so a fresh machine runs it instead of skipping it. Without root or
# apt-get those tests skip and say what is missing.
node-tools: ## containerd, runc, buildah (hack/node-deps.sh) and the node binaries, for the kubelet e2e (root + apt-get)
	@if [[ $$(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then \
	  bash hack/node-deps.sh && bash hack/build-tools.sh node; \
	else \
	  echo "[make] node-tools skipped: needs root and apt-get; the kubelet e2e tests will skip"; \
	fi

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

e2e: venv tools ## image + Helm + a Pod on a real kubelet (containerd/runc, loopback only; root; installs hack/node-deps.sh)
	@bash hack/node-deps.sh && bash hack/build-tools.sh node
	@$(BIN)/pytest tests/e2e/test_node.py -p no:cacheprovider -rA $(PYTEST_ARGS)

e2e-kind: ## image + kind + Helm end to end (needs Docker and kind; skips with a reason otherwise)
	@bash hack/e2e-kind.sh

bench: venv tools ## PAI calls, K8s writes, latency, throughput, client cost, leader handover, scale to 20,000 and drift freshness, Models in sync (bench/RESULTS.md)
	@$(BIN)/python -m bench.economy
	@$(BIN)/python -m bench.client_cost
	@$(BIN)/python -m bench.ha
	@$(BIN)/python -m bench.scale
	@$(BIN)/python -m bench.model_sync
	@$(BIN)/python -m bench.plots

plots: venv ## draw bench/plots/*.png again from the recorded bench/data/*.json (no bench runs) and embed them in bench/RESULTS.md
	@$(BIN)/python -m bench.plots

bench-quick: venv tools ## the scale and drift benchmark at 200 objects (development; writes nothing)
	@$(BIN)/python -m bench.scale --quick

CHAOS_ARGS ?=
chaos: venv tools ## 1,000 objects through faults, kills, restarts and a PAI outage (bench/RESULTS.md; CHAOS_ARGS="--seed N")
	@$(BIN)/python -m bench.chaos $(CHAOS_ARGS)
	@$(BIN)/python -m bench.plots

##@ Build

crds: venv ## regenerate the CRD YAML from the Python schema (crds/ and the chart)
	@$(BIN)/python hack/gen-crds.py

monitoring: venv ## regenerate the alerting rules and the Grafana dashboard (hack/alerts.py, hack/dashboard.py)
	@$(BIN)/python hack/gen-monitoring.py

docs: venv ## regenerate the README's settings table from operator/pai_operator/settings.py
	@$(BIN)/python hack/gen-docs.py

version: ## print the version (pai_operator.__version__)
	@echo $(VERSION)

dist: ## release artefacts in dist/: packaged chart, install.yaml (image pinned), CRD, SHA256SUMS
	@bash hack/build-tools.sh helm kubernetes
	@bash hack/dist.sh

image: ## build the image: make image IMAGE=<registry>/<name>:<tag>; WITH_NODE=1: pai-operator:dev into the node
	@IMAGE='$(IMAGE)' WITH_NODE='$(WITH_NODE)' CLUSTER_DIR='$(CLUSTER_DIR)' bash hack/image.sh

image-push: ## build and push the image: make image-push IMAGE=<registry>/<name>:<tag>
	@IMAGE='$(IMAGE)' PUSH=1 bash hack/image.sh

##@ Deploy (to the cluster of the current KUBECONFIG)

install: ## CRDs + operator with Helm from charts/ (NAMESPACE, RELEASE, HELM_ARGS="--set k=v")
	@bash hack/install.sh helm

deploy: ## CRD + operator with kustomize: kubectl apply -k deploy/
	@bash hack/install.sh kustomize
