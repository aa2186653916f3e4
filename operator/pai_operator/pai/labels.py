"""PAI's label rules, the owner-ref label value that keeps within them, and label writes that
converge whatever PAI does with a key a version already has.

The SDKs document a label key and a label value as "up to 128 bytes in length and cannot contain
equal signs (=) and commas (,)" (aliyun/alibabacloud-go-sdk,
`aiworkspace-20210204/client/label_model.go`); a version has at most 20 labels. The operator's
`<namespace>/<name>` owner reference can reach 317 bytes (63 + 1 + 253), so a longer reference is
written in its digest spelling (`pai_operator.refs.digest_ref`). Releases before this one wrote
it verbatim; such a label is still recognised (`refs.ref_matches`) and rewritten on the next
repair.

PAI does not document what CreateModelVersionLabels does with a key the version already has
(replace the value, add a second label, or refuse: the emulator's `--label-upsert`), so
`label_writes` never relies on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from pai_operator.refs import digest_ref

MAX_LABEL_BYTES: Final = 128
FORBIDDEN_LABEL_CHARACTERS: Final = ("=", ",")


def label_problem(what: str, text: str) -> str | None:
    """Why PAI would refuse `text` as a label key or value (`what` names it), or None."""
    size = len(text.encode("utf-8"))
    if size > MAX_LABEL_BYTES:
        return f"{what} is {size} bytes; PAI allows at most {MAX_LABEL_BYTES}"
    for character in FORBIDDEN_LABEL_CHARACTERS:
        if character in text:
            return f"{what} contains {character!r}, which PAI does not allow in labels"
    return None


def label_problems(labels: Mapping[str, str], field: str = "spec.labels") -> list[str]:
    """One message per label PAI would refuse, naming the field and the key."""
    problems = []
    for key, value in labels.items():
        shown = key if len(key) <= 40 else key[:40] + "..."
        problem = label_problem(f"{field} key {shown!r}", key) or label_problem(f"{field}[{shown!r}]", value)
        if problem is not None:
            problems.append(problem)
    return problems


def owner_ref_label(ref: str) -> str:
    """The owner-ref label value for `<namespace>/<name>`: the reference itself when it fits in
    128 bytes, else its digest spelling."""
    return ref if len(ref.encode("utf-8")) <= MAX_LABEL_BYTES else digest_ref(ref)


def owner_ref_needles(ref: str) -> tuple[str, ...]:
    """The Label filters that find versions marked with `ref`: its label value, and the verbatim
    reference too when that differs (versions labelled by earlier releases, still to migrate)."""
    label = owner_ref_label(ref)
    return (label,) if label == ref else (label, ref)


LabelStep = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]
"""(keys to delete, then (key, value) labels to add): one DeleteModelVersionLabels call and one
CreateModelVersionLabels call, each left out when empty."""


@dataclass(frozen=True)
class LabelWrites:
    """Label calls that converge whatever CreateModelVersionLabels does with an existing key.

    Every key whose value must change, or that the version carries more than once (a service that
    appends), is deleted first and then added, as the Terraform provider does on a label change.
    No step deletes two ownership labels: the UID is rewritten while the owner-ref still names the
    object, the owner-ref once the UID does, so a version is never without a mark that finds it.
    """

    steps: tuple[LabelStep, ...]
    final_count: int
    """Labels on the version once every step has run."""


def label_writes(
    remote: Sequence[tuple[str, str]],
    desired_user: Mapping[str, str] | None,
    ownership: Sequence[tuple[str, str]],
    reserved_keys: Iterable[str],
) -> LabelWrites:
    """`remote`: the version's labels as PAI lists them (a key may repeat); `desired_user`: the
    user labels wanted (None: leave them alone); `ownership`: the marks wanted, UID first;
    `reserved_keys`: every key the operator owns (a reserved key not in `ownership` is kept)."""
    reserved = set(reserved_keys)
    values: dict[str, list[str]] = {}
    for key, value in remote:
        values.setdefault(key, []).append(value)

    def settled(key: str, value: str) -> bool:
        return values.get(key) == [value]

    delete: list[str] = []
    add: list[tuple[str, str]] = []
    if desired_user is not None:
        delete += sorted(key for key in values if key not in reserved and key not in desired_user)
        final_user = len(desired_user)
        for key, value in sorted(desired_user.items()):
            if not settled(key, value):
                if key in values:
                    delete.append(key)
                add.append((key, value))
    else:
        final_user = len([key for key in values if key not in reserved])
        # Left alone, except a duplicated key (a service that appends): one label per key.
        for key in sorted(k for k, seen in values.items() if k not in reserved and len(seen) > 1):
            delete.append(key)
            add.append((key, values[key][-1]))
    # Marks: those already right stay; missing ones are added; wrong ones (another value, or
    # duplicated) are deleted and added again, one per step, the first along with the user
    # labels. Whenever a step deletes a mark another one names the object: one already right,
    # one added in an earlier step, or a wrong one still to come (a verbatim reference of an
    # earlier release, the restored object's own reference).
    missing = [(key, value) for key, value in ownership if key not in values]
    wrong = [(key, value) for key, value in ownership if key in values and not settled(key, value)]
    steps: list[LabelStep] = []
    if wrong and missing and len(wrong) == len(ownership) - len(missing):
        steps.append(((), tuple(missing)))  # no mark is right: add the missing ones first
        missing = []
    first_marks = [*(wrong[:1]), *missing]
    delete += [key for key, _ in wrong[:1]]
    add[:0] = sorted(first_marks, key=lambda mark: [k for k, _ in ownership].index(mark[0]))
    if delete or add:
        steps.append((tuple(delete), tuple(add)))
    steps += [((key,), ((key, value),)) for key, value in wrong[1:]]
    wanted_reserved = {key for key, _ in ownership} | (values.keys() & reserved)
    return LabelWrites(steps=tuple(steps), final_count=final_user + len(wanted_reserved))
