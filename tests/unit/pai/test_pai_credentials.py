"""Credentials: never shown, taken from the default chain lazily, explicit ones as an option."""

from __future__ import annotations

from pathlib import Path

import pytest

from pai_operator.pai.credentials import (
    Credentials,
    DefaultChainCredentialsProvider,
    StaticCredentialsProvider,
)
from pai_operator.pai.errors import CredentialsError


def test_repr_and_str_never_show_secret_or_token() -> None:
    credentials = Credentials("LTAI-id", "very-secret-value", "sts-token-value")
    provider = StaticCredentialsProvider(credentials)
    for text in (repr(credentials), str(credentials), repr(provider), f"{credentials}", str([credentials])):
        assert "very-secret-value" not in text
        assert "sts-token-value" not in text
        assert "LTAI-id" in text
    assert credentials.secrets == ("very-secret-value", "sts-token-value")
    assert Credentials("id", "s").secrets == ("s",)


async def test_static_provider_returns_its_credentials() -> None:
    credentials = Credentials("id", "secret")
    assert await StaticCredentialsProvider(credentials).get_credentials() is credentials


@pytest.fixture
def isolated_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> object:
    """The library captured the environment at import: patch what it captured, and switch off
    every provider that would read the real home directory or reach the network."""
    from alibabacloud_credentials.utils import auth_util

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(auth_util, "environment_access_key_id", None)
    monkeypatch.setattr(auth_util, "environment_access_key_secret", None)
    monkeypatch.setattr(auth_util, "environment_security_token", None)
    monkeypatch.setattr(auth_util, "enable_oidc_credential", False, raising=False)
    monkeypatch.setattr(auth_util, "environment_cli_profile_disabled", "true")
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")
    monkeypatch.setattr(auth_util, "environment_credentials_file", str(tmp_path / "missing.ini"))
    monkeypatch.setattr(auth_util, "environment_credentials_uri", None)
    return auth_util


async def test_default_chain_reads_environment_keys_with_sts_token(
    isolated_chain: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolated_chain, "environment_access_key_id", "env-id")
    monkeypatch.setattr(isolated_chain, "environment_access_key_secret", "env-secret")
    monkeypatch.setattr(isolated_chain, "environment_security_token", "env-token")
    credentials = await DefaultChainCredentialsProvider().get_credentials()
    assert credentials == Credentials("env-id", "env-secret", "env-token")


async def test_default_chain_without_any_source_raises_credentials_error(isolated_chain: object) -> None:
    provider = DefaultChainCredentialsProvider()
    with pytest.raises(CredentialsError) as caught:
        await provider.get_credentials()
    assert caught.value.retryable
    assert "cannot obtain Alibaba Cloud credentials" in str(caught.value)
