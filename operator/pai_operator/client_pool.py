"""PAI clients, one per region: quotas and endpoints are per region (and, with per-namespace
identities, per account), so rate limits and connection pools are never shared across them."""

from __future__ import annotations

from pai_operator import metrics
from pai_operator.pai import PaiClient, PaiClientConfig
from pai_operator.settings import OperatorSettings


class ClientPool:
    """Created on first use; an explicit endpoint (tests, private endpoints) serves every region."""

    def __init__(self, settings: OperatorSettings) -> None:
        self._settings = settings
        self._clients: dict[str, PaiClient] = {}

    def for_region(self, region_id: str) -> PaiClient:
        key = "" if self._settings.endpoint else region_id
        client = self._clients.get(key)
        if client is None:
            config = PaiClientConfig(
                region_id=region_id,
                endpoint=self._settings.endpoint,
                use_vpc=self._settings.use_vpc_endpoint,
                read_rate=self._settings.read_rate,
                write_rate=self._settings.write_rate,
                user_agent=self._settings.user_agent,
            )
            client = PaiClient(
                config,
                on_request=metrics.observe_pai_request,
                on_rate_limit_wait=metrics.observe_rate_limit_wait,
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
