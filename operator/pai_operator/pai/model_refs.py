"""`ModelVersion.spec.modelRef`: a version names its `Model` in the same namespace instead of a
model ID. The Model controller's watch keeps a directory of Models (ID, readiness); a version
pass resolves its reference through it, in memory only: the ID goes to the version's status,
never to its spec (a reference resolved into spec is a permanent diff for Argo CD and Flux).

Until the Model is Ready the version waits (condition ReferenceNotReady, naming the Model; no
PAI call); once created, a version keeps to the model ID status recorded whenever its Model is
not usable (unknown after a restart, not Ready, being deleted). When a Model becomes Ready, or
its ID changes, the versions that name it are passed at once (`Requeue`): they start within
seconds, not at the next resync.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pai_operator.backend import Requeue, Waiting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelEntry:
    model_id: str | None
    ready: bool
    deleting: bool
    why: str  # the Ready condition's message when not ready


def _entry(body: Mapping[str, Any]) -> ModelEntry:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    model_id = status.get("modelId")
    ready = next(
        (c for c in status.get("conditions") or [] if isinstance(c, Mapping) and c.get("type") == "Ready"),
        None,
    )
    condition: Mapping[str, Any] = ready or {}
    is_ready = condition.get("status") == "True" and isinstance(model_id, str) and bool(model_id)
    why = "" if is_ready else str(condition.get("message") or "not reconciled yet")
    return ModelEntry(
        model_id=model_id if isinstance(model_id, str) and model_id else None,
        ready=is_ready,
        deleting=bool(meta.get("deletionTimestamp")),
        why=why,
    )


def referenced_model(spec: Mapping[str, Any]) -> str | None:
    ref = spec.get("modelRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) and name else None


class ModelDirectory:
    """Models by (namespace, name) as the Model watch last showed them. No I/O."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], ModelEntry] = {}
        self._requeue: Requeue | None = None

    def bind_dependents(self, requeue: Requeue) -> None:
        self._requeue = requeue

    def record(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> None:
        key = (namespace, name)
        before = self._models.get(key)
        if body is None:
            self._models.pop(key, None)
            return
        entry = self._models[key] = _entry(body)
        usable = entry.ready and not entry.deleting
        was_usable = before is not None and before.ready and not before.deleting
        if usable and (not was_usable or before is None or before.model_id != entry.model_id):
            self._wake(namespace, name)

    def _wake(self, namespace: str, name: str) -> None:
        if self._requeue is None:
            return
        woken = self._requeue(namespace, lambda spec: referenced_model(spec) == name)
        if woken:
            log.debug("Model %s/%s is ready: %d versions referring to it passed", namespace, name, woken)

    def resolve(
        self, namespace: str, spec: Mapping[str, Any], status: Mapping[str, Any], *, deleting: bool
    ) -> Mapping[str, Any] | Waiting:
        """The spec with modelId set from its modelRef (unchanged without one), or Waiting."""
        name = referenced_model(spec)
        if name is None:
            return spec
        recorded = status.get("modelId")
        entry = self._models.get((namespace, name))
        if deleting:
            # The ID the version was created under; a Model that is gone or going still names it.
            model_id = recorded or (entry.model_id if entry else None)
            if model_id:
                return {**spec, "modelId": model_id}
            return Waiting(f"Model {name} never resolved to a PAI model: no version was created")
        if entry is not None and entry.ready and not entry.deleting and entry.model_id:
            return {**spec, "modelId": entry.model_id}
        if isinstance(recorded, str) and recorded:
            # A version that exists keeps to the model it was created in while its Model is
            # unknown (a restart, before the Model watch has listed it), not Ready (the Model's
            # own trouble) or being deleted (which waits for this version): waiting would flip a
            # settled version's conditions for nothing.
            return {**spec, "modelId": recorded}
        if entry is None:
            return Waiting(f"waiting for Model {name}: no such Model in namespace {namespace}")
        if entry.deleting:
            return Waiting(f"waiting for Model {name}: it is being deleted")
        return Waiting(f"waiting for Model {name} to be Ready: {entry.why}")
