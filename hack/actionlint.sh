#!/usr/bin/env bash
# Lint GitHub Actions workflows with the cached actionlint (built by hack/build-tools.sh).
#
#   bash hack/actionlint.sh                      # .github/workflows/*.yml (what make lint runs)
#   bash hack/actionlint.sh path/to/workflow.yml
#
# shellcheck and pyflakes integration is switched off: actionlint uses them only when they happen
# to be on PATH (GitHub's runners have shellcheck, this machine does not), and a lint whose verdict
# depends on the machine is not a gate.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT="$(cd "${HACK_DIR}/.." && pwd)"
bash "${HACK_DIR}/build-tools.sh" actionlint
if [[ $# -eq 0 ]]; then
  # deploy/ci/: example workflows for users (plan on a pull request), linted like our own.
  set -- "${ROOT}"/.github/workflows/*.yml "${ROOT}"/deploy/ci/*.yml
fi
cd "${ROOT}"  # local reusable workflows (uses: ./.github/...) resolve from the repository root
exec "${ACTIONLINT}" -shellcheck= -pyflakes= "$@"
