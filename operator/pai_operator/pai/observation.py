"""What a version listed by ListModelVersions says (PAI's part of batched observation). Pure.

PAI's public docs do not promise that ListModelVersions returns whole records (services often
return summaries in lists). A field a list item does not carry is therefore *unknown*, never
drift: it is filled from the last observation in status (`atProvider`), else from the spec, so
it compares equal. The price: a field cleared remotely (absent from the item) is not noticed by
a list; a field changed to another value is.
"""

from __future__ import annotations

from typing import Any, Final

from pai_operator.core_settings import CoreSettings
from pai_operator.normalize import options_to_wire
from pai_operator.observation import ObservationPacer
from pai_operator.pai.labels import owner_ref_label
from pai_operator.pai.models import Label, ModelVersion
from pai_operator.pai.settings import PaiSettings
from pai_operator.pai.spec import OWNER_LABEL_KEY, OWNER_REF_LABEL_KEY, AtProvider, ModelVersionSpec
from pai_operator.pai.validation import JSON_FIELDS

LIST_PAGE_SIZE: Final = 100
"""ListModelVersions' largest page: fewest calls per model."""


def observation_pacer(budget: float | None = None, read_rate: float | None = None) -> ObservationPacer:
    """The read budget of PAI's drift observation: `budget` (a fraction) of each identity's read
    rate, one pacer for the Model and ModelVersion controllers (their clients share a quota).
    Unset: the settings' declared defaults."""
    if budget is None:
        budget = float(CoreSettings.model_fields["observation_budget"].default)
    if read_rate is None:
        read_rate = float(PaiSettings.model_fields["read_rate"].default)
    return ObservationPacer(budget * read_rate)


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
