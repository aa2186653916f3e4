"""API-key sources: static, environment, a mounted Secret file (re-read when it changes)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from pai_operator.errors import AuthError, CredentialsError, NoCredentialsError
from pai_operator.truefoundry import EnvApiKey, FileApiKey, StaticApiKey

KEY = "tfy_abcdef0123456789"


async def test_static_key_and_its_repr() -> None:
    source = StaticApiKey(f"  {KEY}\n")
    assert await source.api_key() == KEY
    assert KEY not in repr(source)
    assert KEY not in str(source)


@pytest.mark.parametrize("bad", ["", "   ", "\n"])
async def test_an_empty_key_is_no_credentials(bad: str) -> None:
    with pytest.raises(NoCredentialsError):
        await StaticApiKey(bad).api_key()


@pytest.mark.parametrize("bad", ["tfy_a b", "tfy_a\nb", "tfy_\u00e9", "tfy_\x00"])
async def test_a_key_a_header_cannot_carry_is_refused_without_being_shown(bad: str) -> None:
    with pytest.raises(NoCredentialsError, match="characters") as caught:
        await StaticApiKey(bad).api_key()
    assert bad.strip() not in str(caught.value)


async def test_env_key_is_read_on_every_call() -> None:
    environ = {"TFY_API_KEY": KEY}
    source = EnvApiKey(environ=environ)
    assert await source.api_key() == KEY
    environ["TFY_API_KEY"] = "tfy_rotated"
    assert await source.api_key() == "tfy_rotated"
    del environ["TFY_API_KEY"]
    with pytest.raises(NoCredentialsError, match=r"\$TFY_API_KEY"):
        await source.api_key()
    assert repr(EnvApiKey("OTHER")) == "EnvApiKey(variable='OTHER')"


async def test_file_key_is_re_read_when_the_secret_is_swapped(tmp_path: Path) -> None:
    # What the kubelet does to a Secret volume: files in a timestamped directory, reached
    # through the `..data` symlink, which is replaced atomically on update.
    mount = tmp_path / "secret"
    mount.mkdir()
    first = mount / "..2024_01_01"
    first.mkdir()
    (first / "api-key").write_text(KEY + "\n")
    (mount / "..data").symlink_to(first.name)
    (mount / "api-key").symlink_to("..data/api-key")
    source = FileApiKey(mount / "api-key")
    assert await source.api_key() == KEY

    second = mount / "..2024_01_02"
    second.mkdir()
    (second / "api-key").write_text("tfy_rotated")
    (mount / "..data_tmp").symlink_to(second.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    assert await source.api_key() == "tfy_rotated"
    assert "tfy_" not in repr(source)


async def test_file_key_is_not_read_again_while_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "api-key"
    path.write_text(KEY)
    source = FileApiKey(path)
    assert await source.api_key() == KEY
    reads: list[Path] = []
    original = Path.read_text

    def counting_read(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting_read)
    for _ in range(3):
        assert await source.api_key() == KEY
    assert reads == []
    path.write_text("tfy_longer_rotated_key")
    assert await source.api_key() == "tfy_longer_rotated_key"
    assert reads == [path]


async def test_a_missing_or_empty_file_is_no_credentials(tmp_path: Path) -> None:
    with pytest.raises(NoCredentialsError, match="does not exist"):
        await FileApiKey(tmp_path / "absent").api_key()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(NoCredentialsError, match="empty"):
        await FileApiKey(tmp_path / "empty").api_key()


async def test_an_unreadable_file_is_a_retryable_credentials_error(tmp_path: Path) -> None:
    # A directory where the file should be: stat works, reading fails (as EACCES would).
    (tmp_path / "api-key").mkdir()
    with pytest.raises(CredentialsError) as caught:
        await FileApiKey(tmp_path / "api-key").api_key()
    assert caught.value.retryable
    assert "IsADirectoryError" in str(caught.value)


def jwt(**claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


async def test_an_expired_jwt_is_auth_failed_before_anything_is_sent() -> None:
    expired = jwt(tenantName="acme", exp=int(time.time()) - 60, subjectType="serviceaccount")
    with pytest.raises(AuthError, match="expired at") as caught:
        await StaticApiKey(expired).api_key()
    error = caught.value
    assert not isinstance(error, NoCredentialsError)
    assert not error.retryable  # no retry storm: permanent until a new key is in place
    assert error.code == "ApiKeyExpired"
    assert expired not in str(error)
    assert expired.split(".")[1] not in str(error)


async def test_a_valid_jwt_a_pat_and_odd_tokens_pass() -> None:
    valid = jwt(tenantName="acme", exp=int(time.time()) + 3600)
    assert await StaticApiKey(valid).api_key() == valid
    for token in (KEY, jwt(tenantName="acme"), "a.b.c", "x.!!!.y", jwt(exp="soon")):
        assert await StaticApiKey(token).api_key() == token
