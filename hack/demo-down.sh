#!/usr/bin/env bash
# Stop what `make demo` started (operator, emulator, control plane) and remove its files.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEMO_DIR="${PWD}/.demo"
if [[ -f "${DEMO_DIR}/pids" ]]; then
  while read -r pid; do kill "${pid}" 2>/dev/null; done < <(tac "${DEMO_DIR}/pids")
  sleep 1
  while read -r pid; do kill -9 "${pid}" 2>/dev/null; done <"${DEMO_DIR}/pids"
fi
python3 hack/controlplane.py down --dir "${DEMO_DIR}/cluster" 2>/dev/null
rm -rf "${DEMO_DIR}"
echo "demo stopped"
