# Shared helpers for hack/ scripts. Sourced, not executed.
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# An explicit KUBERNETES_VERSION in the environment (e.g. `KUBERNETES_VERSION=v1.34.4 make test`)
# wins over the file, so any release can be built and run on demand; the file stays the default.
_requested_kubernetes_version="${KUBERNETES_VERSION:-}"
# shellcheck source=versions.env
source "${HACK_DIR}/versions.env"
KUBERNETES_VERSION="${_requested_kubernetes_version:-${KUBERNETES_VERSION}}"
unset _requested_kubernetes_version
if [[ ! "${KUBERNETES_VERSION}" =~ ^v1\.[0-9]+\.[0-9]+$ ]]; then
  printf '[hack] KUBERNETES_VERSION=%s is not a release (want v1.MINOR.PATCH)\n' "${KUBERNETES_VERSION}" >&2
  exit 2
fi
CACHE_ROOT="${PAI_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pai-operator}"
# Binaries are keyed by version so that bumping versions.env never reuses a stale build.
K8S_BIN_DIR="${CACHE_ROOT}/kubernetes-${KUBERNETES_VERSION}"
ETCD_BIN_DIR="${CACHE_ROOT}/etcd-${ETCD_VERSION}"
# "-kv": built with the Kubernetes version stamped (build_helm); a cache from before that
# defaulted to v1.20 and must not be reused.
HELM_BIN_DIR="${CACHE_ROOT}/helm-${HELM_VERSION}-kv"
ACTIONLINT_BIN_DIR="${CACHE_ROOT}/actionlint-${ACTIONLINT_VERSION}"
KUBE_APISERVER="${K8S_BIN_DIR}/kube-apiserver"
KUBECTL="${K8S_BIN_DIR}/kubectl"
# Opt-in node components (hack/build-tools.sh node): make cluster-up WITH_NODE=1, make e2e.
KUBELET="${K8S_BIN_DIR}/kubelet"
KUBE_CONTROLLER_MANAGER="${K8S_BIN_DIR}/kube-controller-manager"
KUBE_SCHEDULER="${K8S_BIN_DIR}/kube-scheduler"
PAUSE="${K8S_BIN_DIR}/pause"
# The project's own image storage (hack/base-image.sh, hack/image.sh): never the machine's
# /var/lib/containers, so nothing here touches images anyone else keeps.
BUILDAH_ROOT="${CACHE_ROOT}/containers/storage"
BUILDAH_RUNROOT="${CACHE_ROOT}/containers/run"
ETCD="${ETCD_BIN_DIR}/etcd"
HELM="${HELM_BIN_DIR}/helm"
ACTIONLINT="${ACTIONLINT_BIN_DIR}/actionlint"
# The kstatus checker (hack/kstatus: the kstatus library that Flux's health checks use, as a CLI the
# integration tests feed live objects). Its sources pin the library (go.mod, go.sum), so the cache
# is keyed by their content: any change to them is a new binary, never a stale one.
# hack/controlplane.py (kstatus_binary) computes the same key. A function, not a variable: most
# scripts sourcing this file never need it (nor sha256sum).
KSTATUS_SRC="${HACK_DIR}/kstatus"
kstatus_key() { cat "${KSTATUS_SRC}/go.mod" "${KSTATUS_SRC}/go.sum" "${KSTATUS_SRC}/main.go" | sha256sum | cut -c1-16; }
kstatus_binary() { printf '%s/kstatus-%s/kstatus' "${CACHE_ROOT}" "$(kstatus_key)"; }

log() { printf '[hack] %s\n' "$*" >&2; }
