"""TrueFoundry as a plug-in (`pai_operator.registry.PLUGINS`): on when its host is set; the API
key comes from TFY_API_KEY (a Secret)."""

from __future__ import annotations

from collections.abc import Sequence

from pai_operator import metrics
from pai_operator.core_settings import CoreSettings
from pai_operator.plugin import Built, NamespaceAnnotations, Plugin
from pai_operator.truefoundry.backend import TrueFoundryBackend
from pai_operator.truefoundry.client import TrueFoundryClient, TrueFoundryClientConfig
from pai_operator.truefoundry.settings import TrueFoundrySettings
from pai_operator.truefoundry.spec import RESOURCE


def _section(settings: CoreSettings) -> TrueFoundrySettings:
    if not isinstance(settings, TrueFoundrySettings):
        raise TypeError("the operator settings lack TrueFoundry's section (registry.OperatorSettings has it)")
    return settings


def build(settings: CoreSettings, namespaces: NamespaceAnnotations) -> Sequence[Built]:
    """TrueFoundry keys are per tenant: every namespace acts as the operator's identity."""
    tfy = _section(settings)
    if not tfy.truefoundry_host:
        return []
    client = TrueFoundryClient(
        TrueFoundryClientConfig(
            host=tfy.truefoundry_host, api_prefix=tfy.truefoundry_api_prefix, user_agent=settings.user_agent
        ),
        on_request=metrics.request_hook(RESOURCE.registry),
    )
    backend = TrueFoundryBackend(client, settings.observation_budget)
    return [Built(backend, closers=(backend.aclose,))]


def describe(settings: CoreSettings) -> str:
    tfy = _section(settings)
    return f"TrueFoundry {tfy.truefoundry_host}" if tfy.truefoundry_host else "TrueFoundry off"


PLUGIN = Plugin(
    name="TrueFoundry", resources=(RESOURCE,), settings=TrueFoundrySettings, build=build, describe=describe
)
