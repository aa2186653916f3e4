"""Contract fixtures: one emulator subprocess per session, reset before every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from alibabacloud_aiworkspace20210204.client import Client
from alibabacloud_tea_openapi.models import Config

from tests.support.emulator import DEFAULT_CREDENTIAL, AdminClient, Credential, EmulatorProcess

MODEL_ID = "model-contract"
OTHER_MODEL_ID = "model-other"
STS_CREDENTIAL = Credential("STS.contract-id", "sts-contract-secret", "sts-contract-token")


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(
        credentials=[DEFAULT_CREDENTIAL, STS_CREDENTIAL], models=[MODEL_ID, OTHER_MODEL_ID]
    ) as process:
        yield process


@pytest.fixture
def emulator(emulator_process: EmulatorProcess) -> EmulatorProcess:
    emulator_process.admin.reset()
    return emulator_process


@pytest.fixture
def admin(emulator: EmulatorProcess) -> AdminClient:
    return emulator.admin


@pytest.fixture
def make_sdk(emulator: EmulatorProcess) -> Callable[..., Client]:
    """The official SDK pointed at the emulator over plain HTTP on loopback."""

    def make(credential: Credential = DEFAULT_CREDENTIAL, read_timeout_ms: int = 10_000) -> Client:
        return Client(
            Config(
                access_key_id=credential.access_key_id,
                access_key_secret=credential.access_key_secret,
                security_token=credential.security_token,
                endpoint=emulator.endpoint,
                protocol="http",
                read_timeout=read_timeout_ms,
                connect_timeout=5_000,
            )
        )

    return make


@pytest.fixture
def sdk(make_sdk: Callable[..., Client]) -> Client:
    return make_sdk()
