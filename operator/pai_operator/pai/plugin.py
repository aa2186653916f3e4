"""PAI as a plug-in (`pai_operator.registry.PLUGINS`): its resource, its settings section, and
the backend built from them. Always on: the operator's first registry."""

from __future__ import annotations

from collections.abc import Sequence

from pai_operator.core_settings import CoreSettings
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.identities import ClientPool
from pai_operator.pai.settings import PaiSettings
from pai_operator.pai.spec import RESOURCE
from pai_operator.plugin import Built, NamespaceAnnotations, Plugin


def _section(settings: CoreSettings) -> PaiSettings:
    if not isinstance(settings, PaiSettings):
        raise TypeError("the operator settings lack PAI's section (registry.OperatorSettings has it)")
    return settings


def build(settings: CoreSettings, namespaces: NamespaceAnnotations) -> Sequence[Built]:
    if not isinstance(settings, PaiSettings):  # narrows to both sections: the pool reads both
        raise TypeError("the operator settings lack PAI's section (registry.OperatorSettings has it)")
    # One pool per operator: clients per (identity, region), never shared across either.
    clients = ClientPool(settings, namespaces)
    return [Built(PaiBackend(clients, settings.region), closers=(clients.aclose,))]


def describe(settings: CoreSettings) -> str:
    pai = _section(settings)
    unmapped = "refused (NoCredentials)" if pai.require_namespace_identity else "use the operator's identity"
    return (
        f"PAI region {pai.region}, endpoint {pai.endpoint or '(from region)'}, unmapped namespaces {unmapped}"
    )


PLUGIN = Plugin(name="PAI", resources=(RESOURCE,), settings=PaiSettings, build=build, describe=describe)
