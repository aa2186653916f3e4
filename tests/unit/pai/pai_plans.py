"""PAI's planner called the way the planning tests read best: keyword facts in, a plan out.

The operator itself goes through the reconciler (`Backend.read`, then `plans.plan_reconcile`);
these wrappers only save the tests from building an `Owner` and repeating the PAI planner."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pai_operator import plans
from pai_operator.pai.models import ModelVersion
from pai_operator.pai.planning import PLANNER, RemoteCall
from pai_operator.pai.spec import PAUSED_ANNOTATION, ModelVersionSpec
from pai_operator.pai.validation import Recorded, validate_spec
from pai_operator.plans import DeletionPlan, Owner, Plan, Policies


def _owner(uid: str, ref: str | None, owner_alive: Callable[[str], bool] | None) -> Owner:
    return Owner(uid, ref, owner_alive) if owner_alive is not None else Owner(uid, ref)


def plan_reconcile(
    spec: ModelVersionSpec,
    *,
    uid: str,
    policies: Policies,
    recorded: Recorded,
    observed: ModelVersion | None,
    owned: Sequence[ModelVersion] | None,
    problems: Sequence[str] | None = None,
    ref: str | None = None,
    owner_alive: Callable[[str], bool] | None = None,
    generation: int | None = None,
) -> Plan[ModelVersion, RemoteCall]:
    """`plans.plan_reconcile` for PAI. `observed` is the GET result for `lookup_name(...)` (None
    when there was no name or PAI said 404); `owned` the ownership-label search result (None when
    not performed). `problems` is what `validate_spec` returned when the caller ran it already.
    `ref` (`<namespace>/<name>`) and `owner_alive(uid)` let a restored object (same name, new UID)
    take over its version; without them only the UID counts."""
    if problems is None:
        problems = validate_spec(spec, policies, recorded)
    return plans.plan_reconcile(
        PLANNER,
        spec,
        owner=_owner(uid, ref, owner_alive),
        policies=policies,
        recorded_key=recorded.version_name,
        observed=observed,
        owned=owned,
        problems=problems,
        paused_annotation=PAUSED_ANNOTATION,
        generation=generation,
    )


def plan_deletion(
    spec: ModelVersionSpec,
    *,
    uid: str,
    policies: Policies,
    observed: ModelVersion | None,
    owned: Sequence[ModelVersion] | None,
    ref: str | None = None,
    owner_alive: Callable[[str], bool] | None = None,
) -> DeletionPlan[RemoteCall]:
    """`plans.plan_deletion` for PAI: Delete removes each owned version, Retain its labels."""
    return plans.plan_deletion(
        PLANNER, spec, owner=_owner(uid, ref, owner_alive), policies=policies, observed=observed, owned=owned
    )
