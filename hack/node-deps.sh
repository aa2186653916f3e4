#!/usr/bin/env bash
# Install the Debian packages a one-node cluster and a daemonless image build need (make e2e):
# containerd (CRI plugin, overlayfs snapshotter), runc, the CNI plugins (only `loopback` is used:
# pods run with host networking), buildah (daemonless image builds) and debootstrap (a local
# Debian base image, since no registry can be pulled from).
#
#   sudo bash hack/node-deps.sh          # or as root; idempotent (installs only what is missing)
#
# Debian/Ubuntu only (apt-get). Services are not started: hack/node.py runs containerd itself with
# its own state and root directories, so an installed-but-stopped system containerd is harmless.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(containerd runc containernetworking-plugins buildah debootstrap)

[[ ${EUID} -eq 0 ]] || { log "node-deps: must run as root (apt-get install)"; exit 1; }
command -v apt-get >/dev/null 2>&1 || { log "node-deps: apt-get not found (Debian/Ubuntu only)"; exit 1; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed" || missing+=("${pkg}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "node-deps: all installed (${PACKAGES[*]})"
  exit 0
fi
log "node-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# --no-install-recommends: buildah recommends a whole podman/slirp stack this setup never uses.
apt-get install -y -q --no-install-recommends "${missing[@]}"
for bin in containerd runc buildah debootstrap; do
  command -v "${bin}" >/dev/null 2>&1 || { log "node-deps: ${bin} missing after install"; exit 1; }
done
log "node-deps: done ($(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'), buildah $(buildah --version | awk '{print $3}'))"
