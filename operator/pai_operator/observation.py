"""Batched drift observation: what a listed version says, and when a list is worth its pages.

Pure functions. The engine lists every version of a (region, model) once per resync interval and
asks the reconciler, per settled object, whether its listed version calls for a full pass; a
full pass re-reads with GetModelVersion before it writes anything, so a list never causes a
write on its own.

PAI's public docs do not promise that ListModelVersions returns whole records (services often
return summaries in lists). A field a list item does not carry is therefore *unknown*, never
drift: it is filled from the last observation in status (`atProvider`), else from the spec, so
it compares equal. The price: a field cleared remotely (absent from the item) is not noticed by
a list; a field changed to another value is.
"""

from __future__ import annotations

import math
from typing import Any, Final

from pai_operator.normalize import options_to_wire
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.models import Label, ModelVersion
from pai_operator.spec import OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY, AtProvider, ModelVersionSpec
from pai_operator.validation import JSON_FIELDS

LIST_PAGE_SIZE: Final = 100
"""ListModelVersions' largest page: fewest calls per model."""

# Spec fields that carry the remote field of the same name (options excepted: a string remotely).
_SPEC_FIELDS: Final = (
    "version_description",
    "approval_status",
    "source_type",
    "source_id",
    *(name for name in JSON_FIELDS if name != "options"),
    "uri",
    "format_type",
    "framework_type",
)
_AT_PROVIDER_FIELDS: Final = tuple(AtProvider.model_fields)


def pages_for(total: int) -> int:
    return max(1, math.ceil(total / LIST_PAGE_SIZE))


def list_is_cheaper(members: int, last_total: int | None) -> bool:
    """One list (all pages) for `members` objects, or one GET each? A model with few managed
    versions among many others is cheaper by GET. The first time the total is unknown: list."""
    pages = pages_for(last_total) if last_total is not None else 1
    return members > 1 and pages < members


def complete_listed(
    listed: ModelVersion,
    spec: ModelVersionSpec,
    *,
    uid: str,
    last_seen: AtProvider | None,
    ref: str | None = None,
) -> ModelVersion:
    """The listed version with every field it does not carry filled as "unchanged"."""
    missing = set(ModelVersion.model_fields) - listed.model_fields_set
    if not missing:
        return listed
    filled: dict[str, Any] = {}
    for name in missing:
        if name == "labels":
            if last_seen is not None and last_seen.labels is not None:
                labels = dict(last_seen.labels)
            else:
                marks = {OWNER_REF_LABEL_KEY: owner_ref_label(ref)} if ref is not None else {}
                owner = {OWNER_LABEL_KEY: uid, **marks}
                labels = {**owner, **(spec.labels or {})}
            filled[name] = [Label(key=k, value=v) for k, v in labels.items()]
        elif last_seen is not None and name in _AT_PROVIDER_FIELDS and getattr(last_seen, name) is not None:
            filled[name] = getattr(last_seen, name)
        elif name == "options" and spec.options is not None:
            filled[name] = options_to_wire(spec.options)
        elif name in _SPEC_FIELDS and getattr(spec, name) is not None:
            filled[name] = getattr(spec, name)
    return listed.model_copy(update=filled)
