#!/usr/bin/env bash
# `make install` (Helm) and `make deploy` (kustomize) against the cluster of the current KUBECONFIG.
#
#   hack/install.sh helm       CRDs from crds/, then `helm upgrade --install` of charts/pai-operator
#   hack/install.sh kustomize  `kubectl apply -k deploy/` (CRD, namespace, RBAC, Deployment, Service)
#
# kubectl and helm come from PATH; when absent, the pinned builds from the cache (hack/build-tools.sh).
# Environment: NAMESPACE (helm; default pai-operator-system), RELEASE (default pai-operator),
# HELM_ARGS (extra helm arguments, e.g. "--set region=cn-beijing").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${HACK_DIR}/.."

tool() {  # $1: name, $2: cached path
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
  [[ -x "$2" ]] || bash hack/build-tools.sh >&2
  echo "$2"
}

kubectl_bin="$(tool kubectl "${KUBECTL}")"
context="$("${kubectl_bin}" config current-context 2>/dev/null || true)"
[[ -n "${context}" ]] || { log "no current context: set KUBECONFIG to the target cluster"; exit 1; }
log "target: context ${context} (KUBECONFIG=${KUBECONFIG:-~/.kube/config})"

case "${1:-}" in
  helm)
    helm_bin="$(tool helm "${HELM}")"
    # Helm installs crds/ only on first install and never upgrades them: apply them explicitly.
    "${kubectl_bin}" apply --server-side --force-conflicts -k crds/
    # shellcheck disable=SC2086  # HELM_ARGS is a list of arguments on purpose
    "${helm_bin}" upgrade --install "${RELEASE:-pai-operator}" charts/pai-operator \
      --namespace "${NAMESPACE:-pai-operator-system}" --create-namespace ${HELM_ARGS:-}
    ;;
  kustomize)
    "${kubectl_bin}" apply -k deploy/
    ;;
  *)
    echo "usage: $0 helm|kustomize" >&2
    exit 2
    ;;
esac
