"""Model and model-version state and the rules of the operations, independent of HTTP.

Versions are kept as PascalCase dicts (exactly what Get returns) so the wire shape and the stored
shape cannot drift apart.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_pascal

from pai_emulator import errors
from pai_emulator.config import Dialect

# The documented ^\d+\.\d+\.\d+(_\w+)?$ with whole-string, ASCII-only semantics (as a Java or Go
# service would apply it): Python's `$` would accept a trailing newline and its \d any Unicode digit.
VERSION_NAME_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)(_\w+)?", re.ASCII)
MAX_LABELS = 20
# Go SDK aiworkspace-20210204/client/label_model.go: "up to 128 bytes in length and cannot contain
# equal signs (=) and commas (,)", for the key and for the value.
MAX_LABEL_BYTES = 128
LABEL_FORBIDDEN = ("=", ",")
MAX_METRICS_CHARS = 8192
MAX_PAGE_SIZE = 100

APPROVAL_STATUSES = frozenset({"Pending", "Approved", "Rejected"})
SOURCE_TYPES = frozenset({"Custom", "PAIFlow", "TrainingService"})
FORMAT_TYPES = frozenset(
    {
        "OfflineModel",
        "SavedModel",
        "Keras H5",
        "Frozen Pb",
        "Caffe Prototxt",
        "TorchScript",
        "XGBoost",
        "PMML",
        "AlinkModel",
        "ONNX",
    }
)
# Both spellings: Terraform documents `Pytorch` but its own example sends `PyTorch`.
FRAMEWORK_TYPES = frozenset(
    {"Pytorch", "PyTorch", "XGBoost", "Keras", "Caffe", "Alink", "Xflow", "TensorFlow"}
)
CREATE_ONLY_FIELDS = ("Uri", "FormatType", "FrameworkType", "Labels", "VersionName")
SORT_FIELDS = ("GmtCreateTime", "GmtModifiedTime", "VersionName")
EXACT_FILTERS = ("VersionName", "ApprovalStatus", "FormatType", "FrameworkType", "SourceType", "SourceId")
URI_SCHEMES = ("oss://", "http://", "https://")
# SDK CreateModelRequest: "The name must be 1 to 127 characters in length."
MAX_MODEL_NAME_CHARS = 127
ACCESSIBILITIES = frozenset({"PRIVATE", "PUBLIC"})
# ListModels' exact filters (SDK ListModelsRequest); Label and Query match substrings.
MODEL_EXACT_FILTERS = ("WorkspaceId", "ModelName", "Domain", "Task", "Origin", "ModelType")
MODEL_QUERY_FIELDS = ("ModelName", "Domain", "Task")


def serialized_length(value: Any) -> int:
    """The length PAI's 8192 limit is checked against: compact JSON, non-ASCII kept as characters."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Body(BaseModel):
    # strict: PAI's fields are typed; silently turning 1 into "1" would hide client bugs.
    model_config = ConfigDict(alias_generator=to_pascal, extra="ignore", strict=True)


_B = TypeVar("_B", bound=_Body)


class LabelIn(_Body):
    key: str
    value: str


class UpdateBody(_Body):
    version_description: str | None = None
    approval_status: str | None = None
    source_type: str | None = None
    source_id: str | None = None
    metrics: dict[str, Any] | None = None
    training_spec: dict[str, Any] | None = None
    inference_spec: dict[str, Any] | None = None
    evaluation_spec: dict[str, Any] | None = None
    compression_spec: dict[str, Any] | None = None
    distillation_spec: dict[str, Any] | None = None
    extra_info: dict[str, Any] | None = None
    options: str | None = None


class CreateBody(UpdateBody):
    uri: str | None = None
    version_name: str | None = None
    format_type: str | None = None
    framework_type: str | None = None
    labels: list[LabelIn] | None = None


class LabelsBody(_Body):
    labels: list[LabelIn] | None = None


class UpdateModelBody(_Body):
    """UpdateModel's fields (official SDK `UpdateModelRequest`): a partial update."""

    model_name: str | None = None
    model_description: str | None = None
    accessibility: str | None = None
    domain: str | None = None
    task: str | None = None
    origin: str | None = None
    model_doc: str | None = None
    model_type: str | None = None
    order_number: int | None = None
    parameter_size: int | None = None
    extra_info: dict[str, Any] | None = None


class CreateModelBody(UpdateModelBody):
    """CreateModel (SDK `CreateModelRequest`; Terraform's resource_alicloud_pai_workspace_model.go
    sends Labels, the SDK calls them deprecated in favour of Tag: both are kept)."""

    workspace_id: str | None = None
    labels: list[LabelIn] | None = None
    tag: list[LabelIn] | None = None


def _parse(model: type[_B], body: Any) -> _B:
    if not isinstance(body, dict):
        raise errors.invalid_parameter("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise errors.invalid_parameter(f"{where}: {first['msg']}") from None


def version_sort_key(name: str) -> tuple[int, int, int, str]:
    match = VERSION_NAME_RE.fullmatch(name)
    if match is None:
        return (-1, -1, -1, name)
    return (int(match[1]), int(match[2]), int(match[3]), match[4] or "")


@dataclass
class StoredVersion:
    seq: int  # creation order: the tie-breaker for equal sort keys
    fields: dict[str, Any]


def _check_enum(field: str, value: str | None, allowed: frozenset[str]) -> None:
    if value is not None and value not in allowed:
        raise errors.invalid_parameter(f"{field} must be one of {sorted(allowed)}, got {value!r}.")


def _check_common(body: UpdateBody) -> None:
    _check_enum("ApprovalStatus", body.approval_status, APPROVAL_STATUSES)
    _check_enum("SourceType", body.source_type, SOURCE_TYPES)
    if body.metrics is not None and serialized_length(body.metrics) > MAX_METRICS_CHARS:
        raise errors.invalid_parameter(
            f"Metrics must serialize to at most {MAX_METRICS_CHARS} characters, "
            f"got {serialized_length(body.metrics)}."
        )
    if body.options:
        try:
            json.loads(body.options)
        except ValueError:
            raise errors.invalid_parameter("Options must be a JSON document encoded as a string.") from None


def _check_label_text(field: str, text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > MAX_LABEL_BYTES:
        raise errors.invalid_parameter(f"{field} must be at most {MAX_LABEL_BYTES} bytes, got {size}.")
    for forbidden in LABEL_FORBIDDEN:
        if forbidden in text:
            raise errors.invalid_parameter(f"{field} must not contain {forbidden!r}: {text[:40]!r}.")


def _merge_labels(
    current: list[dict[str, str]], new: list[LabelIn], dialect: Dialect
) -> list[dict[str, str]]:
    """Add `new` to `current` under the dialect's rule for a key already present: replace (the
    key keeps its position and takes the new value), append (a second label with that key), or
    reject (the whole request fails, nothing changes)."""
    merged = [dict(label) for label in current]
    for label in new:
        if not label.key:
            raise errors.invalid_parameter("Labels.Key must not be empty.")
        _check_label_text("Labels.Key", label.key)
        _check_label_text("Labels.Value", label.value)
        existing = [item for item in merged if item["Key"] == label.key]
        if not existing or dialect.label_upsert == "append":
            merged.append({"Key": label.key, "Value": label.value})
        elif dialect.label_upsert == "reject":
            raise errors.label_exists(label.key)
        else:
            for item in existing:
                item["Value"] = label.value
    if len(merged) > MAX_LABELS:
        raise errors.invalid_parameter(f"A version can have at most {MAX_LABELS} labels, got {len(merged)}.")
    return merged


class Store:
    def __init__(
        self,
        seeded_models: list[str],
        owner_id: str,
        clock: Callable[[], datetime],
        dialect: Dialect | None = None,
    ) -> None:
        self._seeded = list(dict.fromkeys(seeded_models))
        self._owner_id = owner_id
        self._clock = clock
        self.dialect = dialect or Dialect()
        self.models: dict[str, dict[str, StoredVersion]] = {}
        self.model_created: dict[str, str] = {}
        # The fields of models made with CreateModel (seeded ones have only an id: see get_model).
        self.model_fields: dict[str, dict[str, Any]] = {}
        self._model_seq = 0
        self._seq = 0
        self.reset()

    def reset(self) -> None:
        self.models = {model_id: {} for model_id in self._seeded}
        now = self._now()
        self.model_created = dict.fromkeys(self._seeded, now)
        self.model_fields = {}

    def add_model(self, model_id: str) -> bool:
        """Register a model; False if it already existed (its versions are kept)."""
        if model_id in self.models:
            return False
        self.models[model_id] = {}
        self.model_created[model_id] = self._now()
        return True

    def _model(self, model_id: str) -> dict[str, StoredVersion]:
        versions = self.models.get(model_id)
        if versions is None:
            raise errors.model_not_found(model_id, self.dialect)
        return versions

    def _version(self, model_id: str, version_name: str) -> StoredVersion:
        version = self._model(model_id).get(version_name)
        if version is None:
            raise errors.version_not_found(model_id, version_name, self.dialect)
        return version

    def get_model(self, model_id: str) -> dict[str, Any]:
        """GetModel's fields that a registered model id gives (models are seeded by id only)."""
        versions = self._model(model_id)
        created = self.model_created.get(model_id) or self._now()
        fields: dict[str, Any] = {
            "ModelId": model_id,
            "ModelName": model_id,
            "Accessibility": "PRIVATE",
            "Origin": "Custom",
            "Labels": [],
            "GmtCreateTime": created,
            "GmtModifiedTime": created,
            "OwnerId": self._owner_id,
            "UserId": self._owner_id,
        }
        fields.update({k: v for k, v in self.model_fields.get(model_id, {}).items() if k != "Seq"})
        if versions:
            latest = max(versions.values(), key=lambda version: version.seq)
            fields["LatestVersion"] = dict(latest.fields)
            fields["GmtLatestVersionModifiedTime"] = latest.fields["GmtModifiedTime"]
        return fields

    def delete_model(self, model_id: str) -> None:
        """DeleteModel: the model and every one of its versions (Terraform's
        resource_alicloud_pai_workspace_model.go deletes a model without deleting versions first)."""
        self._model(model_id)
        del self.models[model_id]
        self.model_created.pop(model_id, None)
        self.model_fields.pop(model_id, None)

    def _now(self) -> str:
        return iso_millis(self._clock())

    @staticmethod
    def next_version_name(existing: Mapping[str, StoredVersion]) -> str:
        """0.1.0 first, then the highest existing major.minor with minor + 1."""
        parsed = [version_sort_key(name) for name in existing if VERSION_NAME_RE.fullmatch(name)]
        if not parsed:
            return "0.1.0"
        major, minor, _, _ = max(parsed)
        return f"{major}.{minor + 1}.0"

    def create(self, model_id: str, raw: Any, user_id: str) -> str:
        versions = self._model(model_id)
        body = _parse(CreateBody, raw)
        if not body.uri:
            raise errors.missing_parameter("Uri")
        if not body.uri.startswith(URI_SCHEMES):
            raise errors.invalid_parameter("Uri must start with oss://, http:// or https://.")
        _check_common(body)
        _check_enum("FormatType", body.format_type, FORMAT_TYPES)
        _check_enum("FrameworkType", body.framework_type, FRAMEWORK_TYPES)
        labels = _merge_labels([], body.labels or [], self.dialect)
        name = body.version_name
        if name is None:
            name = self.next_version_name(versions)
        elif not VERSION_NAME_RE.fullmatch(name):
            raise errors.invalid_parameter(
                f"VersionName must match ^\\d+\\.\\d+\\.\\d+(_\\w+)?$, got {name!r}."
            )
        if name in versions:
            raise errors.version_exists(model_id, name)
        now = self._now()
        fields = body.model_dump(by_alias=True, exclude_none=True, exclude={"labels"})
        fields.setdefault("ApprovalStatus", "Pending")
        fields.setdefault("SourceType", "Custom")
        fields.update(
            VersionName=name,
            Labels=labels,
            GmtCreateTime=now,
            GmtModifiedTime=now,
            UserId=user_id,
            OwnerId=self._owner_id,
        )
        self._seq += 1
        versions[name] = StoredVersion(seq=self._seq, fields=fields)
        return name

    def get(self, model_id: str, version_name: str) -> dict[str, Any]:
        return dict(self._version(model_id, version_name).fields)

    def update(self, model_id: str, version_name: str, raw: Any) -> None:
        version = self._version(model_id, version_name)
        if isinstance(raw, dict):
            for name in CREATE_ONLY_FIELDS:
                if raw.get(name) is not None:
                    raise errors.invalid_parameter(f"{name} cannot be changed by UpdateModelVersion.")
        body = _parse(UpdateBody, raw)
        _check_common(body)
        version.fields.update(body.model_dump(by_alias=True, exclude_none=True))
        version.fields["GmtModifiedTime"] = self._now()

    def delete(self, model_id: str, version_name: str) -> None:
        self._version(model_id, version_name)
        del self.models[model_id][version_name]

    def add_labels(self, model_id: str, version_name: str, raw: Any) -> None:
        version = self._version(model_id, version_name)
        body = _parse(LabelsBody, raw)
        if not body.labels:
            raise errors.missing_parameter("Labels")
        version.fields["Labels"] = _merge_labels(version.fields["Labels"], body.labels, self.dialect)
        version.fields["GmtModifiedTime"] = self._now()

    def delete_labels(self, model_id: str, version_name: str, label_keys: str | None) -> None:
        version = self._version(model_id, version_name)
        keys = {key for key in (label_keys or "").split(",") if key}
        if not keys:
            raise errors.missing_parameter("LabelKeys")
        # Keys that are not present are ignored: deleting is idempotent.
        version.fields["Labels"] = [label for label in version.fields["Labels"] if label["Key"] not in keys]
        version.fields["GmtModifiedTime"] = self._now()

    def list_versions(self, model_id: str, query: Mapping[str, str]) -> tuple[int, list[dict[str, Any]]]:
        versions = self._model(model_id)
        page_number = _positive_int(query, "PageNumber", 1, None)
        page_size = _positive_int(query, "PageSize", 10, MAX_PAGE_SIZE)
        if self.dialect.max_page_size is not None:
            # Silently, as a service with its own ceiling would: PageNumber still counts in the
            # capped size, TotalCount still counts every match.
            page_size = min(page_size, self.dialect.max_page_size)
        order = query.get("Order", "ASC").upper()
        if order not in ("ASC", "DESC"):
            raise errors.invalid_parameter(f"Order must be ASC or DESC, got {query['Order']!r}.")
        sort_by = query.get("SortBy", "GmtCreateTime")
        if sort_by not in SORT_FIELDS:
            raise errors.invalid_parameter(f"SortBy must be one of {list(SORT_FIELDS)}, got {sort_by!r}.")

        matches = [v for v in versions.values() if _matches(v.fields, query)]

        def key(version: StoredVersion) -> tuple[Any, int]:
            if sort_by == "VersionName":
                return (version_sort_key(version.fields["VersionName"]), version.seq)
            return (version.fields[sort_by], version.seq)

        matches.sort(key=key, reverse=order == "DESC")
        start = (page_number - 1) * page_size
        return len(matches), [dict(v.fields) for v in matches[start : start + page_size]]

    # --- models (CreateModel, UpdateModel, ListModels, model labels) ---------------------------

    def create_model(self, raw: Any, user_id: str) -> str:
        """CreateModel -> the server-assigned ModelId. Names are not unique (nothing in the SDK,
        the API reference or Terraform says they are): a client that must not duplicate a model
        has to find its own by label, as the operator does."""
        body = _parse(CreateModelBody, raw)
        if not body.model_name:
            raise errors.missing_parameter("ModelName")
        _check_model_fields(body)
        labels = _merge_labels([], body.labels or [], self.dialect)
        tags = _merge_labels([], body.tag or [], self.dialect)
        self._model_seq += 1
        model_id = f"model-{uuid.uuid4().hex[:18]}"
        now = self._now()
        fields = body.model_dump(by_alias=True, exclude_none=True, exclude={"labels", "tag"})
        fields.setdefault("Accessibility", "PRIVATE")
        fields.update(
            ModelId=model_id,
            Labels=labels,
            Tags=tags,
            GmtCreateTime=now,
            GmtModifiedTime=now,
            UserId=user_id,
            OwnerId=self._owner_id,
            Seq=self._model_seq,
        )
        self.models[model_id] = {}
        self.model_created[model_id] = now
        self.model_fields[model_id] = fields
        return model_id

    def _model_fields(self, model_id: str) -> dict[str, Any]:
        """The stored fields of a model, made up for a seeded one on its first change."""
        self._model(model_id)
        if model_id not in self.model_fields:
            seeded = self.get_model(model_id)
            seeded.pop("LatestVersion", None)
            seeded.pop("GmtLatestVersionModifiedTime", None)
            self.model_fields[model_id] = {**seeded, "Seq": 0}
        return self.model_fields[model_id]

    def update_model(self, model_id: str, raw: Any) -> None:
        fields = self._model_fields(model_id)
        if isinstance(raw, dict):
            for name in ("WorkspaceId", "Labels"):
                if raw.get(name) is not None:
                    raise errors.invalid_parameter(f"{name} cannot be changed by UpdateModel.")
        body = _parse(UpdateModelBody, raw)
        if body.model_name is not None and not body.model_name:
            raise errors.invalid_parameter("ModelName must not be empty.")
        _check_model_fields(body)
        fields.update(body.model_dump(by_alias=True, exclude_none=True))
        fields["GmtModifiedTime"] = self._now()

    def add_model_labels(self, model_id: str, raw: Any) -> None:
        fields = self._model_fields(model_id)
        body = _parse(LabelsBody, raw)
        if not body.labels:
            raise errors.missing_parameter("Labels")
        fields["Labels"] = _merge_labels(fields.get("Labels", []), body.labels, self.dialect)
        fields["GmtModifiedTime"] = self._now()

    def delete_model_labels(self, model_id: str, label_keys: str | None) -> None:
        fields = self._model_fields(model_id)
        keys = {key for key in (label_keys or "").split(",") if key}
        if not keys:
            raise errors.missing_parameter("LabelKeys")
        fields["Labels"] = [label for label in fields.get("Labels", []) if label["Key"] not in keys]
        fields["GmtModifiedTime"] = self._now()

    def list_models(self, query: Mapping[str, str]) -> tuple[int, list[dict[str, Any]]]:
        """ListModels: the account's own models (a Provider asks for public ones: none here),
        filtered, sorted by GmtCreateTime (the only SortBy the SDK documents), paged like
        ListModelVersions (the dialect's page cap included)."""
        page_number = _positive_int(query, "PageNumber", 1, None)
        page_size = _positive_int(query, "PageSize", 10, MAX_PAGE_SIZE)
        if self.dialect.max_page_size is not None:
            page_size = min(page_size, self.dialect.max_page_size)
        order = query.get("Order", "ASC").upper()
        if order not in ("ASC", "DESC"):
            raise errors.invalid_parameter(f"Order must be ASC or DESC, got {query['Order']!r}.")
        sort_by = query.get("SortBy", "GmtCreateTime")
        if sort_by != "GmtCreateTime":
            raise errors.invalid_parameter(f"SortBy must be GmtCreateTime, got {sort_by!r}.")
        if query.get("Provider"):
            return 0, []
        models = [
            (self.get_model(model_id), self.model_fields.get(model_id, {}).get("Seq", 0))
            for model_id in self.models
        ]
        matches = [(model, seq) for model, seq in models if _model_matches(model, query)]
        matches.sort(key=lambda item: (item[0]["GmtCreateTime"], item[1]), reverse=order == "DESC")
        start = (page_number - 1) * page_size
        return len(matches), [model for model, _ in matches[start : start + page_size]]

    def snapshot(self) -> dict[str, Any]:
        return {
            "Seq": self._seq,
            # Seeded models deleted with DeleteModel stay deleted across a restart.
            "DeletedModels": [model_id for model_id in self._seeded if model_id not in self.models],
            "ModelSeq": self._model_seq,
            "ModelFields": self.model_fields,
            "Models": {
                model_id: [{"Seq": v.seq, **v.fields} for v in versions.values()]
                for model_id, versions in self.models.items()
            },
        }

    def load(self, data: Mapping[str, Any]) -> None:
        self._seq = int(data.get("Seq", 0))
        self._model_seq = int(data.get("ModelSeq", 0))
        self.model_fields = {k: dict(v) for k, v in data.get("ModelFields", {}).items()}
        for model_id, fields in self.model_fields.items():
            self.model_created[model_id] = fields.get("GmtCreateTime") or self._now()
        for model_id in data.get("DeletedModels", []):
            self.models.pop(model_id, None)
            self.model_created.pop(model_id, None)
        for model_id, versions in data.get("Models", {}).items():
            self.model_created.setdefault(model_id, self._now())
            stored = self.models.setdefault(model_id, {})
            for item in versions:
                fields = dict(item)
                seq = int(fields.pop("Seq"))
                stored[fields["VersionName"]] = StoredVersion(seq=seq, fields=fields)


def _positive_int(query: Mapping[str, str], name: str, default: int, maximum: int | None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid_parameter(f"{name} must be an integer, got {raw!r}.") from None
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum is not None else "at least 1"
        raise errors.invalid_parameter(f"{name} must be {bound}, got {value}.")
    return value


def _check_model_fields(body: UpdateModelBody) -> None:
    _check_enum("Accessibility", body.accessibility, ACCESSIBILITIES)
    if body.model_name is not None and len(body.model_name) > MAX_MODEL_NAME_CHARS:
        raise errors.invalid_parameter(
            f"ModelName must be 1 to {MAX_MODEL_NAME_CHARS} characters, got {len(body.model_name)}."
        )


def _model_matches(fields: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    for name in MODEL_EXACT_FILTERS:
        wanted = query.get(name)
        if wanted and fields.get(name) != wanted:
            return False
    label = query.get("Label")
    if label and not any(label in item["Key"] or label in item["Value"] for item in fields["Labels"]):
        return False
    text = query.get("Query")
    if text:
        haystack = [str(fields.get(name) or "") for name in MODEL_QUERY_FIELDS]
        haystack += [item[part] for item in fields["Labels"] for part in ("Key", "Value")]
        return any(text in item for item in haystack)
    return True


def _matches(fields: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    for name in EXACT_FILTERS:
        wanted = query.get(name)
        if wanted and fields.get(name) != wanted:
            return False
    label = query.get("Label")
    if label:
        return any(label in item["Key"] or label in item["Value"] for item in fields["Labels"])
    return True
