"""spec.modelRef: resolved in memory from the Model watch, waiting while the Model is not Ready,
and the versions that name a Model passed when it becomes Ready."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pai_operator.backend import Waiting
from pai_operator.pai.model_refs import ModelDirectory

REF = {"modelRef": {"name": "m"}, "uri": "oss://b.e/m/"}


def model(ready: bool, model_id: str | None = "model-1", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "m", "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "message": "creating"}]
    }
    if model_id:
        status["modelId"] = model_id
    return {"metadata": meta, "status": status}


class Requeues:
    def __init__(self, specs: list[Mapping[str, Any]]) -> None:
        self.specs = specs
        self.calls: list[tuple[str, int]] = []

    def __call__(self, namespace: str, matches: Callable[[Mapping[str, Any]], bool]) -> int:
        woken = sum(1 for spec in self.specs if matches(spec))
        self.calls.append((namespace, woken))
        return woken


def test_a_spec_without_a_reference_is_unchanged() -> None:
    spec = {"modelId": "model-9", "uri": "oss://b.e/m/"}
    assert ModelDirectory().resolve("ns", spec, {}, deleting=False) is spec


def test_waits_while_the_model_is_missing_or_not_ready_and_names_it() -> None:
    directory = ModelDirectory()
    missing = directory.resolve("ns", REF, {}, deleting=False)
    assert isinstance(missing, Waiting)
    assert "Model m" in missing.message
    directory.record("ns", "m", model(ready=False))
    not_ready = directory.resolve("ns", REF, {}, deleting=False)
    assert isinstance(not_ready, Waiting)
    assert "creating" in not_ready.message
    directory.record("ns", "m", model(ready=True))
    assert directory.resolve("ns", REF, {}, deleting=False) == {**REF, "modelId": "model-1"}
    # Another namespace's Model of the same name is not this one.
    assert isinstance(directory.resolve("other", REF, {}, deleting=False), Waiting)


def test_deletion_uses_what_status_recorded() -> None:
    directory = ModelDirectory()
    assert directory.resolve("ns", REF, {"modelId": "model-7"}, deleting=True) == {
        **REF,
        "modelId": "model-7",
    }
    assert isinstance(directory.resolve("ns", REF, {}, deleting=True), Waiting)
    directory.record("ns", "m", model(ready=False, deleting=True))
    assert directory.resolve("ns", REF, {}, deleting=True) == {**REF, "modelId": "model-1"}


def test_versions_are_woken_when_their_model_becomes_ready_not_on_every_event() -> None:
    directory = ModelDirectory()
    requeue = Requeues([REF, {"modelRef": {"name": "other"}}, {"modelId": "x"}])
    directory.bind_dependents(requeue)
    directory.record("ns", "m", model(ready=False))
    assert requeue.calls == []
    directory.record("ns", "m", model(ready=True))
    assert requeue.calls == [("ns", 1)]
    directory.record("ns", "m", model(ready=True))  # a resync's status write: nothing new
    assert requeue.calls == [("ns", 1)]
    directory.record("ns", "m", model(ready=True, model_id="model-2"))  # recreated: a new ID
    assert requeue.calls == [("ns", 1), ("ns", 1)]
    directory.record("ns", "m", None)
    assert isinstance(directory.resolve("ns", REF, {}, deleting=False), Waiting)


def test_a_created_version_keeps_its_recorded_model_while_the_model_is_not_usable() -> None:
    directory = ModelDirectory()
    recorded = {"modelId": "model-7"}
    # A restart: the version's list observation may come before the Model watch lists the Model.
    assert directory.resolve("ns", REF, recorded, deleting=False) == {**REF, "modelId": "model-7"}
    directory.record("ns", "m", model(ready=False))
    assert directory.resolve("ns", REF, recorded, deleting=False) == {**REF, "modelId": "model-7"}
    # A Ready Model names the model: recreated in PAI, the version follows it.
    directory.record("ns", "m", model(ready=True, model_id="model-8"))
    assert directory.resolve("ns", REF, recorded, deleting=False) == {**REF, "modelId": "model-8"}
