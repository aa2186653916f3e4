# Shared helpers for hack/ scripts. Sourced, not executed.
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${HACK_DIR}/versions.env"
CACHE_ROOT="${PAI_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pai-operator}"
# Binaries are keyed by version so that bumping versions.env never reuses a stale build.
K8S_BIN_DIR="${CACHE_ROOT}/kubernetes-${KUBERNETES_VERSION}"
ETCD_BIN_DIR="${CACHE_ROOT}/etcd-${ETCD_VERSION}"
HELM_BIN_DIR="${CACHE_ROOT}/helm-${HELM_VERSION}"
ACTIONLINT_BIN_DIR="${CACHE_ROOT}/actionlint-${ACTIONLINT_VERSION}"
KUBE_APISERVER="${K8S_BIN_DIR}/kube-apiserver"
KUBECTL="${K8S_BIN_DIR}/kubectl"
ETCD="${ETCD_BIN_DIR}/etcd"
HELM="${HELM_BIN_DIR}/helm"
ACTIONLINT="${ACTIONLINT_BIN_DIR}/actionlint"

log() { printf '[hack] %s\n' "$*" >&2; }
