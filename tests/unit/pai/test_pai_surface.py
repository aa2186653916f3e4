"""The public surface of the PAI client package, pinned as httpx pins its own: what callers may import
from `pai_operator.pai`, and the shared error tree drawn in `pai_operator.errors`' docstring."""

from __future__ import annotations

import inspect
import re
import types

import pai_operator.pai as pai
from pai_operator import errors

PUBLIC = [
    "AuthError",
    "ConflictError",
    "CreateModelRequest",
    "CreateModelResponse",
    "CreateModelVersionRequest",
    "CreateModelVersionResponse",
    "Credentials",
    "CredentialsError",
    "CredentialsProvider",
    "DefaultChainCredentialsProvider",
    "IncompleteListError",
    "InvalidRequestError",
    "Label",
    "ListModelVersionsRequest",
    "ListModelVersionsResponse",
    "ListModelsRequest",
    "ListModelsResponse",
    "Model",
    "ModelNotFoundError",
    "ModelVersion",
    "NetworkError",
    "NoCredentialsError",
    "NotFoundError",
    "PaiClient",
    "PaiClientConfig",
    "PaiError",
    "ServerError",
    "StaleRequestError",
    "StaticCredentialsProvider",
    "ThrottledError",
    "UpdateModelRequest",
    "UpdateModelVersionRequest",
    "classify",
]


def test_public_surface_is_pinned() -> None:
    # Changing this list is changing the client's API: every caller (reconciler, tests, a second
    # backend's engine) may depend on it.
    assert pai.__all__ == PUBLIC


def test_every_public_name_is_exported_and_defined_in_the_package() -> None:
    for name in pai.__all__:
        value = getattr(pai, name)
        # The error classes are the shared taxonomy (`pai_operator.errors`), re-exported.
        assert value.__module__.startswith(("pai_operator.pai.", "pai_operator.errors")), name
    exported_but_unlisted = [
        name
        for name, value in vars(pai).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name not in pai.__all__
    ]
    assert exported_but_unlisted == []


def test_every_error_class_is_public() -> None:
    classes = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.RemoteError) and cls is not errors.RemoteError
    }
    assert classes <= set(pai.__all__)
    assert pai.PaiError is errors.RemoteError


TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>\w+Error)\s+(?P<kind>\w+)\s+(?P<retryable>yes|no)\b")


def test_error_tree_in_the_docstring_matches_the_classes() -> None:
    drawn: dict[str, tuple[int, str, bool]] = {}
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    assert errors.__doc__
    for line in errors.__doc__.splitlines():
        match = TREE_LINE.match(line.strip("\n")[4:])  # the drawing is indented by four spaces
        if not match:
            continue
        depth = len(match["indent"])
        name = match["name"]
        drawn[name] = (depth, match["kind"], match["retryable"] == "yes")
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))

    classes = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.RemoteError)
    }
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        _depth, kind, retryable = drawn[name]
        assert cls.kind == kind, name
        # `retryable` is a property of the class's kind; no constructor arguments needed to read it.
        assert cls.__new__(cls).retryable is retryable, name
        if cls is not errors.RemoteError:
            assert cls.__bases__ == (classes[parents[name]],), name
