"""PAI's label rules, the owner-ref label value, and label writes that converge under every
answer PAI may give to a write on an existing key (replace, append, reject)."""

from __future__ import annotations

import itertools

import pytest

from pai_operator.pai.labels import (
    MAX_LABEL_BYTES,
    label_problem,
    label_problems,
    label_writes,
    owner_ref_label,
    owner_ref_needles,
)
from pai_operator.plans import Claim, Owner, claim_of
from pai_operator.refs import digest_ref, ref_matches

UID_KEY = "pai.mlops.dev/owner-uid"
REF_KEY = "pai.mlops.dev/owner-ref"
RESERVED = (UID_KEY, REF_KEY)
LONG_REF = "team-" + "n" * 58 + "/" + "model-" + "x" * 247  # 63 + 1 + 253 = 317 bytes


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("k" * 128, None),
        ("é" * 64, None),  # 128 bytes
        ("k" * 129, "129 bytes"),
        ("é" * 65, "130 bytes"),
        ("a=b", "'='"),
        ("a,b", "','"),
        ("", None),
    ],
)
def test_label_problem(text: str, problem: str | None) -> None:
    found = label_problem("spec.labels key", text)
    assert (found is None) is (problem is None)
    if problem is not None:
        assert found is not None
        assert problem in found


def test_label_problems_name_the_field_and_the_key() -> None:
    problems = label_problems({"ok": "fine", "bad=key": "v", "stage": "x,y", "long": "v" * 200})
    assert problems == [
        "spec.labels key 'bad=key' contains '=', which PAI does not allow in labels",
        "spec.labels['stage'] contains ',', which PAI does not allow in labels",
        "spec.labels['long'] is 200 bytes; PAI allows at most 128",
    ]


def test_owner_ref_label_keeps_short_references_and_digests_long_ones() -> None:
    short = "team-a/mv"
    assert owner_ref_label(short) == short
    assert owner_ref_needles(short) == (short,)
    at_limit = "n/" + "m" * 126
    assert owner_ref_label(at_limit) == at_limit
    label = owner_ref_label(LONG_REF)
    assert len(label.encode()) <= MAX_LABEL_BYTES
    assert label_problem("owner-ref", label) is None
    assert label == digest_ref(LONG_REF)
    assert label.startswith(LONG_REF[:64] + "~sha256:")
    assert owner_ref_label(LONG_REF) == label  # deterministic: found again after a restart
    assert owner_ref_label(LONG_REF[:-1] + "y") != label
    # Versions labelled verbatim by earlier releases are still searched for.
    assert owner_ref_needles(LONG_REF) == (label, LONG_REF)


def test_a_mark_names_a_reference_verbatim_or_by_digest() -> None:
    assert ref_matches(LONG_REF, LONG_REF)  # an earlier release's label
    assert ref_matches(digest_ref(LONG_REF), LONG_REF)
    assert not ref_matches(digest_ref(LONG_REF + "x"), LONG_REF)
    assert not ref_matches(None, LONG_REF)


def test_claims_by_digest_and_after_an_interrupted_takeover() -> None:
    owner = Owner("new-uid", LONG_REF, alive=lambda uid: uid == "new-uid")
    assert claim_of("old-uid", digest_ref(LONG_REF), owner) is Claim.INHERITED
    assert claim_of("old-uid", LONG_REF, owner) is Claim.INHERITED
    # The old UID label deleted, the new one not written yet: still this object's.
    assert claim_of(None, digest_ref(LONG_REF), owner) is Claim.INHERITED
    assert claim_of(None, "team-a/other", owner) is Claim.NONE
    assert claim_of(None, None, owner) is Claim.NONE


# --- label writes under every upsert answer ------------------------------------------------------


class Refused(Exception):
    pass


def apply(
    labels: list[tuple[str, str]], delete: tuple[str, ...], add: tuple[tuple[str, str], ...], mode: str
) -> list[tuple[str, str]]:
    """DeleteModelVersionLabels, then CreateModelVersionLabels, as the emulator answers them."""
    labels = [label for label in labels if label[0] not in delete]
    for key, value in add:
        present = [i for i, label in enumerate(labels) if label[0] == key]
        if not present or mode == "append":
            labels.append((key, value))
        elif mode == "reject":
            raise Refused(key)
        else:
            for i in present:
                labels[i] = (key, value)
    return labels


def converge(
    remote: list[tuple[str, str]],
    desired: dict[str, str] | None,
    ownership: list[tuple[str, str]],
    mode: str,
    *,
    finds: tuple[str, str],
) -> list[tuple[str, str]]:
    """Apply the planned steps; after every call the version still carries a mark that finds
    it (`finds`: the UID or the owner-ref this object searches for)."""
    for delete, add in label_writes(remote, desired, ownership, RESERVED).steps:
        for call in ((delete, ()), ((), add)):
            remote = apply(remote, *call, mode)
            assert any(label in remote for label in ((UID_KEY, finds[0]), (REF_KEY, finds[1]))), remote
    return remote


MODES = ["replace", "append", "reject"]
NEW = [(UID_KEY, "new-uid"), (REF_KEY, "ns/mv")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("remote", "desired"),
    [
        ([(UID_KEY, "new-uid"), (REF_KEY, "ns/mv"), ("stage", "dev")], {"stage": "prod"}),
        ([(UID_KEY, "old-uid"), (REF_KEY, "ns/mv"), ("stage", "dev")], {"stage": "dev", "team": "a"}),
        ([(UID_KEY, "new-uid"), (REF_KEY, "ns/mv"), ("stage", "dev"), ("stage", "prod")], {"stage": "prod"}),
        ([(UID_KEY, "old-uid"), (UID_KEY, "new-uid"), (REF_KEY, "ns/mv")], None),
        # An earlier release's version (no owner-ref) whose UID a service that appends duplicated:
        # the owner-ref goes on first, so deleting the UID never leaves the version unmarked.
        ([(UID_KEY, "new-uid"), (UID_KEY, "new-uid"), ("x", "1")], {"x": "1"}),
        ([(REF_KEY, "ns/mv"), ("x", "1")], {}),  # an interrupted takeover: the UID label is gone
        ([("stage", "dev")], {"stage": "dev"}),  # adoption: both marks written in one call
    ],
)
def test_label_writes_converge_under_every_upsert_answer(
    mode: str, remote: list[tuple[str, str]], desired: dict[str, str] | None
) -> None:
    final = (
        converge(list(remote), desired, NEW, mode, finds=("new-uid", "ns/mv"))
        if any(key in RESERVED for key, _ in remote)
        else _adopt(remote, desired, mode)
    )
    expected_user = desired if desired is not None else {k: v for k, v in remote if k not in RESERVED}
    assert sorted(final) == sorted([*NEW, *expected_user.items()])
    # Converged: nothing left to write.
    assert label_writes(final, desired, NEW, RESERVED).steps == ()


def _adopt(remote: list[tuple[str, str]], desired: dict[str, str] | None, mode: str) -> list[tuple[str, str]]:
    writes = label_writes(remote, desired, NEW, RESERVED)
    assert len(writes.steps) == 1
    for delete, add in writes.steps:
        remote = apply(apply(remote, delete, (), mode), (), add, mode)
    return remote


@pytest.mark.parametrize("mode", MODES)
def test_both_marks_rewritten_never_in_the_same_step(mode: str) -> None:
    """A restore of an object whose version an earlier release labelled with a verbatim long
    reference: the UID is rewritten while the old owner-ref still names the object, then the
    owner-ref is migrated to its digest spelling while the new UID names it."""
    label = owner_ref_label(LONG_REF)
    remote = [(UID_KEY, "old-uid"), (REF_KEY, LONG_REF), ("stage", "dev")]
    ownership = [(UID_KEY, "new-uid"), (REF_KEY, label)]
    writes = label_writes(remote, {"stage": "dev"}, ownership, RESERVED)
    assert [delete for delete, _ in writes.steps] == [(UID_KEY,), (REF_KEY,)]
    state = list(remote)
    for delete, add in writes.steps:
        for call in ((delete, ()), ((), add)):
            state = apply(state, *call, mode)
            # Found by the owner search at every moment: the new UID, or a reference naming it.
            assert (UID_KEY, "new-uid") in state or any(
                k == REF_KEY and ref_matches(v, LONG_REF) for k, v in state
            )
    assert sorted(state) == sorted([(UID_KEY, "new-uid"), (REF_KEY, label), ("stage", "dev")])


def test_final_count_counts_marks_once() -> None:
    writes = label_writes(
        [(UID_KEY, "u"), ("a", "1"), ("a", "2")], None, [(UID_KEY, "u"), (REF_KEY, "r")], RESERVED
    )
    assert writes.final_count == 3  # a (deduplicated), uid, ref
    user = {f"k{i}": "v" for i in range(18)}
    assert label_writes([], user, NEW, RESERVED).final_count == 20


@pytest.mark.parametrize("mode", MODES)
def test_every_small_change_converges(mode: str) -> None:
    """Exhaustively over small label sets: whatever the remote holds (duplicates included), one
    round of writes reaches the desired set exactly."""
    for a_values, b_values in itertools.product([[], ["1"], ["1", "2"]], repeat=2):
        remote = [*NEW, *(("a", v) for v in a_values), *(("b", v) for v in b_values)]
        for desired in ({}, {"a": "1"}, {"a": "2", "b": "1"}, None):
            final = converge(list(remote), desired, NEW, mode, finds=("new-uid", "ns/mv"))
            user = sorted(label for label in final if label[0] not in RESERVED)
            if desired is not None:
                assert user == sorted(desired.items())
            else:
                assert len({k for k, _ in user}) == len(user)  # duplicates repaired, values kept
                assert {k for k, _ in user} == {k for k, _ in remote if k not in RESERVED}
