"""What a registry plug-in is: the one object through which the rest of the operator knows a
registry. `registry.PLUGINS` lists them; the kopf adapter builds a controller per backend a
plug-in returns, the CRD generator writes a CRD per resource, `registry.OperatorSettings` joins
their settings sections, and the metrics label everything with the resource's `registry`.

A registry lives in one folder (`pai/`, `truefoundry/`): its client, its spec (the resources),
its planner and backend, its settings section, and a `plugin` module that states them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from pai_operator.backend import Backend, Resource
from pai_operator.core_settings import CoreSettings


class NamespaceAnnotations(Protocol):
    """Namespace annotations as the kopf side reads them (`kube.NamespaceAnnotationCache`)."""

    async def get(self, namespace: str) -> Mapping[str, str]: ...

    async def get_strict(self, namespace: str) -> Mapping[str, str]: ...

    def peek(self, namespace: str) -> Mapping[str, str] | None: ...


@dataclass(frozen=True)
class Built:
    """One backend of a plug-in, ready to run, and what to close when the operator stops."""

    backend: Backend[Any, Any, Any, Any]
    closers: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)


@dataclass(frozen=True)
class Plugin:
    """One registry. `build` and `describe` receive the joined settings (`registry.OperatorSettings`),
    an instance of the plug-in's own `settings` section too."""

    name: str
    resources: tuple[Resource, ...]
    settings: type[BaseModel]
    build: Callable[[CoreSettings, NamespaceAnnotations], Sequence[Built]]
    """The backends to run (none when the registry is not configured)."""
    describe: Callable[[CoreSettings], str]
    """One phrase for the startup log line: where the registry is, or that it is off."""
