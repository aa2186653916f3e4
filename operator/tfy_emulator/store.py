"""The tenant's ML repos, models and model versions, and every rule of the model-version API that is
not HTTP: numbering, update-in-place with immutable fields, alias and tag uniqueness, soft deletion,
list filters and ordering. Pure logic (no I/O): the clock and the id source are injected.

Records are rendered in the wire shapes the official SDK parses (`ModelVersion`, `Model`, `MlRepo`);
the state file and the admin dump use the same shapes plus a few PascalCase bookkeeping keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tfy_emulator import errors
from tfy_emulator import fqn as fqns
from tfy_emulator.config import DEFAULT_STORAGE_INTEGRATION_FQN, subject_for
from tfy_emulator.validation import IMMUTABLE_FIELDS, MUTABLE_FIELDS, MlRepoManifest, ModelManifest

# Seeded and admin-added ML repos are created by this subject (no token was involved).
SYSTEM_SUBJECT = subject_for("tfy-emulator-admin")
# Numeric-string ids start here, far from small version numbers, so that a client mixing up an ML
# repo id and a version number is caught.
FIRST_ML_REPO_ID = 1001
# The metadata key the `truefoundry` library writes for itself; lists hide it unless asked.
INTERNAL_METADATA_KEY = ".truefoundry"


def iso_millis(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class MlRepo:
    id: str
    name: str
    storage_integration_fqn: str
    created_at: str
    created_by: dict[str, Any]
    description: str | None = None
    collaborators: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Version:
    id: str
    model_id: str
    number: int
    manifest: dict[str, Any]
    """The stored manifest without name, ml_repo and version (those come from the model)."""
    created_at: str
    updated_at: str
    created_by: dict[str, Any]
    seq: int  # creation order across the store: the tie-breaker of list orders
    tags: list[str] = field(default_factory=list)
    deleted_at: str | None = None

    @property
    def live(self) -> bool:
        return self.deleted_at is None


@dataclass
class Model:
    id: str
    ml_repo_id: str
    name: str
    created_at: str
    updated_at: str
    created_by: dict[str, Any]
    seq: int
    last_number: int = 0
    """The highest version number ever assigned: numbers of deleted versions are never reused."""
    versions: dict[int, Version] = field(default_factory=dict)
    deleted_at: str | None = None

    def live_versions(self) -> list[Version]:
        return [version for version in self.versions.values() if version.live]


@dataclass(frozen=True)
class VersionQuery:
    """The filters of GET model-versions; they combine with AND."""

    fqn: fqns.Fqn | None = None
    model_id: str | None = None
    ml_repo_id: str | None = None
    name: str | None = None
    version: int | str | None = None  # an int or fqns.LATEST
    tag: str | None = None
    run_ids: tuple[str, ...] = ()
    run_steps: tuple[float, ...] = ()


@dataclass(frozen=True)
class ModelQuery:
    fqn: fqns.Fqn | None = None
    ml_repo_id: str | None = None
    name: str | None = None
    run_id: str | None = None
    include_empty_models: bool = True


def _new_uuid() -> str:
    return str(uuid.uuid4())


class Store:
    def __init__(
        self,
        tenant: str,
        seeded_ml_repos: Sequence[str],
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = _new_uuid,
    ) -> None:
        self.tenant = tenant
        self._seeded = list(dict.fromkeys(seeded_ml_repos))
        self._clock = clock
        self._new_id = new_id
        self.account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tfy-emulator:account:{tenant}"))
        self.reset()

    def reset(self) -> None:
        self.ml_repos: dict[str, MlRepo] = {}
        self.models: dict[str, Model] = {}
        self.versions: dict[str, Version] = {}
        self._models_by_key: dict[tuple[str, str], Model] = {}
        self._next_ml_repo_id = FIRST_ML_REPO_ID
        self._seq = 0
        for name in self._seeded:
            self.add_ml_repo(name)

    def _now(self) -> str:
        return iso_millis(self._clock())

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ML repos

    def add_ml_repo(
        self,
        name: str,
        subject: dict[str, Any] | None = None,
        storage_integration_fqn: str = DEFAULT_STORAGE_INTEGRATION_FQN,
    ) -> tuple[MlRepo, bool]:
        """The repo named `name`, created if needed; True when it was new."""
        existing = self.ml_repo_by_name(name)
        if existing is not None:
            return existing, False
        repo = MlRepo(
            id=str(self._next_ml_repo_id),
            name=name,
            storage_integration_fqn=storage_integration_fqn,
            created_at=self._now(),
            created_by=subject or SYSTEM_SUBJECT,
        )
        self._next_ml_repo_id += 1
        self.ml_repos[repo.id] = repo
        return repo, True

    def ml_repo_by_name(self, name: str) -> MlRepo | None:
        return next((repo for repo in self.ml_repos.values() if repo.name == name), None)

    def get_ml_repo(self, repo_id: str) -> MlRepo:
        repo = self.ml_repos.get(repo_id)
        if repo is None:
            raise errors.ml_repo_not_found(repo_id)
        return repo

    def apply_ml_repo(self, manifest: MlRepoManifest, subject: dict[str, Any], dry_run: bool) -> MlRepo:
        """Create the repo, or replace the mutable parts of the one with that name. A dry run
        answers what would be stored and changes nothing."""
        existing = self.ml_repo_by_name(manifest.name)
        collaborators = [c.model_dump() for c in manifest.collaborators or []]
        if existing is None:
            repo = MlRepo(
                id=str(self._next_ml_repo_id),
                name=manifest.name,
                storage_integration_fqn=manifest.storage_integration_fqn,
                created_at=self._now(),
                created_by=subject,
                description=manifest.description,
                collaborators=collaborators,
            )
            if not dry_run:
                self._next_ml_repo_id += 1
                self.ml_repos[repo.id] = repo
            return repo
        updated = MlRepo(
            id=existing.id,
            name=existing.name,
            storage_integration_fqn=manifest.storage_integration_fqn,
            created_at=existing.created_at,
            created_by=existing.created_by,
            description=manifest.description,
            collaborators=collaborators,
        )
        if not dry_run:
            self.ml_repos[existing.id] = updated
        return updated

    def list_ml_repos(self, name: str | None, offset: int, limit: int) -> tuple[int, list[MlRepo]]:
        matching = [repo for repo in self.ml_repos.values() if name is None or repo.name == name]
        matching.sort(key=lambda repo: int(repo.id))
        return len(matching), matching[offset : offset + limit]

    # Model versions

    def _model_of(self, version: Version) -> Model:
        return self.models[version.model_id]

    def version_fqn(self, version: Version) -> str:
        model = self._model_of(version)
        repo = self.ml_repos[model.ml_repo_id]
        return fqns.version_fqn(self.tenant, repo.name, model.name, version.number)

    def model_fqn(self, model: Model) -> str:
        return fqns.model_fqn(self.tenant, self.ml_repos[model.ml_repo_id].name, model.name)

    def get_version(self, version_id: str) -> Version:
        version = self.versions.get(version_id)
        if version is None or not version.live:
            raise errors.version_not_found(version_id)
        return version

    def _check_alias(self, model: Model | None, alias: str | None, own: Version | None) -> None:
        if model is None or alias is None:
            return
        for other in model.live_versions():
            if other is not own and other.manifest.get("version_alias") == alias:
                raise errors.alias_in_use(alias, self.version_fqn(other))

    def apply_version(self, manifest: ModelManifest, subject: dict[str, Any]) -> Version:
        """PUT model-versions: without `version`, create the model's next version (and the model
        on its first version); with `version`, update that existing version's mutable fields."""
        repo = self.ml_repo_by_name(manifest.ml_repo)
        if repo is None:
            raise errors.ml_repo_not_found(manifest.ml_repo)
        model = self._models_by_key.get((repo.id, manifest.name))
        wanted = manifest.stored()
        del wanted["name"], wanted["ml_repo"]
        if manifest.version is None:
            self._check_alias(model, manifest.version_alias, None)
            return self._create_version(repo, model, manifest.name, wanted, subject)

        version = model.versions.get(manifest.version) if model is not None else None
        if model is None or version is None or not version.live:
            raise errors.version_not_found(
                fqns.version_fqn(self.tenant, repo.name, manifest.name, manifest.version)
            )
        changed = [name for name in IMMUTABLE_FIELDS if wanted.get(name) != version.manifest.get(name)]
        if changed:
            raise errors.immutable_fields(self.version_fqn(version), changed)
        self._check_alias(model, manifest.version_alias, version)
        # Apply semantics: the request states every mutable field; one it leaves out is unset.
        updated = {key: value for key, value in version.manifest.items() if key not in MUTABLE_FIELDS}
        updated.update({key: wanted[key] for key in MUTABLE_FIELDS if key in wanted})
        if updated != version.manifest:
            version.manifest = updated
            version.updated_at = self._now()
        return version

    def _create_version(
        self,
        repo: MlRepo,
        model: Model | None,
        name: str,
        manifest: dict[str, Any],
        subject: dict[str, Any],
    ) -> Version:
        now = self._now()
        if model is None:
            model = Model(
                id=self._new_id(),
                ml_repo_id=repo.id,
                name=name,
                created_at=now,
                updated_at=now,
                created_by=subject,
                seq=self._next_seq(),
            )
            self.models[model.id] = model
            self._models_by_key[(repo.id, name)] = model
        model.last_number += 1
        version = Version(
            id=self._new_id(),
            model_id=model.id,
            number=model.last_number,
            manifest=manifest,
            created_at=now,
            updated_at=now,
            created_by=subject,
            seq=self._next_seq(),
        )
        model.versions[version.number] = version
        model.updated_at = now
        self.versions[version.id] = version
        return version

    def delete_version(self, version_id: str) -> Version:
        """Soft delete: the version disappears from get and list, and frees its alias and tags for
        other versions; its number is never assigned again."""
        version = self.get_version(version_id)
        version.deleted_at = self._now()
        return version

    def apply_tags(self, version_id: str, tags: Sequence[str], force: bool) -> Version:
        """Set the version's tags to exactly `tags`. A tag names one version per model: a tag held
        by another version is a 400 unless `force`, which moves it here."""
        version = self.get_version(version_id)
        wanted = list(dict.fromkeys(tags))
        model = self._model_of(version)
        holders = {
            tag: other
            for other in model.live_versions()
            if other is not version
            for tag in other.tags
            if tag in wanted
        }
        if holders and not force:
            raise errors.tags_in_use({tag: self.version_fqn(other) for tag, other in holders.items()})
        now = self._now()
        for tag, other in holders.items():
            other.tags = [kept for kept in other.tags if kept != tag]
            other.updated_at = now
        if wanted != version.tags:
            version.tags = wanted
            version.updated_at = now
        return version

    def _candidate_models(self, query: VersionQuery) -> list[Model]:
        models = [model for model in self.models.values() if model.deleted_at is None]
        if query.fqn is not None:
            parsed = query.fqn
            repo = self.ml_repo_by_name(parsed.ml_repo)
            if parsed.tenant != self.tenant or repo is None:
                return []
            models = [m for m in models if m.ml_repo_id == repo.id and m.name == parsed.name]
        if query.model_id is not None:
            models = [m for m in models if m.id == query.model_id]
        if query.ml_repo_id is not None:
            models = [m for m in models if m.ml_repo_id == query.ml_repo_id]
        if query.name is not None:
            models = [m for m in models if m.name == query.name]
        return models

    def list_versions(self, query: VersionQuery, offset: int, limit: int) -> tuple[int, list[Version]]:
        """Live versions matching every filter, highest version first (across models: then newest
        first), and the total before paging. A page past the end is empty."""
        wanted_numbers = [
            v for v in (query.version, query.fqn.version if query.fqn else None) if v is not None
        ]
        run_steps = set(query.run_steps)
        matching: list[Version] = []
        for model in self._candidate_models(query):
            live = model.live_versions()
            latest = max((v.number for v in live), default=None)
            for version in live:
                if any(
                    version.number != (latest if wanted == fqns.LATEST else wanted)
                    for wanted in wanted_numbers
                ):
                    continue
                if query.tag is not None and query.tag not in version.tags:
                    continue
                if query.run_ids and version.manifest.get("run_id") not in query.run_ids:
                    continue
                if run_steps and float(version.manifest.get("step", 0)) not in run_steps:
                    continue
                matching.append(version)
        matching.sort(key=lambda v: (v.number, v.seq), reverse=True)
        return len(matching), matching[offset : offset + limit]

    # Models

    def get_model(self, model_id: str) -> Model:
        model = self.models.get(model_id)
        if model is None or model.deleted_at is not None:
            raise errors.model_not_found(model_id)
        return model

    def delete_model(self, model_id: str) -> Model:
        """Deletes the model with every version. Applying the same name again makes a new model
        (a new id) whose numbering starts at 1."""
        model = self.get_model(model_id)
        now = self._now()
        for version in model.live_versions():
            version.deleted_at = now
        model.deleted_at = now
        del self._models_by_key[(model.ml_repo_id, model.name)]
        return model

    def list_models(self, query: ModelQuery, offset: int, limit: int) -> tuple[int, list[Model]]:
        """Live models matching every filter, newest first."""
        as_versions = VersionQuery(fqn=query.fqn, ml_repo_id=query.ml_repo_id, name=query.name)
        matching = []
        for model in self._candidate_models(as_versions):
            live = model.live_versions()
            if not live and not query.include_empty_models:
                continue
            if query.run_id is not None and all(v.manifest.get("run_id") != query.run_id for v in live):
                continue
            matching.append(model)
        matching.sort(key=lambda m: m.seq, reverse=True)
        return len(matching), matching[offset : offset + limit]

    def latest_version(self, model: Model) -> Version | None:
        return max(model.live_versions(), key=lambda v: v.number, default=None)

    # Wire shapes

    def version_json(self, version: Version, include_internal_metadata: bool = True) -> dict[str, Any]:
        model = self._model_of(version)
        repo = self.ml_repos[model.ml_repo_id]
        version_fqn = fqns.version_fqn(self.tenant, repo.name, model.name, version.number)
        manifest: dict[str, Any] = {
            "type": "model-version",
            "name": model.name,
            "ml_repo": repo.name,
            "version": version.number,
        }
        manifest.update({key: value for key, value in version.manifest.items() if key != "type"})
        if not include_internal_metadata:
            metadata: dict[str, Any] = manifest["metadata"]
            manifest["metadata"] = {k: v for k, v in metadata.items() if k != INTERNAL_METADATA_KEY}
        return {
            "id": version.id,
            "fqn": version_fqn,
            "created_by_subject": version.created_by,
            "created_at": version.created_at,
            "updated_at": version.updated_at,
            "manifest": manifest,
            "ml_repo_id": repo.id,
            "model_id": model.id,
            "usage_code_snippet": (
                "from truefoundry.ml import get_client\n\n"
                "client = get_client()\n"
                f'model_version = client.get_model_version_by_fqn("{version_fqn}")\n'
                'model_version.download(path=".")\n'
            ),
            "tags": list(version.tags),
            "metrics": [],
            "deployable": "framework" in version.manifest,
        }

    def model_json(self, model: Model, with_latest: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": model.id,
            "ml_repo_id": model.ml_repo_id,
            "type": "model",
            "name": model.name,
            "fqn": self.model_fqn(model),
            "created_by_subject": model.created_by,
            "created_at": model.created_at,
            "updated_at": model.updated_at,
        }
        latest = self.latest_version(model) if with_latest else None
        if latest is not None:
            body["latest_version"] = self.version_json(latest)
        return body

    def ml_repo_json(self, repo: MlRepo) -> dict[str, Any]:
        manifest: dict[str, Any] = {
            "type": "ml-repo",
            "name": repo.name,
            "storage_integration_fqn": repo.storage_integration_fqn,
            "collaborators": list(repo.collaborators),
        }
        if repo.description is not None:
            manifest["description"] = repo.description
        return {
            "id": repo.id,
            "tenant_name": self.tenant,
            "account_id": self.account_id,
            "manifest": manifest,
            "created_by_subject": repo.created_by,
            "created_at": repo.created_at,
            "num_runs": 0,
        }

    # State (the admin dump and the state file)

    def snapshot(self) -> dict[str, Any]:
        """Everything, deleted records included (with DeletedAt), in creation order."""
        models = sorted(self.models.values(), key=lambda m: m.seq)
        versions = sorted(self.versions.values(), key=lambda v: v.seq)
        return {
            "Tenant": self.tenant,
            "NextMlRepoId": self._next_ml_repo_id,
            "MlRepos": [self.ml_repo_json(repo) for repo in self.ml_repos.values()],
            "Models": [
                {
                    **self.model_json(m, with_latest=False),
                    "LastVersion": m.last_number,
                    "DeletedAt": m.deleted_at,
                }
                for m in models
            ],
            "Versions": [{**self.version_json(v), "DeletedAt": v.deleted_at} for v in versions],
        }

    def load(self, data: dict[str, Any]) -> None:
        """Replace the state with a snapshot (what `snapshot` wrote)."""
        self.reset()
        self.ml_repos = {}
        for item in data.get("MlRepos", []):
            manifest = item["manifest"]
            self.ml_repos[item["id"]] = MlRepo(
                id=item["id"],
                name=manifest["name"],
                storage_integration_fqn=manifest["storage_integration_fqn"],
                created_at=item["created_at"],
                created_by=item["created_by_subject"],
                description=manifest.get("description"),
                collaborators=list(manifest.get("collaborators", [])),
            )
        self._next_ml_repo_id = int(data.get("NextMlRepoId", FIRST_ML_REPO_ID))
        for item in data.get("Models", []):
            model = Model(
                id=item["id"],
                ml_repo_id=item["ml_repo_id"],
                name=item["name"],
                created_at=item["created_at"],
                updated_at=item["updated_at"],
                created_by=item["created_by_subject"],
                seq=self._next_seq(),
                last_number=int(item["LastVersion"]),
                deleted_at=item.get("DeletedAt"),
            )
            self.models[model.id] = model
            if model.deleted_at is None:
                self._models_by_key[(model.ml_repo_id, model.name)] = model
        for item in data.get("Versions", []):
            manifest = {
                key: value
                for key, value in item["manifest"].items()
                if key not in ("name", "ml_repo", "version")
            }
            version = Version(
                id=item["id"],
                model_id=item["model_id"],
                number=int(item["manifest"]["version"]),
                manifest=manifest,
                created_at=item["created_at"],
                updated_at=item["updated_at"],
                created_by=item["created_by_subject"],
                seq=self._next_seq(),
                tags=list(item.get("tags", [])),
                deleted_at=item.get("DeletedAt"),
            )
            self.models[version.model_id].versions[version.number] = version
            self.versions[version.id] = version
