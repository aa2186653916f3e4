#!/usr/bin/env bash
# End to end on a throwaway kind cluster: build the image, load it into kind, run the PAI emulator
# in-cluster from the same image, install the chart with Helm, apply a sample and wait for Ready.
#
#   make e2e-kind                      # or: bash hack/e2e-kind.sh
#   KEEP_CLUSTER=1 make e2e-kind       # leave the cluster running for inspection
#
# Needs docker (with a running engine), kind, kubectl and helm (the cached hack/ builds are used
# when present). Without a Docker engine or kind it exits 0 with "skipped: ..." so `make test`
# stays green on machines that cannot run it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT="$(cd "${HACK_DIR}/.." && pwd)"

CLUSTER="${KIND_CLUSTER_NAME:-pai-operator-e2e}"
IMAGE="${E2E_IMAGE:-pai-operator:e2e}"
NS_OPERATOR=pai-operator-system
NS_MODELS=pai-e2e
AK_ID=LTAIe2eEmulatorKey   # emulator-only credentials, never valid against Alibaba Cloud
AK_SECRET=e2e-emulator-secret
MODEL_ID=model-abc123

skip() { echo "skipped: $*"; exit 0; }
command -v docker >/dev/null 2>&1 || skip "no Docker engine (docker CLI not found)"
docker info >/dev/null 2>&1 || skip "no Docker engine (docker info failed: is the daemon running?)"
command -v kind >/dev/null 2>&1 || skip "kind not found (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
[[ -x "${KUBECTL}" ]] || KUBECTL="$(command -v kubectl || true)"
[[ -x "${HELM}" ]] || HELM="$(command -v helm || true)"
[[ -n "${KUBECTL}" ]] || skip "kubectl not found (run make tools)"
[[ -n "${HELM}" ]] || skip "helm not found (run make tools)"

WORK="$(mktemp -d)"
export KUBECONFIG="${WORK}/kubeconfig"
cleanup() {
  local rc=$?
  if [[ ${rc} -ne 0 ]]; then
    log "FAILED; operator logs and objects:"
    "${KUBECTL}" -n "${NS_OPERATOR}" logs deployment/pai-operator --tail=200 || true
    "${KUBECTL}" -n "${NS_MODELS}" get modelversions -o yaml || true
  fi
  if [[ -z "${KEEP_CLUSTER:-}" ]]; then kind delete cluster --name "${CLUSTER}" >/dev/null 2>&1 || true; fi
  rm -rf "${WORK}"
  exit "${rc}"
}
trap cleanup EXIT

log "building ${IMAGE}"
docker build -t "${IMAGE}" --build-arg REVISION="$(git -C "${ROOT}" rev-parse --short HEAD 2>/dev/null || echo unknown)" "${ROOT}"

log "creating kind cluster ${CLUSTER}"
kind create cluster --name "${CLUSTER}" --kubeconfig "${KUBECONFIG}" --wait 120s
kind load docker-image --name "${CLUSTER}" "${IMAGE}"

"${KUBECTL}" create namespace "${NS_OPERATOR}"
"${KUBECTL}" create namespace "${NS_MODELS}"

log "starting the PAI emulator in-cluster (same image, pai-emulator entrypoint)"
"${KUBECTL}" -n "${NS_OPERATOR}" apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: pai-emulator}
spec:
  replicas: 1
  selector: {matchLabels: {app: pai-emulator}}
  template:
    metadata: {labels: {app: pai-emulator}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: emulator
          image: ${IMAGE}
          imagePullPolicy: Never
          command: ["pai-emulator", "--host", "0.0.0.0", "--port", "8089",
                    "--access-key", "${AK_ID}:${AK_SECRET}", "--model", "${MODEL_ID}"]
          ports: [{containerPort: 8089}]
          readinessProbe: {tcpSocket: {port: 8089}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: ["ALL"]}
---
apiVersion: v1
kind: Service
metadata: {name: pai-emulator}
spec:
  selector: {app: pai-emulator}
  ports: [{port: 8089, targetPort: 8089}]
YAML
"${KUBECTL}" -n "${NS_OPERATOR}" rollout status deployment/pai-emulator --timeout=120s

log "installing the chart"
"${KUBECTL}" -n "${NS_OPERATOR}" create secret generic pai-operator-credentials \
  --from-literal=access-key-id="${AK_ID}" --from-literal=access-key-secret="${AK_SECRET}"
"${HELM}" install pai-operator "${ROOT}/charts/pai-operator" -n "${NS_OPERATOR}" \
  --set fullnameOverride=pai-operator \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=Never \
  --set endpoint="http://pai-emulator.${NS_OPERATOR}.svc:8089" \
  --set logFormat=plain --set resyncInterval=30 \
  --wait --timeout 180s

log "applying a sample ModelVersion"
"${KUBECTL}" -n "${NS_MODELS}" apply -f "${ROOT}/samples/modelversion-1.0.0.yaml"
"${KUBECTL}" -n "${NS_MODELS}" wait --for=condition=Ready modelversion --all --timeout=180s
"${KUBECTL}" -n "${NS_MODELS}" get modelversions -o wide

log "deleting it (the finalizer must release once the version is gone in PAI)"
"${KUBECTL}" -n "${NS_MODELS}" delete -f "${ROOT}/samples/modelversion-1.0.0.yaml" --timeout=120s
log "e2e-kind passed"
