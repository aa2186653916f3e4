#!/usr/bin/env bash
# Release artefacts for the version in operator/pai_operator/__init__.py, written to dist/:
#
#   pai-operator-<version>.tgz          the Helm chart (`helm package`; chart version = app version)
#   install.yaml                        CRD + namespace + RBAC + Deployment + Service, rendered from
#                                       deploy/ (kustomize) with the image pinned to <repository>:<version>
#   pai.mlops.dev_modelversions.yaml    the generated CRD on its own (for upgrades: Helm never upgrades CRDs)
#   SHA256SUMS                          checksums of the three
#
#   make dist                                            # or: bash hack/dist.sh
#   DIST_DIR=/tmp/out IMAGE_REPOSITORY=registry.example.com/pai-operator make dist
#
# Uses the cached kubectl and helm from hack/build-tools.sh (falls back to the ones on PATH).
# Nothing here edits the source tree: the chart is packaged from a copy when the repository is
# overridden, and the kustomize override lives in a scratch directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT="$(cd "${HACK_DIR}/.." && pwd)"

DIST_DIR="${DIST_DIR:-${ROOT}/dist}"
DEFAULT_REPOSITORY=ghcr.io/pai-mlops/pai-operator
IMAGE_REPOSITORY="${IMAGE_REPOSITORY:-${DEFAULT_REPOSITORY}}"
CRD_FILE="${ROOT}/crds/pai.mlops.dev_modelversions.yaml"

[[ -x "${KUBECTL}" ]] || KUBECTL="$(command -v kubectl || true)"
[[ -x "${HELM}" ]] || HELM="$(command -v helm || true)"
[[ -n "${KUBECTL}" ]] || { log "kubectl not found: run make tools"; exit 1; }
[[ -n "${HELM}" ]] || { log "helm not found: run make tools"; exit 1; }

# The one version source. Everything else must agree with it (tests/unit/test_version.py checks
# the files; here a disagreement stops the release instead of shipping mixed versions).
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "${ROOT}/operator/pai_operator/__init__.py")"
[[ -n "${VERSION}" ]] || { log "no __version__ in operator/pai_operator/__init__.py"; exit 1; }
chart_field() { sed -n "s/^$1: *\"\{0,1\}\([^\"]*\)\"\{0,1\} *$/\1/p" "${ROOT}/charts/pai-operator/Chart.yaml"; }
for field in version appVersion; do
  if [[ "$(chart_field "${field}")" != "${VERSION}" ]]; then
    log "charts/pai-operator/Chart.yaml ${field} is '$(chart_field "${field}")', __version__ is '${VERSION}'"
    exit 1
  fi
done

WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT
mkdir -p "${DIST_DIR}"
rm -f "${DIST_DIR}"/pai-operator-*.tgz "${DIST_DIR}/install.yaml" \
  "${DIST_DIR}/$(basename "${CRD_FILE}")" "${DIST_DIR}/SHA256SUMS"

log "pai-operator ${VERSION}: image ${IMAGE_REPOSITORY}:${VERSION} -> ${DIST_DIR}"

# --- chart ----------------------------------------------------------------------------------------
CHART_SRC="${ROOT}/charts/pai-operator"
if [[ "${IMAGE_REPOSITORY}" != "${DEFAULT_REPOSITORY}" ]]; then
  # A fork publishing elsewhere: the packaged chart must default to where its image really is.
  cp -R "${CHART_SRC}" "${WORK}/pai-operator"
  CHART_SRC="${WORK}/pai-operator"
  sed -i "s#^  repository: ${DEFAULT_REPOSITORY}\$#  repository: ${IMAGE_REPOSITORY}#" "${CHART_SRC}/values.yaml"
  grep -q "^  repository: ${IMAGE_REPOSITORY}\$" "${CHART_SRC}/values.yaml" \
    || { log "could not set image.repository in the chart copy"; exit 1; }
fi
"${HELM}" lint --strict "${CHART_SRC}" >/dev/null
"${HELM}" package "${CHART_SRC}" --destination "${DIST_DIR}" >/dev/null

# --- install.yaml ---------------------------------------------------------------------------------
# kustomize accepts other kustomization directories by relative path (never single files), so the
# scratch overlay points back at deploy/ and only re-pins the image and adds the version label.
OVERLAY="${WORK}/install"
mkdir -p "${OVERLAY}"
cat >"${OVERLAY}/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="${OVERLAY}" "${ROOT}/deploy")
labels:
  - pairs:
      app.kubernetes.io/version: "${VERSION}"
    includeSelectors: false
images:
  - name: ${DEFAULT_REPOSITORY}
    newName: ${IMAGE_REPOSITORY}
    newTag: "${VERSION}"
YAML
{
  echo "# pai-operator ${VERSION}: CRD, namespace pai-operator-system, ServiceAccount, cluster-wide RBAC,"
  echo "# Deployment (image ${IMAGE_REPOSITORY}:${VERSION}) and metrics Service. Rendered by hack/dist.sh"
  echo "# from deploy/; do not edit. Create the credentials Secret first (see the README), then:"
  echo "#   kubectl apply --server-side -f install.yaml"
  "${KUBECTL}" kustomize "${OVERLAY}"
} >"${DIST_DIR}/install.yaml"
# The override must have matched: a renamed image in deploy/ would otherwise ship unpinned.
grep -q "image: ${IMAGE_REPOSITORY}:${VERSION}\$" "${DIST_DIR}/install.yaml" \
  || { log "install.yaml does not pin ${IMAGE_REPOSITORY}:${VERSION}"; exit 1; }

# --- CRD and checksums ----------------------------------------------------------------------------
cp "${CRD_FILE}" "${DIST_DIR}/"
(cd "${DIST_DIR}" && sha256sum "pai-operator-${VERSION}.tgz" install.yaml "$(basename "${CRD_FILE}")" >SHA256SUMS)
ls -l "${DIST_DIR}" >&2
