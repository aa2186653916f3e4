"""The public surface of the TrueFoundry client package, pinned like `pai_operator.pai`'s: what
callers (the TrueFoundry backend of the engine, tests) may import from `pai_operator.truefoundry`."""

from __future__ import annotations

import inspect
import types

import pai_operator.truefoundry as truefoundry
from pai_operator import errors

PUBLIC = [
    "FRAMEWORK_TYPES",
    "ApiKeySource",
    "AuthError",
    "ConflictError",
    "CredentialsError",
    "EnvApiKey",
    "ExternalSource",
    "FastaiFramework",
    "FileApiKey",
    "Framework",
    "GluonFramework",
    "H2oFramework",
    "InvalidRequestError",
    "KerasFramework",
    "LightgbmFramework",
    "LocalSource",
    "Metric",
    "MlRepo",
    "MlRepoManifest",
    "ModelManifest",
    "ModelNotFoundError",
    "ModelVersion",
    "ModelVersionEnvironment",
    "NetworkError",
    "NoCredentialsError",
    "NotFoundError",
    "OnnxFramework",
    "OtherFramework",
    "OtherSource",
    "PaddleFramework",
    "Page",
    "Pagination",
    "PytorchFramework",
    "RemoteError",
    "ServerError",
    "SklearnFramework",
    "SklearnModelSchema",
    "Source",
    "SpacyFramework",
    "StaticApiKey",
    "StatsmodelsFramework",
    "Subject",
    "TensorflowFramework",
    "ThrottledError",
    "TransformersFramework",
    "TrueFoundryClient",
    "TrueFoundryClientConfig",
    "TrueFoundrySource",
    "XgboostFramework",
    "XgboostModelSchema",
    "classify",
]

CLIENT_METHODS = {
    "apply": "(self, manifest: 'ModelManifest') -> 'ModelVersion'",
    "get": "(self, version_id: 'str') -> 'ModelVersion'",
    "get_by_fqn": "(self, fqn: 'str') -> 'ModelVersion'",
    "delete": "(self, version_id: 'str') -> 'None'",
    "apply_tags": "(self, version_id: 'str', tags: 'Sequence[str]', force: 'bool' = False) -> 'None'",
    "find_ml_repo": "(self, name: 'str') -> 'MlRepo'",
    "iter_ml_repos": "(self) -> 'AsyncIterator[MlRepo]'",
    "iter_versions": (
        "(self, *, ml_repo_id: 'str | None' = None, model_id: 'str | None' = None, name: 'str | None' = None,"
        " version: 'int | None' = None, fqn: 'str | None' = None, tag: 'str | None' = None,"
        " page_size: 'int' = 100) -> 'AsyncIterator[ModelVersion]'"
    ),
    "list_versions": (
        "(self, *, ml_repo_id: 'str | None' = None, model_id: 'str | None' = None, name: 'str | None' = None,"
        " version: 'int | None' = None, fqn: 'str | None' = None, tag: 'str | None' = None,"
        " limit: 'int' = 100, offset: 'int' = 0) -> 'Page[ModelVersion]'"
    ),
    "aclose": "(self) -> 'None'",
}


def test_public_surface_is_pinned() -> None:
    # Changing this list is changing the client's API: the engine's TrueFoundry backend depends on it.
    assert truefoundry.__all__ == PUBLIC


def test_every_public_name_is_exported_and_defined_in_the_package() -> None:
    for name in truefoundry.__all__:
        value = getattr(truefoundry, name)
        module = getattr(value, "__module__", None)
        if inspect.isclass(value) or inspect.isfunction(value):
            # The error classes are the shared taxonomy (`pai_operator.errors`), re-exported.
            assert module is not None
            assert module.startswith(("pai_operator.truefoundry.", "pai_operator.errors")), name
    exported_but_unlisted = [
        name
        for name, value in vars(truefoundry).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in truefoundry.__all__
    ]
    assert exported_but_unlisted == []


def test_every_shared_error_class_the_client_raises_is_public() -> None:
    # StaleRequestError is PAI's (a signed request too old); bearer tokens have no such thing.
    classes = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.RemoteError) and name != "StaleRequestError"
    }
    assert classes <= set(truefoundry.__all__)
    assert truefoundry.RemoteError is errors.RemoteError


def test_client_method_signatures_are_pinned() -> None:
    public_methods = {
        name
        for name, _ in inspect.getmembers(truefoundry.TrueFoundryClient, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public_methods == set(CLIENT_METHODS)
    for name, signature in CLIENT_METHODS.items():
        assert str(inspect.signature(getattr(truefoundry.TrueFoundryClient, name))) == signature, name
