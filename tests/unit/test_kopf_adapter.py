"""The kopf wiring keeps every name the design fixes (finalizer, annotation prefix)."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest

from pai_operator.kopf_adapter import Operator
from pai_operator.settings import OperatorSettings


def test_kopf_writes_only_under_the_pai_prefix() -> None:
    s = Operator(OperatorSettings(concurrency=7)).controller("PAI").kopf_settings()
    assert s.persistence.finalizer == "pai.mlops.dev/finalizer"
    progress = s.persistence.progress_storage
    diffbase = s.persistence.diffbase_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert isinstance(diffbase, kopf.AnnotationsDiffBaseStorage)
    assert progress.prefix == "pai.mlops.dev"
    assert diffbase.prefix == "pai.mlops.dev"
    assert diffbase.key == "last-handled-configuration"
    # The engine compares generations itself: kopf stores no diff-base (one write less per change).
    body = kopf.Body({"metadata": {"annotations": {"pai.mlops.dev/last-handled-configuration": "{}"}}})
    assert diffbase.fetch(body=body) is None
    patch = kopf.Patch()
    diffbase.store(body=body, patch=patch, essence=kopf.BodyEssence())
    assert not patch


def test_no_timers_and_no_per_object_handlers_but_events_and_deletion() -> None:
    """One scheduler in the engine: kopf has no timers, create/update/resume handlers."""
    registry = Operator(OperatorSettings()).controller("PAI").registry
    assert not registry._spawning.get_all_handlers()  # timers and daemons
    assert [h.reason for h in registry._changing.get_all_handlers()] == [kopf.Reason.DELETE]
    assert len(registry._watching.get_all_handlers()) == 1


def test_kopf_is_quiet_standalone_and_bounded() -> None:
    s = Operator(OperatorSettings(concurrency=7)).controller("PAI").kopf_settings()
    assert s.peering.standalone is True  # no kopf.dev peering objects, no RBAC for them
    assert s.scanning.disabled is True  # no CRD/Namespace watching, no RBAC for it
    # kopf's workers only hand events to the engine; passes are bounded by the engine itself.
    assert s.queueing.worker_limit >= 7
    assert s.posting.level == logging.CRITICAL  # kopf's own log lines never become Events
    assert (s.watching.server_timeout, s.watching.client_timeout) == (270, 300)
    # A restart takes the objects in as a stream, one at a time (the API server's watch cache,
    # no pages asked for one after another), and any other list in pages: one 5,000-object
    # response held ~50 MiB of resident memory for the process lifetime (bench/profile_memory.py).
    assert s.watching.initial_streaming is True
    assert s.watching.chunk_size is not None
    assert 0 < s.watching.chunk_size <= 500
    # kopf's per-event "essence" (a deep copy of the body, for create/update handlers we do not
    # have) is never built, nor stored.
    body = kopf.Body({"metadata": {"name": "a", "annotations": {}}, "spec": {"modelId": "m"}})
    assert s.persistence.diffbase_storage.build(body=body) is None
    assert s.persistence.diffbase_storage.fetch(body=body) is None


async def test_namespace_annotations_are_read_once_for_a_burst_of_deletions() -> None:
    import asyncio
    import time

    from pai_operator.kube import NamespaceAnnotationCache

    reads: list[str] = []

    class FakeReader:
        def annotations(self, name: str) -> dict[str, str]:
            reads.append(name)
            time.sleep(0.05)  # a real GET takes a while; the burst arrives meanwhile
            return {"pai.mlops.dev/deletion-policy": "Retain"}

    cache = NamespaceAnnotationCache()
    cache._api = FakeReader()
    results = await asyncio.gather(*(cache.get("team-a") for _ in range(50)))
    assert reads == ["team-a"]
    assert all(r == {"pai.mlops.dev/deletion-policy": "Retain"} for r in results)


async def test_kopf_gets_the_replica_identity_not_the_unix_user(monkeypatch: pytest.MonkeyPatch) -> None:
    # kopf's own default identity calls getpass.getuser(), which raises KeyError for a uid without
    # a passwd entry: the image's 65532. The kubelet e2e (make e2e) caught the crash loop.
    import getpass

    from pai_operator import kopf_adapter

    def no_passwd_entry() -> str:
        raise KeyError("getpwuid(): uid not found: 65532")

    seen: dict[str, Any] = {}

    async def fake_operator(**kwargs: Any) -> None:
        seen.update(kwargs)

    monkeypatch.setattr(getpass, "getuser", no_passwd_entry)
    monkeypatch.setattr(kopf_adapter.kopf, "operator", fake_operator)
    settings = OperatorSettings(
        identity="pai-operator-7b6b-x", metrics_port=0, health_port=0, leader_elect=False
    )
    await kopf_adapter.run_operator(settings)
    assert seen["identity"] == "pai-operator-7b6b-x"


def test_kopf_retry_line_for_a_failed_deletion_is_dropped_others_kept() -> None:
    """kopf logs every TemporaryError at ERROR; the reconciler logs failed deletions itself
    (WARNING while transient), so kopf's line for the delete handler must not reach the log."""
    Operator(OperatorSettings())
    kopf_log = logging.getLogger("kopf.objects")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    kopf_log.addHandler(handler)
    try:
        kopf_log.error("Handler 'deleted' failed temporarily: cannot delete the remote version yet")
        kopf_log.error("Handler 'watched' failed with an exception. Will ignore.")
    finally:
        kopf_log.removeHandler(handler)
    assert [r.getMessage() for r in seen] == ["Handler 'watched' failed with an exception. Will ignore."]


def test_the_reconciler_asks_the_engine_whether_a_recorded_owner_is_alive() -> None:
    operator = Operator(OperatorSettings())
    assert operator.controller("PAI").reconciler.owner_alive == operator.controller("PAI").engine.is_live


def test_the_engine_gets_plain_copies_without_bulk() -> None:
    from pai_operator.kopf_adapter import _plain

    raw = {
        "metadata": {
            "name": "mv",
            "namespace": "ns",
            "uid": "u",
            "generation": 2,
            "resourceVersion": "7",
            "finalizers": ["pai.mlops.dev/finalizer"],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                "pai.mlops.dev/paused": "true",
                "pai.mlops.dev/reconcile-requested-at": "now",
            },
        },
        "spec": {"modelId": "m", "labels": {"a": "b"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    plain = _plain(kopf.Body(raw), "pai.mlops.dev/")
    assert "managedFields" not in plain["metadata"]
    # Ours reach the engine (a reconcile request is an annotation-only change).
    assert plain["metadata"]["annotations"] == {
        "pai.mlops.dev/paused": "true",
        "pai.mlops.dev/reconcile-requested-at": "now",
    }
    assert plain["spec"] == raw["spec"]
    assert plain["status"] == raw["status"]
    raw["spec"]["labels"]["a"] = "changed"  # a later event must not reach into the engine's copy
    assert plain["spec"]["labels"] == {"a": "b"}
    # Keys are shared across objects rather than copied per object.
    other = _plain(kopf.Body({"metadata": {}, "spec": {"modelId": "x"}}), "pai.mlops.dev/")
    assert next(iter(other["spec"])) is next(iter(plain["spec"]))


def test_truefoundry_runs_as_a_kopf_operator_of_its_own_only_when_a_host_is_set() -> None:
    pai_only = Operator(OperatorSettings()).controllers
    assert [(c.names.group, c.names.kind) for c in pai_only] == [
        ("pai.mlops.dev", "ModelVersion"),
        ("pai.mlops.dev", "Model"),
    ]
    both = Operator(OperatorSettings(truefoundry_host="http://127.0.0.1:9"))
    assert [c.names.group for c in both.controllers] == [
        "pai.mlops.dev",
        "pai.mlops.dev",
        "truefoundry.mlops.dev",
    ]
    # Each kind is a kopf operator of its own, each watching only its own resource: the two PAI
    # kinds share the finalizer name without sharing a kopf registry.
    finalizers = [c.kopf_settings().persistence.finalizer for c in both.controllers]
    assert finalizers == [
        "pai.mlops.dev/finalizer",
        "pai.mlops.dev/finalizer",
        "truefoundry.mlops.dev/finalizer",
    ]
    prefixes = [c.kopf_settings().persistence.progress_storage.prefix for c in both.controllers]
    assert prefixes == ["pai.mlops.dev", "pai.mlops.dev", "truefoundry.mlops.dev"]
    assert len({id(c.registry) for c in both.controllers}) == 3


def test_the_kinds_of_an_api_group_share_one_deletion_breaker() -> None:
    """One confirmation annotation per group, so one breaker per group: with one per kind, a
    namespace holding Models and versions tripped two batches, and confirming one overwrote the
    other's confirmation (held for ever; bench/chaos_models.py at 200 Models x 10 versions)."""
    operator = Operator(OperatorSettings(truefoundry_host="http://127.0.0.1:9"))
    versions, models, truefoundry = operator.controllers
    assert versions.breaker is models.breaker
    assert versions.reconciler.breaker is models.reconciler.breaker is versions.breaker
    assert truefoundry.breaker is not versions.breaker
    assert truefoundry.reconciler.breaker is truefoundry.breaker
