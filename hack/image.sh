#!/usr/bin/env bash
# Build the operator image from the Dockerfile with whichever builder this machine has.
#
#   make image IMAGE=registry.example.com/pai-operator:0.1.0        # default: ghcr.io/pai-mlops/pai-operator:<version>
#   make image-push IMAGE=...                                        # build, then push
#   CONTAINER_TOOL=podman make image                                 # force a builder
#   make image WITH_NODE=1        # pai-operator:dev, no registry: buildah on the local Debian base
#                                 # (hack/base-image.sh), loaded into the node of make cluster-up WITH_NODE=1
#   bash hack/image.sh export <buildah image> <archive.tar> <name>   # docker-archive for `ctr import`
#
# The first of docker (with a reachable engine), podman, buildah is used. VERSION (from
# pai_operator.__version__) and REVISION (git HEAD) become the image's OCI labels. Multi-arch
# images are the release workflow's job (.github/workflows/release.yml, docker buildx).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT="$(cd "${HACK_DIR}/.." && pwd)"

VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "${ROOT}/operator/pai_operator/__init__.py")"
IMAGE="${IMAGE:-ghcr.io/pai-mlops/pai-operator:${VERSION}}"
REVISION="$(git -C "${ROOT}" rev-parse HEAD 2>/dev/null || echo unknown)"

fail() { printf 'make image: %s\n' "$*" >&2; exit 1; }
# The project's own buildah storage (hack/lib.sh), shared with hack/base-image.sh.
buildah_() { buildah --root "${BUILDAH_ROOT}" --runroot "${BUILDAH_RUNROOT}" --storage-driver overlay "$@"; }

if [[ "${1:-}" == remove ]]; then  # remove <buildah image>: what a test built for itself
  buildah_ rmi "$2" >/dev/null 2>&1 || true
  exit 0
fi
if [[ "${1:-}" == export ]]; then
  [[ $# -eq 4 ]] || fail "usage: hack/image.sh export <buildah image> <archive.tar> <name in the archive>"
  rm -f "$3"
  buildah_ push --quiet "$2" "docker-archive:$3:$4" >/dev/null || fail "buildah push $2 to $3 failed"
  exit 0
fi

if [[ -n "${WITH_NODE:-}" ]]; then
  # No registry: the Dockerfile's PYTHON_IMAGE becomes a debootstrap'ed Debian bookworm with its
  # python3 (3.11), built once into the project's storage; the Dockerfile itself is unchanged.
  IMAGE="${NODE_IMAGE:-pai-operator:dev}"
  CLUSTER_DIR="${CLUSTER_DIR:-${ROOT}/.cluster}"
  SOCKETS=("${CLUSTER_DIR}"/node*/containerd/containerd.sock)
  [[ -S "${SOCKETS[0]}" ]] || fail "no node running (${SOCKETS[0]} missing): make cluster-up WITH_NODE=1 first"
  bash "${HACK_DIR}/base-image.sh" base
  # One build at a time in the shared storage: the prune below must not remove the untagged
  # stage image of a build running next to it (two worktrees' e2e runs).
  mkdir -p "${CACHE_ROOT}"
  exec 7>"${CACHE_ROOT}/.image-build.lock"
  flock 7
  source <(sed -n 's/^BASE_IMAGE="\${BASE_IMAGE:-\(.*\)}"$/BASE_IMAGE=\1/p' "${HACK_DIR}/base-image.sh")
  start=$(date +%s)
  build_log="$(mktemp)"
  archive="$(mktemp --suffix=.tar)"
  trap 'rm -f "${archive}" "${build_log}"' EXIT
  log "building ${IMAGE} with buildah on ${BASE_IMAGE}"
  # --network host: the RUN steps fetch the locked wheels from PyPI over the host's network.
  # No --layers: buildah 1.28 reuses a cached `RUN --mount=...,from=builder` step even when the
  # builder's wheel changed (seen here: the old code shipped again), so every build is fresh.
  buildah_ bud --quiet --network host --file "${ROOT}/Dockerfile" --tag "localhost/${IMAGE}" \
    --build-arg "PYTHON_IMAGE=${BASE_IMAGE}" \
    --build-arg "VERSION=${VERSION}" --build-arg "REVISION=${REVISION}" "${ROOT}" >"${build_log}" 2>&1 \
    || { tail -40 "${build_log}" >&2; fail "buildah bud failed"; }
  # Each build leaves its builder stage and the previous image untagged: 150-320 MB a time.
  buildah_ rmi --prune >/dev/null 2>&1 || true
  size="$(buildah_ images --format '{{.Size}}' "localhost/${IMAGE}" 2>/dev/null | head -1)"
  log "built ${IMAGE} in $(( $(date +%s) - start ))s (${size:-?} uncompressed)"
  buildah_ push --quiet "localhost/${IMAGE}" "docker-archive:${archive}:docker.io/library/${IMAGE}" >/dev/null \
    || fail "buildah push to ${archive} failed"
  # The kubelet asks for docker.io/library/<name>:<tag> (the normalised form of pai-operator:dev).
  for socket in "${SOCKETS[@]}"; do
    ctr --address "${socket}" --namespace k8s.io images import "${archive}" >/dev/null \
      || fail "ctr images import into ${socket} failed"
  done
  log "loaded docker.io/library/${IMAGE} into the containerd of ${#SOCKETS[@]} node(s)"
  exit 0
fi

if [[ -z "${CONTAINER_TOOL:-}" ]]; then
  for candidate in docker podman buildah; do
    command -v "${candidate}" >/dev/null 2>&1 || continue
    # A docker CLI without an engine (common in CI sandboxes) cannot build; try the next one.
    if [[ "${candidate}" == docker ]] && ! docker info >/dev/null 2>&1; then
      log "docker CLI found but no engine is reachable (docker info failed); trying podman/buildah"
      continue
    fi
    CONTAINER_TOOL="${candidate}"
    break
  done
fi
[[ -n "${CONTAINER_TOOL:-}" ]] || fail "no container builder found (looked for docker with a running engine, podman, buildah).
Install one of them, or set CONTAINER_TOOL=<path>. Released images are built by .github/workflows/release.yml."
command -v "${CONTAINER_TOOL}" >/dev/null 2>&1 || fail "CONTAINER_TOOL=${CONTAINER_TOOL} is not an executable on PATH"

case "$(basename "${CONTAINER_TOOL}")" in
  buildah) verb=bud ;;   # `buildah build` only exists since 1.23; `bud` works everywhere
  *) verb=build ;;
esac
log "building ${IMAGE} (version ${VERSION}, revision ${REVISION}) with ${CONTAINER_TOOL}"
"${CONTAINER_TOOL}" "${verb}" --file "${ROOT}/Dockerfile" --tag "${IMAGE}" \
  --build-arg "VERSION=${VERSION}" --build-arg "REVISION=${REVISION}" "${ROOT}" \
  || fail "${CONTAINER_TOOL} ${verb} failed"
if [[ -n "${PUSH:-}" ]]; then
  log "pushing ${IMAGE}"
  "${CONTAINER_TOOL}" push "${IMAGE}" || fail "${CONTAINER_TOOL} push ${IMAGE} failed (logged in to the registry?)"
fi
