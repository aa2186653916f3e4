#!/usr/bin/env bash
# `make demo`: a local control plane, the PAI and TrueFoundry emulators and the operator, then a guided tour.
# Everything runs on loopback and stays up afterwards so you can poke at it; `make demo-down` stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source hack/lib.sh

DEMO_DIR="${PWD}/.demo"
PY="${PWD}/.venv/bin"
ACCESS_KEY_ID=demo-access-key
ACCESS_KEY_SECRET="demo-secret-$RANDOM$RANDOM"   # only ever used against the local emulator
TFY_KEY="demo-tfy-$RANDOM$RANDOM"                 # likewise

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

if [[ -f "${DEMO_DIR}/pids" ]]; then bash hack/demo-down.sh; fi
mkdir -p "${DEMO_DIR}"

step "1/9 control plane (etcd + kube-apiserver ${KUBERNETES_VERSION}, built from Go modules and cached)"
KUBECONFIG_LINE=$(python3 hack/controlplane.py up --dir "${DEMO_DIR}/cluster")
export "${KUBECONFIG_LINE?}"
echo "${KUBECONFIG_LINE}"

step "2/9 PAI and TrueFoundry emulators (signature/token checks, quotas, the model-version APIs) on loopback"
"${PY}/pai-emulator" --host 127.0.0.1 --port 0 --access-key "${ACCESS_KEY_ID}:${ACCESS_KEY_SECRET}" \
  --model model-abc123 >"${DEMO_DIR}/emulator.out" 2>"${DEMO_DIR}/emulator.log" &
echo "$!" >>"${DEMO_DIR}/pids"
for _ in $(seq 100); do grep -q '^PAI_EMULATOR_URL=' "${DEMO_DIR}/emulator.out" 2>/dev/null && break; sleep 0.1; done
PAI_URL=$(sed -n 's/^PAI_EMULATOR_URL=//p' "${DEMO_DIR}/emulator.out")
echo "emulator at ${PAI_URL} (model model-abc123)"
"${PY}/tfy-emulator" --host 127.0.0.1 --port 0 --api-key "${TFY_KEY}" --ml-repo team-repo \
  >"${DEMO_DIR}/tfy-emulator.out" 2>"${DEMO_DIR}/tfy-emulator.log" &
echo "$!" >>"${DEMO_DIR}/pids"
for _ in $(seq 100); do grep -q '^TFY_EMULATOR_URL=' "${DEMO_DIR}/tfy-emulator.out" 2>/dev/null && break; sleep 0.1; done
TFY_URL=$(sed -n 's/^TFY_EMULATOR_URL=//p' "${DEMO_DIR}/tfy-emulator.out")
echo "TrueFoundry emulator at ${TFY_URL} (ML repo team-repo)"

step "3/9 the CRDs, then the operator (pai-operator run; TrueFoundry on with --truefoundry-host)"
run "${KUBECTL}" apply -f crds/
"${KUBECTL}" wait --for=condition=Established crd/modelversions.pai.mlops.dev crd/models.pai.mlops.dev \
  crd/modelversions.truefoundry.mlops.dev --timeout=30s >/dev/null
ALIBABA_CLOUD_ECS_METADATA_DISABLED=true TFY_API_KEY="${TFY_KEY}" \
ALIBABA_CLOUD_ACCESS_KEY_ID="${ACCESS_KEY_ID}" ALIBABA_CLOUD_ACCESS_KEY_SECRET="${ACCESS_KEY_SECRET}" \
  "${PY}/pai-operator" run --all-namespaces --endpoint "${PAI_URL}" --resync-interval 30 \
  --truefoundry-host "${TFY_URL}" \
  --metrics-port 0 --health-port 0 >"${DEMO_DIR}/operator.log" 2>&1 &
echo "$!" >>"${DEMO_DIR}/pids"
echo "operator logs: ${DEMO_DIR}/operator.log"

step "4/9 apply the samples and wait for Ready"
t0=$(date +%s.%N)
run "${KUBECTL}" apply -f samples/
run "${KUBECTL}" wait --for=condition=Ready pmv --all --timeout=120s
t1=$(date +%s.%N)
python3 -c "print(f'apply-to-Ready: {$t1 - $t0:.2f}s for both objects')"
run "${KUBECTL}" get pmv
run "${KUBECTL}" get pmv sentiment-nightly -o jsonpath='{.status.id}{"  "}{.status.atProvider}{"\n"}'

step "5/9 change one: approve it (only ApprovalStatus is sent to PAI)"
run "${KUBECTL}" patch pmv sentiment-1-0-0 --type merge -p '{"spec":{"approvalStatus":"Approved","labels":{"k1":"vs1","stage":"prod"}}}'
for _ in $(seq 60); do
  [[ "$("${KUBECTL}" get pmv sentiment-1-0-0 -o jsonpath='{.status.atProvider.approvalStatus}')" == Approved ]] && break; sleep 0.5
done
run "${KUBECTL}" get pmv sentiment-1-0-0

step "6/9 pause it: the operator stops writing to PAI and says so"
run "${KUBECTL}" annotate pmv sentiment-1-0-0 pai.mlops.dev/paused=true --overwrite
for _ in $(seq 60); do
  [[ "$("${KUBECTL}" get pmv sentiment-1-0-0 -o jsonpath='{.status.conditions[?(@.type=="Synced")].reason}')" == ReconcilePaused ]] && break; sleep 0.5
done
run "${KUBECTL}" get pmv sentiment-1-0-0 -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
run "${KUBECTL}" annotate pmv sentiment-1-0-0 pai.mlops.dev/paused-
run "${KUBECTL}" wait --for=condition=Synced pmv/sentiment-1-0-0 --timeout=60s

step "7/9 delete one: the remote version is deleted, then the finalizer released"
run "${KUBECTL}" delete pmv sentiment-nightly --wait=true --timeout=60s
run "${KUBECTL}" get pmv

step "8/9 TrueFoundry on the same engine: the next version of a model, numbered by TrueFoundry"
run "${KUBECTL}" apply -f samples/truefoundry/modelversion-next.yaml
run "${KUBECTL}" wait --for=condition=Ready tfmv --all --timeout=60s
run "${KUBECTL}" get tfmv
run "${KUBECTL}" get tfmv -o jsonpath='{range .items[*]}{.metadata.name}: {.status.fqn} (id {.status.id}){"\n"}{end}'

step "9/9 the seed's Terraform example: a Model, and a version that names it (modelRef) in one apply"
run "${KUBECTL}" apply -f samples/seed-example/
run "${KUBECTL}" wait --for=condition=Ready pmm/terraform-example pmv/terraform-example-1-0-0 --timeout=60s
run "${KUBECTL}" get pmm,pmv
run "${KUBECTL}" get pmv terraform-example-1-0-0 -o jsonpath='spec.modelRef={.spec.modelRef.name}  status.modelId={.status.modelId}{"\n"}'

cat <<EOF2

The demo keeps running. Try:
  export ${KUBECONFIG_LINE}
  ${KUBECTL} get pmv -w          (${KUBECTL} get tfmv for TrueFoundry)
  ${KUBECTL} describe pmv sentiment-1-0-0
  tail -f ${DEMO_DIR}/operator.log
Stop everything with: make demo-down
EOF2
