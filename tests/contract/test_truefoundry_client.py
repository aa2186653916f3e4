"""Our TrueFoundry client against the emulator as a process, under both API prefixes: the other
side of the contract that `test_truefoundry_sdk.py` checks with the official SDK. What the
operator relies on: create/update through PUT, reads by id, by number and by FQN, paging, the
ML repo lookup, and the error classes it reasons about (never a 409; an alias in use is a
conflict; a missing ML repo is the container missing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from pai_operator.errors import (
    AuthError,
    ConflictError,
    InvalidRequestError,
    ModelNotFoundError,
    NetworkError,
    NotFoundError,
)
from pai_operator.truefoundry import StaticApiKey, TrueFoundryClient, TrueFoundryClientConfig
from pai_operator.truefoundry.models import ModelManifest
from tests.support.tfy_emulator import TfyEmulatorProcess

KEY = "tfy-client-contract-key"
REPO = "repo-client"


@pytest.fixture(scope="module")
def process() -> Iterator[TfyEmulatorProcess]:
    with TfyEmulatorProcess(api_key=KEY, ml_repos=[REPO], tenant="acme") as tfy:
        yield tfy


@pytest.fixture(params=["/api/svc/v1", "/api/ml/v1"])
async def client(
    process: TfyEmulatorProcess, request: pytest.FixtureRequest
) -> AsyncIterator[TrueFoundryClient]:
    process.admin.reset()
    config = TrueFoundryClientConfig(
        host=process.url, api_prefix=request.param, read_rate=None, write_rate=None
    )
    async with TrueFoundryClient(config, StaticApiKey(KEY)) as tfy:
        yield tfy


def manifest(name: str, **fields: object) -> ModelManifest:
    return ModelManifest.model_validate(
        {
            "name": name,
            "ml_repo": REPO,
            "metadata": {"k": 1},
            "source": {"type": "external", "uri": "s3://bucket/x"},
            **fields,
        }
    )


async def test_create_read_update_delete(client: TrueFoundryClient, process: TfyEmulatorProcess) -> None:
    first = await client.apply(manifest("m"))
    second = await client.apply(manifest("m", description="two"))
    assert (first.version, second.version) == (1, 2)
    assert first.fqn == "model:acme/repo-client/m:1"
    assert (await client.get(first.id)).id == first.id
    assert (await client.get_by_fqn(second.fqn)).id == second.id
    repo = await client.find_ml_repo(REPO)
    page = await client.list_versions(ml_repo_id=repo.id, name="m", version=1, limit=1)
    assert [v.id for v in page.data] == [first.id]

    updated = await client.apply(manifest("m", version=1, description="now described", version_alias="v1-x"))
    assert updated.id == first.id
    assert updated.manifest.description == "now described"
    assert len(process.admin.versions(REPO, "m")) == 2  # an update never creates

    await client.delete(first.id)
    with pytest.raises(NotFoundError):
        await client.get(first.id)
    with pytest.raises(NotFoundError):
        await client.delete(first.id)


async def test_paging_walks_every_version_newest_first(client: TrueFoundryClient) -> None:
    for _ in range(7):
        await client.apply(manifest("paged"))
    repo = await client.find_ml_repo(REPO)
    numbers = [v.version async for v in client.iter_versions(ml_repo_id=repo.id, name="paged", page_size=3)]
    assert numbers == [7, 6, 5, 4, 3, 2, 1]


async def test_errors_are_the_classes_the_reconciler_reasons_about(
    client: TrueFoundryClient, process: TfyEmulatorProcess
) -> None:
    await client.apply(manifest("e", version_alias="v-prod"))
    with pytest.raises(ConflictError):  # the alias is held by version 1: retried soon, not InvalidSpec
        await client.apply(manifest("e", version_alias="v-prod"))
    with pytest.raises(InvalidRequestError):  # a version's files cannot change
        await client.apply(
            ModelManifest.model_validate(
                {**manifest("e", version=1).to_wire(), "source": {"type": "external", "uri": "s3://b/y"}}
            )
        )
    with pytest.raises(ModelNotFoundError):
        await client.find_ml_repo("no-such-repo")
    wrong = TrueFoundryClientConfig(host=process.url, api_prefix=client.config.api_prefix)
    async with TrueFoundryClient(wrong, StaticApiKey("not-the-key")) as stranger:
        with pytest.raises(AuthError) as refused:
            await stranger.get_by_fqn("model:acme/repo-client/e:1")
    assert "not-the-key" not in str(refused.value)
    assert all(entry["Status"] != 409 for entry in process.admin.journal())


async def test_a_dropped_create_answer_is_outcome_unknown_and_the_version_exists(
    client: TrueFoundryClient, process: TfyEmulatorProcess
) -> None:
    process.admin.add_fault("ApplyModelVersion", "commit_then_drop", count=1)
    with pytest.raises(NetworkError) as lost:
        await client.apply(manifest("lost"))
    assert lost.value.outcome_unknown
    # The write happened: this is why the operator lists before creating again.
    assert len(process.admin.versions(REPO, "lost")) == 1
