"""Manifests as `plan` and `import` read them: `-f FILE|DIR|-`, multi-document YAML (or JSON),
`kind: List` unwrapped. The kinds this operator serves are kept (every resource of every plug-in in
`registry.PLUGINS`); anything else (a Namespace, a Deployment beside them) is set aside with a note,
since a directory of manifests usually holds more than ours."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from pai_operator.backend import Resource
from pai_operator.registry import PLUGINS

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

DEFAULT_NAMESPACE = "default"


def served_resources() -> dict[tuple[str, str], Resource]:
    """(apiVersion, kind) -> resource, for every kind of every registry plug-in."""
    return {(r.api_version, r.kind): r for plugin in PLUGINS for r in plugin.resources}


@dataclass(frozen=True)
class Manifest:
    """One object of a kind this operator serves, as written in a file."""

    resource: Resource
    body: Mapping[str, Any]
    origin: str  # the path, and the document number in a multi-document file: for messages

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str:
        return str((self.body.get("metadata") or {}).get("namespace") or DEFAULT_NAMESPACE)

    @property
    def ref(self) -> str:
        """`Kind namespace/name`, how reports name the object."""
        return f"{self.resource.kind} {self.namespace}/{self.name}"


@dataclass
class ManifestSet:
    objects: list[Manifest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was set aside, and why


class ManifestError(Exception):
    """A manifest source that cannot be read at all (missing path, YAML syntax error)."""


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    if path.exists():
        return [path]
    raise ManifestError(f"{path}: no such file or directory")


def _documents(text: str, origin: str) -> Iterator[tuple[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{origin}: {exc}") from None
    for index, document in enumerate(documents, start=1):
        where = f"{origin}#{index}" if len(documents) > 1 else origin
        if isinstance(document, Mapping) and document.get("kind") == "List":
            for item_index, item in enumerate(document.get("items") or [], start=1):
                yield f"{where}.items[{item_index}]", item
        elif document is not None:
            yield where, document


def parse_documents(sources: Iterable[tuple[str, str]], *, namespace: str | None = None) -> ManifestSet:
    """Manifests from (origin, text) pairs. `namespace` fills objects that name none (as kubectl's
    `-n` does); without it they are in "default"."""
    served = served_resources()
    found = ManifestSet()
    for origin, text in sources:
        for where, document in _documents(text, origin):
            if not isinstance(document, Mapping):
                found.notes.append(f"{where}: not an object, ignored")
                continue
            api_version, kind = document.get("apiVersion"), document.get("kind")
            resource = served.get((str(api_version), str(kind)))
            if resource is None:
                found.notes.append(f"{where}: {kind or '(no kind)'} {api_version or ''} is not ours, ignored")
                continue
            metadata = dict(document.get("metadata") or {})
            if not metadata.get("name"):
                found.notes.append(f"{where}: {kind} without metadata.name, ignored")
                continue
            if namespace and not metadata.get("namespace"):
                metadata["namespace"] = namespace
            found.objects.append(Manifest(resource, {**document, "metadata": metadata}, where))
    return found


def load_manifests(
    paths: Iterable[str], *, namespace: str | None = None, stdin: TextIO | None = None
) -> ManifestSet:
    """`-f` values: files, directories (every .yaml/.yml/.json below, in name order) or `-`."""
    sources: list[tuple[str, str]] = []
    for value in paths:
        if value == "-":
            sources.append(("<stdin>", (stdin or sys.stdin).read()))
            continue
        for file in _files(Path(value)):
            sources.append((str(file), file.read_text(encoding="utf-8")))
    return parse_documents(sources, namespace=namespace)
