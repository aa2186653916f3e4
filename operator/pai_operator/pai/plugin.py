"""PAI as a plug-in (`pai_operator.registry.PLUGINS`): its resources (ModelVersion, Model), its
settings section, and the backends built from them (one client pool shared by both). Always
on: the operator's first registry."""

from __future__ import annotations

from collections.abc import Sequence

from pai_operator.core_settings import CoreSettings
from pai_operator.pai.backend import PaiBackend
from pai_operator.pai.identities import ClientPool
from pai_operator.pai.model_backend import ModelBackend
from pai_operator.pai.model_refs import ModelDirectory
from pai_operator.pai.model_spec import MODEL_RESOURCE
from pai_operator.pai.observation import observation_pacer
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
    # Versions find the Model their spec.modelRef names through the Model controller's watch.
    models = ModelDirectory()
    # One read budget for both controllers: their clients, and so their quotas, are the pool's.
    pacer = observation_pacer(settings.observation_budget, settings.read_rate)
    return [
        Built(PaiBackend(clients, settings.region, models, pacer), closers=(clients.aclose,)),
        Built(ModelBackend(clients, settings.region, models, pacer)),
    ]


def describe(settings: CoreSettings) -> str:
    pai = _section(settings)
    unmapped = "refused (NoCredentials)" if pai.require_namespace_identity else "use the operator's identity"
    return (
        f"PAI region {pai.region}, endpoint {pai.endpoint or '(from region)'}, unmapped namespaces {unmapped}"
    )


PLUGIN = Plugin(
    name="PAI", resources=(RESOURCE, MODEL_RESOURCE), settings=PaiSettings, build=build, describe=describe
)
