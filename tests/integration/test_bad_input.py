"""The bad-input corpus: manifests and situations a user can produce, each with its expected outcome.

Two kinds of outcome, one table each:

- `ADMISSION`: the API server refuses the manifest (`kubectl apply --validate=strict`: the schema,
  the CEL rules, strict field validation) and the message names the field. Only the API server is
  involved, so these are fast.
- `CONDITIONS`: the object is admitted and the operator answers with `Synced=False`, a reason, and a
  message that says what to fix. "No PAI call" cases must leave the emulator's journal empty for
  their model; "bounded" cases (a missing model, bad credentials: PAI has to be asked) may call
  PAI, but slowly (at the resync or model-missing pace), never in a loop. One operator process is
  shared by every case that runs with good credentials (a module-scoped fixture); the credential
  and endpoint cases need an operator of their own each, all started together.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from kubernetes import client

from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, Credential, EmulatorProcess
from tests.support.kube import REPO_ROOT, Cluster, unique_name
from tests.support.operator import GROUP, VERSION, ModelVersions, OperatorProcess

pytestmark = [pytest.mark.integration]

CRD_FILE = REPO_ROOT / "crds" / "pai.mlops.dev_modelversions.yaml"
URI = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/m/"
GOOD: dict[str, Any] = {"modelId": "model-corpus", "uri": URI}
NAMED: dict[str, Any] = {**GOOD, "versionName": "1.0.0"}
FULL: dict[str, Any] = {
    **NAMED,
    "regionId": "cn-hangzhou",
    "formatType": "SavedModel",
    "frameworkType": "PyTorch",
}


# --- Admission --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    id: str
    spec: dict[str, Any]
    field: str  # the field the message must name, e.g. "spec.formatType"
    fragment: str = ""  # and, when set, this part of the reason
    before: dict[str, Any] | None = None  # applied first (an update case: immutability)
    extra: dict[str, Any] = field(default_factory=dict)  # top-level keys next to spec


def _labels(n: int) -> dict[str, str]:
    return {f"k{i}": "v" for i in range(n)}


def _enum_cases() -> list[Admission]:
    cases = []
    for name, bad in [
        ("formatType", "onnx"),
        ("formatType", "Pickle"),
        ("frameworkType", "pytorch"),
        ("frameworkType", "JAX"),
        ("approvalStatus", "approved"),
        ("sourceType", "Notebook"),
        ("deletionPolicy", "Orphan"),
        ("managementPolicy", "ObserveOnly"),
        ("adoptionPolicy", "Always"),
    ]:
        cases.append(
            Admission(f"enum-{name}-{bad}", {**GOOD, name: bad}, f"spec.{name}", "Unsupported value")
        )
    return cases


def _immutable_cases() -> list[Admission]:
    changed = {
        "modelId": "model-other",
        "uri": "oss://bucket.oss-cn-hangzhou.aliyuncs.com/other/",
        "versionName": "2.0.0",
        "regionId": "cn-shanghai",
        "formatType": "ONNX",
        "frameworkType": "TensorFlow",
    }
    cases = [
        Admission(f"immutable-{name}", {**FULL, name: value}, f"spec.{name}", "immutable", before=FULL)
        for name, value in changed.items()
    ]
    removed = {k: v for k, v in FULL.items() if k != "versionName"}
    cases.append(
        Admission("immutable-versionName-removed", removed, "spec.versionName", "immutable", before=FULL)
    )
    return cases


ADMISSION: list[Admission] = [
    *_enum_cases(),
    # versionName pattern ^\d+\.\d+\.\d+(_\w+)?$
    Admission("pattern-two-parts", {**GOOD, "versionName": "1.0"}, "spec.versionName", "should match"),
    Admission("pattern-v-prefix", {**GOOD, "versionName": "v1.0.0"}, "spec.versionName", "should match"),
    Admission(
        "pattern-dash-suffix", {**GOOD, "versionName": "1.0.0-rc1"}, "spec.versionName", "should match"
    ),
    Admission(
        "pattern-trailing-newline", {**GOOD, "versionName": "1.0.0\n"}, "spec.versionName", "should match"
    ),
    Admission("pattern-unicode-digits", {**GOOD, "versionName": "\u0661.\u0660.\u0660"}, "spec.versionName"),
    Admission("pattern-empty", {**GOOD, "versionName": ""}, "spec.versionName", "should match"),
    # required and empty strings
    Admission("missing-modelId", {"uri": URI}, "spec.modelId", "Required value"),
    Admission("missing-uri", {"modelId": "model-corpus"}, "spec.uri", "Required value"),
    Admission("empty-modelId", {**GOOD, "modelId": ""}, "spec.modelId", "at least 1"),
    Admission("empty-uri", {**GOOD, "uri": ""}, "spec.uri", "at least 1"),
    Admission("empty-regionId", {**GOOD, "regionId": ""}, "spec.regionId", "at least 1"),
    Admission("missing-spec", {}, "spec.modelId", "Required value"),
    # labels: 18 at most (PAI's 20 minus the two ownership labels), reserved keys, empty key, types
    Admission("labels-19", {**GOOD, "labels": _labels(19)}, "spec.labels", "at most 18"),
    Admission("labels-25", {**GOOD, "labels": _labels(25)}, "spec.labels", "at most 18"),
    Admission(
        "labels-owner-uid", {**GOOD, "labels": {"pai.mlops.dev/owner-uid": "x"}}, "spec.labels", "reserved"
    ),
    Admission(
        "labels-owner-ref", {**GOOD, "labels": {"pai.mlops.dev/owner-ref": "a/b"}}, "spec.labels", "reserved"
    ),
    Admission("labels-empty-key", {**GOOD, "labels": {"": "x"}}, "spec.labels", "must not be empty"),
    Admission(
        "labels-number-value", {**GOOD, "labels": {"count": 1}}, "spec.labels.count", "must be of type string"
    ),
    Admission("labels-list", {**GOOD, "labels": ["a", "b"]}, "spec.labels", "must be of type object"),
    # types of free-form objects
    Admission("metrics-string", {**GOOD, "metrics": "acc=0.9"}, "spec.metrics", "must be of type object"),
    Admission("options-list", {**GOOD, "options": [1, 2]}, "spec.options", "must be of type object"),
    Admission("versionName-number", {**GOOD, "versionName": 1}, "spec.versionName", "must be of type string"),
    # strict field validation: a typo is an error, not a silently dropped field
    Admission("unknown-field-typo", {**GOOD, "versionname": "1.0.0"}, "spec.versionname", "unknown field"),
    Admission("unknown-field-top", GOOD, "specs", "unknown field", extra={"specs": {"x": 1}}),
    *_immutable_cases(),
]


@pytest.fixture(scope="module")
def admission_namespace(control_plane: Cluster, kube_api: client.ApiClient) -> Iterator[str]:
    _install_crd(control_plane)
    yield from _namespace(kube_api)


def _install_crd(control_plane: Cluster) -> None:
    control_plane.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    control_plane.kubectl_run("wait", "--for=condition=Established", "crd/modelversions.pai.mlops.dev")


def _namespace(kube_api: client.ApiClient) -> Iterator[str]:
    name = unique_name("bad")
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _apply(control_plane: Cluster, tmp_path: Path, namespace: str, name: str, body: dict[str, Any]) -> Any:
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": namespace},
        **body,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True))
    return control_plane.kubectl_run("apply", "--validate=strict", "-f", str(path), check=False)


def test_the_corpus_is_large_enough() -> None:
    assert len(ADMISSION) + len(CONDITIONS) >= 40
    assert len({c.id for c in ADMISSION} | {c.id for c in CONDITIONS}) == len(ADMISSION) + len(CONDITIONS)


@pytest.mark.parametrize("case", ADMISSION, ids=lambda c: c.id)
def test_rejected_at_admission_naming_the_field(
    control_plane: Cluster, admission_namespace: str, tmp_path: Path, case: Admission
) -> None:
    name = unique_name("adm")
    if case.before is not None:
        created = _apply(control_plane, tmp_path, admission_namespace, name, {"spec": case.before})
        assert created.returncode == 0, created.stderr
    result = _apply(control_plane, tmp_path, admission_namespace, name, {"spec": case.spec, **case.extra})
    assert result.returncode != 0, f"admitted: {case.spec}"
    assert case.field in result.stderr, result.stderr
    assert case.fragment in result.stderr, result.stderr


# --- Conditions -------------------------------------------------------------------------------

Calls = Literal["none", "bounded"]


@dataclass(frozen=True)
class Situation:
    id: str
    spec: dict[str, Any]  # "modelId" is filled in: a model of the case's own (or a missing one)
    reason: str
    fragment: str  # the message must contain it: what to fix
    calls: Calls = "none"
    operator: str = "shared"  # which operator process runs it (see OPERATORS)
    model_exists: bool = True


def _metrics(chars: int) -> dict[str, str]:
    return {"k": "x" * (chars - len('{"k":""}'))}


CONDITIONS: list[Situation] = [
    Situation(
        "metrics-8193-chars", {"metrics": _metrics(8193)}, "InvalidSpec", "spec.metrics is 8193 characters"
    ),
    Situation("metrics-unicode-over", {"metrics": {"k": "\u00e9" * 8190}}, "InvalidSpec", "spec.metrics is"),
    Situation("huge-object-1MiB", {"metrics": _metrics(1 << 20)}, "InvalidSpec", "PAI accepts at most 8192"),
    Situation(
        "options-int-beyond-float64",
        {"options": {"seed": 2**53 + 1}},
        "InvalidSpec",
        "spec.options.seed is the integer 9007199254740993",
    ),
    Situation(
        "extraInfo-int-beyond-float64",
        {"extraInfo": {"ids": [1, -(2**62)]}},
        "InvalidSpec",
        "write it as a string",
    ),
    Situation(
        "uri-scheme", {"uri": "s3://bucket/m/"}, "InvalidSpec", "spec.uri 's3://bucket/m/' must start with"
    ),
    Situation("uri-unicode-only", {"uri": "\u6a21\u578b"}, "InvalidSpec", "must start with oss://"),
    Situation(
        "observe-without-versionName",
        {"managementPolicy": "Observe"},
        "InvalidSpec",
        "Observe needs spec.versionName",
    ),
    Situation("model-missing", {}, "ModelNotFound", "", calls="bounded", model_exists=False),
    Situation(
        "model-wrong-named",
        {"versionName": "1.0.0"},
        "ModelNotFound",
        "",
        calls="bounded",
        model_exists=False,
    ),
    Situation(
        "credential-wrong-secret", {}, "AuthFailed", "SignatureDoesNotMatch", "bounded", "wrong-secret"
    ),
    Situation("credential-unknown-key", {}, "AuthFailed", "InvalidAccessKeyId", "bounded", "unknown-key"),
    Situation(
        "credential-sts-token-bogus", {}, "AuthFailed", "InvalidSecurityToken", "bounded", "bogus-token"
    ),
    # No credential at all: nothing can be signed, so PAI is never called. The chain may fetch
    # over the network (RRSA, ECS metadata), so this one is retried with backoff.
    Situation(
        "credential-missing",
        {},
        "ReconcileError",
        "cannot obtain Alibaba Cloud credentials",
        "none",
        "no-credential",
    ),
]


OPERATOR_CREDENTIALS: dict[str, Credential] = {
    "shared": DEFAULT_CREDENTIAL,
    "wrong-secret": Credential(DEFAULT_CREDENTIAL.access_key_id, "not-the-secret"),
    "unknown-key": Credential("LTAI-nobody-knows-me", "whatever"),
    "bogus-token": Credential(
        DEFAULT_CREDENTIAL.access_key_id, DEFAULT_CREDENTIAL.access_key_secret, "bogus"
    ),
    "no-credential": Credential("", ""),
}
SECRETS = [c.access_key_secret for c in OPERATOR_CREDENTIALS.values() if c.access_key_secret]


@dataclass
class Outcome:
    model_id: str
    namespace: str
    name: str
    obj: dict[str, Any]
    calls_at_condition: int
    calls_later: int


def _calls(admin: AdminClient, model_id: str) -> int:
    return sum(1 for entry in admin.journal() if entry.get("ModelId") == model_id)


@pytest.fixture(scope="module")
def outcomes(
    control_plane: Cluster,
    kube_api: client.ApiClient,
    emulator_service: EmulatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Outcome]]:
    """Every condition case at once: one operator per credential (the good one shared by most
    cases), all started together, every object created, then each waited for."""
    _install_crd(control_plane)
    logs = tmp_path_factory.mktemp("corpus-operators")
    admin = emulator_service.admin
    core = client.CoreV1Api(kube_api)
    namespaces = {key: unique_name(f"bad-{key[:6]}") for key in OPERATOR_CREDENTIALS}
    for ns in namespaces.values():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    operators = [
        OperatorProcess(
            control_plane.kubeconfig, emulator_service.url, cred, namespaces=(namespaces[key],), log_dir=logs
        )
        for key, cred in OPERATOR_CREDENTIALS.items()
    ]
    try:
        for proc in operators:
            proc.start()
        created: dict[str, tuple[str, str, str]] = {}
        for case in CONDITIONS:
            model_id = f"model-{uuid.uuid4().hex[:10]}"
            if case.model_exists:
                admin.add_model(model_id)
            ns = namespaces[case.operator]
            name = unique_name("c")
            ModelVersions(kube_api, ns).create(name, {"modelId": model_id, "uri": URI, **case.spec})
            created[case.id] = (model_id, ns, name)
        results: dict[str, Outcome] = {}
        for case in CONDITIONS:
            model_id, ns, name = created[case.id]
            obj = ModelVersions(kube_api, ns).wait_condition(name, "Synced", "False", case.reason, timeout=60)
            results[case.id] = Outcome(model_id, ns, name, obj, _calls(admin, model_id), 0)
        # "No retry loop": watch every case for a few resync intervals (3 s each in tests) more.
        time.sleep(7)
        for outcome in results.values():
            outcome.calls_later = _calls(admin, outcome.model_id)
        yield results
        for proc in operators:
            text = proc.log_text()
            for secret in SECRETS:
                assert secret not in text
    finally:
        for proc in operators:
            proc.stop()
        for ns in namespaces.values():
            core.delete_namespace(ns)


@pytest.mark.parametrize("case", CONDITIONS, ids=lambda c: c.id)
def test_answered_with_a_condition_that_says_what_to_fix(
    outcomes: dict[str, Outcome], case: Situation
) -> None:
    outcome = outcomes[case.id]
    synced = next(c for c in outcome.obj["status"]["conditions"] if c["type"] == "Synced")
    assert synced["reason"] == case.reason
    assert case.fragment in synced["message"]
    if case.reason == "ModelNotFound":
        assert outcome.model_id in synced["message"] or "spec.modelId" in synced["message"], synced
    for secret in SECRETS:
        assert secret not in json.dumps(outcome.obj["status"])
    if case.calls == "none":
        assert outcome.calls_at_condition == 0
        assert outcome.calls_later == 0
    else:
        # PAI had to be asked; the retry pace is the resync / model-missing interval (3-5 s in
        # tests), so a few seconds more add at most a few calls, never a tight loop.
        assert 1 <= outcome.calls_at_condition <= 4
        assert outcome.calls_later - outcome.calls_at_condition <= 4


# --- Situations that change under a running object --------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_emulator() -> Iterator[EmulatorProcess]:
    """Faults are emulator-wide: cases that inject them get an emulator of their own."""
    with EmulatorProcess(models=()) as emulator:
        yield emulator


@pytest.mark.parametrize(
    ("code", "status", "fragment"),
    [
        ("Forbidden.RAM", 403, "Forbidden.RAM"),  # a RAM permission revoked mid-life
        ("InvalidSecurityToken.Expired", 400, "InvalidSecurityToken.Expired"),  # the STS token expired
    ],
    ids=["permission-revoked", "credential-expired"],
)
def test_credentials_failing_mid_life_report_auth_failed_without_a_loop(
    control_plane: Cluster,
    private_emulator: EmulatorProcess,
    namespace: str,
    crd: str,
    tmp_path: Path,
    code: str,
    status: int,
    fragment: str,
) -> None:
    admin = private_emulator.admin
    model_id = f"model-{uuid.uuid4().hex[:10]}"
    admin.add_model(model_id)
    proc = OperatorProcess(
        control_plane.kubeconfig,
        private_emulator.url,
        DEFAULT_CREDENTIAL,
        namespaces=(namespace,),
        log_dir=tmp_path,
    ).start()
    try:
        mvs = ModelVersions(control_plane.api_client(), namespace)
        mvs.create("mv", {"modelId": model_id, "uri": URI, "versionName": "1.0.0"})
        mvs.wait_condition("mv", "Synced", "True", "ReconcileSuccess")
        admin.add_fault("*", "error", code=code, http_status=status)
        admin.clear_journal()
        mvs.patch("mv", {"spec": {"versionDescription": "changed after the credential broke"}})
        obj = mvs.wait_condition("mv", "Synced", "False", "AuthFailed")
        synced = next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")
        assert fragment in synced["message"]
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        # The version still exists, but the change is held up: not Ready for this generation, and
        # Stalled (a human must fix the credential), so Flux and Argo CD stop waiting.
        assert (ready["status"], ready["reason"]) == ("False", "NotApplied")
        assert "exist" in ready["message"]
        stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
        assert (stalled["status"], stalled["reason"]) == ("True", "AuthFailed")
        at_condition = len(admin.journal())
        time.sleep(6)
        # Retried at the resync pace (3 s in tests), not in a loop.
        assert len(admin.journal()) - at_condition <= 4
        assert DEFAULT_CREDENTIAL.access_key_secret not in proc.log_text()
    finally:
        proc.stop()


def test_unreachable_endpoint_is_a_retried_reconcile_error_naming_the_network(
    control_plane: Cluster, namespace: str, crd: str, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    proc = OperatorProcess(
        control_plane.kubeconfig, endpoint, DEFAULT_CREDENTIAL, namespaces=(namespace,), log_dir=tmp_path
    ).start()
    try:
        mvs = ModelVersions(control_plane.api_client(), namespace)
        mvs.create("mv", {"modelId": "model-x", "uri": URI})
        obj = mvs.wait_condition("mv", "Synced", "False", "ReconcileError")
        synced = next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")
        assert "network" in synced["message"].lower() or "connect" in synced["message"].lower(), synced
        assert "(retrying)" in synced["message"]
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        # The read before the create failed: whether a version exists is unknown, not "creating".
        assert (ready["status"], ready["reason"]) == ("False", "Unavailable")
    finally:
        proc.stop()
