#!/usr/bin/env bash
# Local images for a machine that cannot pull from any registry, built from Debian packages and
# hack/build-tools.sh output into the project's own buildah storage (never /var/lib/containers):
#
#   localhost/pai-operator-base:bookworm-python3.11   Debian bookworm (debootstrap --variant=minbase)
#       with python3 (3.11), python3-venv and pip: the Dockerfile's PYTHON_IMAGE for `make image`
#   localhost/pai-operator-pause:local               one static binary (hack/pause.go): the Pod
#       sandbox image of the local node (containerd's sandbox_image)
#
#   bash hack/base-image.sh [base|pause]...    # default: both; each is built once and reused
#
# Needs root, debootstrap and buildah (hack/node-deps.sh). Packages come from the Debian mirror
# apt already uses (DEBIAN_MIRROR overrides).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASE_IMAGE="${BASE_IMAGE:-localhost/pai-operator-base:bookworm-python3.11}"
PAUSE_IMAGE="${PAUSE_IMAGE:-localhost/pai-operator-pause:local}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
buildah_() { buildah --root "${BUILDAH_ROOT}" --runroot "${BUILDAH_RUNROOT}" --storage-driver overlay "$@"; }

[[ ${EUID} -eq 0 ]] || { log "base-image: must run as root (debootstrap, buildah)"; exit 1; }
for bin in buildah debootstrap; do
  command -v "${bin}" >/dev/null 2>&1 || { log "base-image: ${bin} missing (run: bash hack/node-deps.sh)"; exit 1; }
done
mkdir -p "${CACHE_ROOT}"
# One builder at a time (two worktrees' e2e runs share this storage).
exec 8>"${CACHE_ROOT}/.images.lock"
flock 8
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(base pause)

build_base() {
  if buildah_ inspect --type image "${BASE_IMAGE}" >/dev/null 2>&1; then
    log "base-image: ${BASE_IMAGE} cached"; return
  fi
  local start work; start=$(date +%s); work="$(mktemp -d)"
  log "base-image: debootstrap bookworm (minbase + python3) from ${DEBIAN_MIRROR} ..."
  # python-is-python3: the Dockerfile says `python`; python3-pip: its builder stage runs `pip wheel`.
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    bookworm "${work}/rootfs" "${DEBIAN_MIRROR}" >"${work}/debootstrap.log" 2>&1 \
    || { tail -20 "${work}/debootstrap.log" >&2; rm -rf "${work}"; exit 1; }
  # The machine's own extra CA certificates (a TLS-intercepting egress proxy, as here): without
  # them the image build's pip cannot reach PyPI. This base never leaves the machine; ENV PIP_CERT
  # below makes the venv's own pip (certifi bundle) use the system bundle too.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "${work}/rootfs/usr/local/share/ca-certificates/"
    chroot "${work}/rootfs" update-ca-certificates >/dev/null
  fi
  # What an official slim image also leaves out: package lists, caches, docs.
  rm -rf "${work}/rootfs"/var/lib/apt/lists/* "${work}/rootfs"/var/cache/apt/* \
    "${work}/rootfs"/usr/share/doc/* "${work}/rootfs"/usr/share/man/* "${work}/rootfs"/usr/share/locale/*
  local ctr mnt
  ctr="$(buildah_ from scratch)"
  mnt="$(buildah_ mount "${ctr}")"
  cp -a "${work}/rootfs/." "${mnt}/"
  buildah_ umount "${ctr}" >/dev/null
  buildah_ config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt --env LANG=C.UTF-8 --cmd python3 \
    --label org.opencontainers.image.description="Debian bookworm minbase + python3 (local, debootstrap)" "${ctr}"
  buildah_ commit --quiet --rm "${ctr}" "${BASE_IMAGE}" >/dev/null
  rm -rf "${work}"
  log "base-image: ${BASE_IMAGE} built in $(( $(date +%s) - start ))s"
}

build_pause() {
  if buildah_ inspect --type image "${PAUSE_IMAGE}" >/dev/null 2>&1; then
    log "base-image: ${PAUSE_IMAGE} cached"; return
  fi
  [[ -x "${PAUSE}" ]] || bash "${HACK_DIR}/build-tools.sh" node
  local ctr
  ctr="$(buildah_ from scratch)"
  buildah_ copy "${ctr}" "${PAUSE}" /pause >/dev/null
  buildah_ config --entrypoint '["/pause"]' --user 65535:65535 "${ctr}"
  buildah_ commit --quiet --rm "${ctr}" "${PAUSE_IMAGE}" >/dev/null
  log "base-image: ${PAUSE_IMAGE} built"
}

for target in "${TARGETS[@]}"; do "build_${target}"; done
