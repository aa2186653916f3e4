#!/usr/bin/env bash
# Build the operator image from the Dockerfile with whichever builder this machine has.
#
#   make image IMAGE=registry.example.com/pai-operator:0.1.0        # default: ghcr.io/pai-mlops/pai-operator:<version>
#   make image-push IMAGE=...                                        # build, then push
#   CONTAINER_TOOL=podman make image                                 # force a builder
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
