"""The tenant's ML repos, models and model versions, and every rule of the model-version API that is
not HTTP: staging, numbering, update-in-place with immutable fields, internal metadata, alias and
tag uniqueness, soft deletion, list filters and ordering. Pure logic (no I/O): the clock and the id
source are injected.

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
# The metadata key the `truefoundry` library writes for itself (README E5); reads hide it unless
# asked, and an update that leaves it out keeps it (the server stores it apart: README E7).
INTERNAL_METADATA_KEY = ".truefoundry"
COMMITTED, DELETED = "COMMITTED", "DELETED"


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
    metrics: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)
    """Uploaded while it was staged: path -> size (admin dumps only)."""

    @property
    def live(self) -> bool:
        return self.deleted_at is None

    @property
    def status(self) -> str:
        return COMMITTED if self.live else DELETED


@dataclass
class Staged:
    """A version reserved by POST artifact-versions/stage: files may be uploaded under its storage
    root, and the PUT that names that root as a `truefoundry` source commits it (same id)."""

    id: str
    model_id: str
    storage_root: str
    created_at: str
    failed: bool = False
    files: dict[str, int] = field(default_factory=dict)
    """Uploaded through signed URLs: path -> size in bytes (the bytes themselves are dropped)."""


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
        self.staged: dict[str, Staged] = {}
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

    def get_version(self, version_id: str, include_deleted: bool = False) -> Version:
        """A live version; with `include_deleted` (the `--deleted-visible` dialect) a deleted one
        too, which renders with `status: DELETED`."""
        version = self.versions.get(version_id)
        if version is None or not (version.live or include_deleted):
            raise errors.version_not_found(version_id)
        return version

    # Staging (README E1-E3)

    def _model_for(self, repo: MlRepo, name: str, subject: dict[str, Any]) -> Model:
        model = self._models_by_key.get((repo.id, name))
        if model is None:
            now = self._now()
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
        return model

    def stage(self, manifest: ModelManifest, subject: dict[str, Any]) -> tuple[Staged, Model]:
        """Reserve a version id and its storage root. The model exists from here on (the fork
        stages under an existing artifact): an empty model until the version is committed."""
        repo = self.ml_repo_by_name(manifest.ml_repo)
        if repo is None:
            raise errors.ml_repo_not_found(manifest.ml_repo)
        if manifest.source.type != "truefoundry":
            raise errors.invalid_field(
                ("body", "manifest", "source", "type"), "only a truefoundry source is staged", "value_error"
            )
        model = self._model_for(repo, manifest.name, subject)
        staged_id = self._new_id()
        root = f"s3://tfy-emulator-{self.tenant}/{repo.name}/models/{manifest.name}/{staged_id}/"
        staged = Staged(id=staged_id, model_id=model.id, storage_root=root, created_at=self._now())
        self.staged[staged.id] = staged
        return staged, model

    def mark_stage_failure(self, staged_id: str) -> None:
        staged = self.staged.get(staged_id)
        if staged is None:
            raise errors.staged_not_found(staged_id)
        staged.failed = True

    def writable_staged(self, staged_id: str) -> Staged:
        """A staged version files may still be uploaded to (not committed, not failed)."""
        staged = self.staged.get(staged_id)
        if staged is None or staged.failed:
            raise errors.staged_not_found(staged_id)
        return staged

    def _take_staged(self, model: Model | None, uri: str | None) -> Staged:
        """The staged record a `truefoundry` source commits: same model, same storage root, not
        marked failed. Consumed by the commit (the fork deletes it from the transit table)."""
        wanted = (uri or "").rstrip("/")
        for staged in self.staged.values():
            if (
                model is not None
                and staged.model_id == model.id
                and not staged.failed
                and staged.storage_root.rstrip("/") == wanted
            ):
                del self.staged[staged.id]
                return staged
        raise errors.not_staged(uri)

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
        if "run_id" not in wanted:
            # The fork stores a step only with a run (README E11): without one it is dropped.
            wanted.pop("step", None)
        if manifest.version is None:
            self._check_alias(model, manifest.version_alias, None)
            staged = None
            if manifest.source.type == "truefoundry":
                staged = self._take_staged(model, manifest.source.uri)
            created = self._create_version(
                repo, model, manifest.name, wanted, subject, version_id=staged.id if staged else None
            )
            if staged is not None:
                created.files = dict(staged.files)
            return created

        version = model.versions.get(manifest.version) if model is not None else None
        if model is None or version is None or not version.live:
            raise errors.version_not_found(
                fqns.version_fqn(self.tenant, repo.name, manifest.name, manifest.version)
            )
        changed = [
            name
            for name in IMMUTABLE_FIELDS
            # A step is compared only where one is stored (with a run): without a run the
            # answer carried none, and a client sending back the SDK's default 0 changes nothing.
            if not (name == "step" and "run_id" not in version.manifest)
            and wanted.get(name, 0 if name == "step" else None) != version.manifest.get(name)
        ]
        if changed:
            raise errors.immutable_fields(self.version_fqn(version), changed)
        self._check_alias(model, manifest.version_alias, version)
        # Apply semantics: the request states every mutable field; one it leaves out is unset.
        updated = {key: value for key, value in version.manifest.items() if key not in MUTABLE_FIELDS}
        updated.update({key: wanted[key] for key in MUTABLE_FIELDS if key in wanted})
        internal = version.manifest.get("metadata", {}).get(INTERNAL_METADATA_KEY)
        if internal is not None and INTERNAL_METADATA_KEY not in updated["metadata"]:
            # Reads hide it, so `ModelVersion.update()` sends metadata without it: kept, not erased.
            updated["metadata"] = {**updated["metadata"], INTERNAL_METADATA_KEY: internal}
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
        version_id: str | None = None,
    ) -> Version:
        now = self._now()
        if model is None:
            model = self._model_for(repo, name, subject)
        model.last_number += 1
        version = Version(
            id=version_id or self._new_id(),
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
                step = version.manifest.get("step")
                if run_steps and (step is None or float(step) not in run_steps):
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

    def set_metrics(self, version_id: str, metrics: list[dict[str, Any]]) -> Version:
        version = self.get_version(version_id, include_deleted=True)
        version.metrics = [dict(metric) for metric in metrics]
        return version

    def latest_version(self, model: Model) -> Version | None:
        return max(model.live_versions(), key=lambda v: v.number, default=None)

    # Wire shapes

    def version_json(
        self, version: Version, include_internal_metadata: bool = True, with_status: bool = False
    ) -> dict[str, Any]:
        """The wire `ModelVersion`. `with_status` adds the fork's `status` (COMMITTED, DELETED),
        which the `--deleted-visible` dialect shows; the v1 SDK ignores it (extra="allow")."""
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
        body = {
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
            "metrics": [dict(metric) for metric in version.metrics],
            "deployable": "framework" in version.manifest,
        }
        if with_status:
            body["status"] = version.status
        return body

    def model_json(
        self, model: Model, with_latest: bool = True, include_internal_metadata: bool = True
    ) -> dict[str, Any]:
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
            body["latest_version"] = self.version_json(latest, include_internal_metadata)
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
            "Versions": [
                {**self.version_json(v), "DeletedAt": v.deleted_at, "Files": dict(v.files)} for v in versions
            ],
            "Staged": [
                {
                    "Id": s.id,
                    "ModelId": s.model_id,
                    "StorageRoot": s.storage_root,
                    "CreatedAt": s.created_at,
                    "Failed": s.failed,
                    "Files": dict(s.files),
                }
                for s in self.staged.values()
            ],
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
                metrics=list(item.get("metrics", [])),
                files=dict(item.get("Files", {})),
            )
            self.models[version.model_id].versions[version.number] = version
            self.versions[version.id] = version
        for item in data.get("Staged", []):
            staged = Staged(
                id=item["Id"],
                model_id=item["ModelId"],
                storage_root=item["StorageRoot"],
                created_at=item["CreatedAt"],
                failed=bool(item.get("Failed", False)),
                files=dict(item.get("Files", {})),
            )
            self.staged[staged.id] = staged
