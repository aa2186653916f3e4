#!/usr/bin/env bash
# Build etcd, kube-apiserver, kubectl, helm, actionlint and the kstatus checker from Go modules,
# once per version.
#
#   bash hack/build-tools.sh                  # all of them (make tools)
#   bash hack/build-tools.sh actionlint       # only the named ones: actionlint kstatus etcd helm kubernetes
#   bash hack/build-tools.sh node             # opt-in, never in the default set: kubelet,
#                                             # kube-controller-manager, kube-scheduler and the
#                                             # pause binary for `make cluster-up WITH_NODE=1` / `make e2e`
#
# Idempotent: a tool whose binary is already in the cache is not rebuilt. Binaries are built
# in a scratch directory and moved into the cache only when complete, so an interrupted build
# never leaves a half-written binary that a later run would trust.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL_TOOLS=(actionlint kstatus etcd helm kubernetes)  # cheapest first: `make lint` waits on the lock below
# Only when named: `make test` needs none of them unless the machine can run a node (make e2e).
OPTIONAL_TOOLS=(node)
TOOLS=("$@")
[[ ${#TOOLS[@]} -gt 0 ]] || TOOLS=("${ALL_TOOLS[@]}")

binaries_of() {  # $1: tool name -> its cached binaries
  case "$1" in
    actionlint) echo "${ACTIONLINT}" ;;
    kstatus) echo "${KSTATUS}" ;;
    etcd) echo "${ETCD}" ;;
    helm) echo "${HELM}" ;;
    kubernetes) echo "${KUBE_APISERVER} ${KUBECTL}" ;;
    node) echo "${KUBELET} ${KUBE_CONTROLLER_MANAGER} ${KUBE_SCHEDULER} ${PAUSE}" ;;
  esac
}
KSTATUS="$(kstatus_binary)"
for tool in "${TOOLS[@]}"; do
  [[ " ${ALL_TOOLS[*]} ${OPTIONAL_TOOLS[*]} " == *" ${tool} "* ]] \
    || { log "unknown tool '${tool}' (known: ${ALL_TOOLS[*]} ${OPTIONAL_TOOLS[*]})"; exit 2; }
done

# Everything requested already cached: return without the lock, so `make lint` does not queue
# behind another shell's 15-minute cold Kubernetes build. Safe: see publish() below.
all_cached=1
for tool in "${TOOLS[@]}"; do
  for bin in $(binaries_of "${tool}"); do [[ -x "${bin}" ]] || all_cached=0; done
done
[[ ${all_cached} -eq 1 ]] && exit 0

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
mkdir -p "${CACHE_ROOT}"
# One builder at a time per cache (parallel `make test` runs would otherwise race).
exec 9>"${CACHE_ROOT}/.build.lock"
flock 9

publish() {  # $1: built binary, $2: its place in the cache
  # Copy next to the target, then rename: a rename within one filesystem is atomic, whereas a
  # plain mv from /tmp may be a copy that a lock-free reader could catch half-written.
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.partial" && mv -f "$2.partial" "$2"
}

scratch_module() {  # $1: directory; creates an empty module to hang requirements on
  rm -rf "$1" && mkdir -p "$1"
  (cd "$1" && go mod init pai-operator.local/toolbuild >/dev/null 2>&1)
}

build_etcd() {
  [[ -x "${ETCD}" ]] && { log "etcd ${ETCD_VERSION}: cached (${ETCD})"; return; }
  log "etcd ${ETCD_VERSION}: building from go.etcd.io/etcd/server/v3 ..."
  local work; work="$(mktemp -d)"
  scratch_module "${work}/m"
  # etcd's server module carries replace directives (go install refuses it); a requiring
  # module ignores them and takes the published sibling modules instead.
  (cd "${work}/m" && go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" \
    && go build -trimpath -ldflags "-s -w" -o "${work}/etcd" go.etcd.io/etcd/server/v3)
  publish "${work}/etcd" "${ETCD}"
  rm -rf "${work}"
  log "etcd ${ETCD_VERSION}: done"
}

kubernetes_module() {  # $1: directory, $2...: k8s.io/kubernetes/cmd/<name> to build; sets KUBE_LDFLAGS
  scratch_module "$1"
  cd "$1"
  go mod edit -require="k8s.io/kubernetes@${KUBERNETES_VERSION}"
  # k8s.io/kubernetes replaces every staging module with ./staging/src/...; those replaces do
  # not apply to a requiring module, so pin each one to its published twin v0.<minor>.<patch>.
  # The module list comes from the release's own go.mod, never from a hand-kept list.
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  local mod
  for mod in $(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/.*#\1#p' "${gomod}"); do
    go mod edit -replace="${mod}=${mod}@${staging_version}"
  done
  shift
  local cmd gets=()
  for cmd in "$@"; do gets+=("k8s.io/kubernetes/cmd/${cmd}@${KUBERNETES_VERSION}"); done
  go get "${gets[@]}"
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local pkg
  KUBE_LDFLAGS="-s -w"
  # The same variables Kubernetes' own hack/lib/version.sh stamps, so /version and
  # `kubectl version` report the pinned release instead of v0.0.0-master.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    KUBE_LDFLAGS+=" -X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    KUBE_LDFLAGS+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  done
}

build_kubernetes() {
  if [[ -x "${KUBE_APISERVER}" && -x "${KUBECTL}" ]]; then
    log "kubernetes ${KUBERNETES_VERSION}: cached (${K8S_BIN_DIR})"; return
  fi
  log "kubernetes ${KUBERNETES_VERSION}: building kube-apiserver and kubectl (the slow part; ~10-20 min cold on 2 cores) ..."
  local work; work="$(mktemp -d)"
  kubernetes_module "${work}/m" kube-apiserver kubectl
  local ldflags="${KUBE_LDFLAGS}"
  log "kubernetes ${KUBERNETES_VERSION}: compiling kube-apiserver ..."
  go build -trimpath -ldflags "${ldflags}" -o "${work}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  log "kubernetes ${KUBERNETES_VERSION}: compiling kubectl ..."
  go build -trimpath -ldflags "${ldflags}" -o "${work}/kubectl" k8s.io/kubernetes/cmd/kubectl
  cd - >/dev/null
  publish "${work}/kube-apiserver" "${KUBE_APISERVER}" && publish "${work}/kubectl" "${KUBECTL}"
  rm -rf "${work}"
  log "kubernetes ${KUBERNETES_VERSION}: done"
}

# The node components, same module setup and version stamps as kube-apiserver (one release, so
# the kubelet is trivially within the supported skew), plus hack/pause.go: the sandbox ("pause")
# image cannot be pulled here, so hack/base-image.sh wraps this binary in a one-layer image.
build_node() {
  if [[ -x "${KUBELET}" && -x "${KUBE_CONTROLLER_MANAGER}" && -x "${KUBE_SCHEDULER}" && -x "${PAUSE}" ]]; then
    log "node ${KUBERNETES_VERSION}: cached (${K8S_BIN_DIR})"; return
  fi
  log "node ${KUBERNETES_VERSION}: building kubelet, kube-controller-manager, kube-scheduler, pause ..."
  local work; work="$(mktemp -d)"
  kubernetes_module "${work}/m" kubelet kube-controller-manager kube-scheduler
  local cmd
  for cmd in kubelet kube-controller-manager kube-scheduler; do
    log "node ${KUBERNETES_VERSION}: compiling ${cmd} ..."
    go build -trimpath -ldflags "${KUBE_LDFLAGS}" -o "${work}/${cmd}" "k8s.io/kubernetes/cmd/${cmd}"
  done
  cd - >/dev/null
  (cd "${work}/m" && cp "${HACK_DIR}/pause.go" ./pause.go && go build -trimpath -ldflags "-s -w" -o "${work}/pause" ./pause.go)
  publish "${work}/kubelet" "${KUBELET}" && publish "${work}/kube-controller-manager" "${KUBE_CONTROLLER_MANAGER}"
  publish "${work}/kube-scheduler" "${KUBE_SCHEDULER}" && publish "${work}/pause" "${PAUSE}"
  rm -rf "${work}"
  log "node ${KUBERNETES_VERSION}: done"
}

build_helm() {
  [[ -x "${HELM}" ]] && { log "helm ${HELM_VERSION}: cached (${HELM})"; return; }
  log "helm ${HELM_VERSION}: building from helm.sh/helm/v3 ..."
  local work; work="$(mktemp -d)"
  scratch_module "${work}/m"
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  (cd "${work}/m" && go get "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
  # Helm's own Makefile stamps the Kubernetes version `helm template`/`lint` assume without a
  # cluster (v1.<client-go minor>.0); unstamped it is v1.20.0, which the chart's kubeVersion rejects.
  local client_go pkg
  client_go="$(cd "${work}/m" && go list -m -f '{{.Version}}' k8s.io/client-go)"
  client_go="${client_go#v0.}"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${client_go%%.*}"
  done
  (cd "${work}/m" && go build -trimpath -ldflags "${ldflags}" -o "${work}/helm" helm.sh/helm/v3/cmd/helm)
  publish "${work}/helm" "${HELM}"
  rm -rf "${work}"
  log "helm ${HELM_VERSION}: done"
}

build_actionlint() {
  [[ -x "${ACTIONLINT}" ]] && { log "actionlint ${ACTIONLINT_VERSION}: cached (${ACTIONLINT})"; return; }
  log "actionlint ${ACTIONLINT_VERSION}: building from github.com/rhysd/actionlint (~20 s cold) ..."
  local work; work="$(mktemp -d)"
  # `go install pkg@version` works here (actionlint has no replace directives) and, unlike a build
  # from a scratch module, records the module version, so `actionlint -version` reports the pin.
  GOBIN="${work}" go install -trimpath -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
  publish "${work}/actionlint" "${ACTIONLINT}"
  rm -rf "${work}"
  log "actionlint ${ACTIONLINT_VERSION}: done"
}

# hack/kstatus: a module of its own whose go.mod and go.sum pin sigs.k8s.io/cli-utils; built
# from its sources here (not go install), since it is ours. ~1 min cold on 2 cores, modules
# downloaded included (measured: 64 s).
build_kstatus() {
  [[ -x "${KSTATUS}" ]] && { log "kstatus: cached (${KSTATUS})"; return; }
  log "kstatus: building hack/kstatus (sigs.k8s.io/cli-utils $(sed -n 's#^[[:space:]]*sigs.k8s.io/cli-utils \(v[^[:space:]]*\).*#\1#p' "${KSTATUS_SRC}/go.mod")) ..."
  local work; work="$(mktemp -d)"
  # -mod=readonly: go.sum is the pin; a build must never rewrite the checked-in module files.
  (cd "${KSTATUS_SRC}" && GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -ldflags "-s -w" -o "${work}/kstatus" .)
  publish "${work}/kstatus" "${KSTATUS}"
  rm -rf "${work}"
  log "kstatus: done (${KSTATUS})"
}

start=$(date +%s)
for tool in "${TOOLS[@]}"; do
  "build_${tool}"
done
log "tools ready in $(( $(date +%s) - start ))s under ${CACHE_ROOT}"
