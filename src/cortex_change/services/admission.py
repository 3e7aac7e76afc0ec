"""The Kubernetes admission webhook's decision (docs/admission.md): may this Deployment or
StatefulSet be created or updated now?

- annotated `cortex-change/id`: the deploy gate's answer for that change, service and environment
  (approved or implementing, naming the service, for the environment, in its window, no freeze);
- production (`production`, `prod`) without an id: denied;
- any other environment without an id: allowed unless a freeze in force applies to a deploy of
  that service there (scopes all, environment, service; tier through the CMDB's blast radius);
- anything else (DELETE, other resources): allowed;
- with CHANGE_MGMT_ENABLED=false, everything: allowed, the message saying so.

It only reads: nothing is written or audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..domain import admission, schedule, windows
from ..domain.errors import NotFound, ValidationError
from ..domain.model import Change, ChangeType, Level, Timeline
from .context import Context
from .gate import gate
from .windows import in_force

ONE_SECOND = timedelta(seconds=1)


def review(ctx: Context, body: Any) -> dict[str, Any]:
    """The AdmissionReview answered for an AdmissionReview asked (ValidationError: malformed)."""
    asked = admission.parse(body)
    verdict = decide(ctx, asked)
    answer = admission.respond(asked.uid, verdict)
    if not ctx.policy.change_management:  # kubectl prints an allowed answer's warnings
        answer["response"]["warnings"] = [verdict.reason]
    return answer


def decide(ctx: Context, asked: admission.Request) -> admission.Verdict:
    if not ctx.policy.change_management:
        from ..domain.policy import UNMANAGED

        return admission.Verdict(True, f"allowed: {UNMANAGED}")
    local = admission.local_verdict(asked)
    if local is not None:
        return local
    assert asked.service is not None
    if asked.change_id is not None:
        return _gated(ctx, asked, asked.change_id)
    return _unannotated(ctx, asked, asked.service)


def _gated(ctx: Context, asked: admission.Request, change_id: str) -> admission.Verdict:
    assert asked.service is not None
    try:
        verdict = gate(ctx, service=asked.service, environment=asked.environment, change_id=change_id)
    except NotFound as exc:  # the annotation names no change: the person applying must read why
        return admission.Verdict(False, f"annotation {admission.ANNOTATION_ID}: {exc}")
    if verdict["allowed"]:
        where = f" to {asked.environment!r}" if asked.environment else ""
        return admission.Verdict(
            True, f"{change_id} allows the deploy of {asked.service!r}{where} (at {verdict['at']})"
        )
    return admission.Verdict(False, "; ".join(verdict["reasons"]))


def _unannotated(ctx: Context, asked: admission.Request, service: str) -> admission.Verdict:
    """Outside production a deploy needs no change, unless a freeze in force applies to it."""
    now = ctx.clock()
    deploy = _stand_in(asked, service, now)
    with ctx.db.read() as tx:
        found = in_force(ctx, tx, now.timestamp())
        radius = _radius(ctx, tx, deploy) if any(w.scope == "tier" for w in found) else None
    frozen = windows.freezes(found, deploy, now, now + ONE_SECOND, radius)
    where = f"{asked.environment!r}" if asked.environment else "no environment"
    if frozen:
        named = "; ".join(w.describe() for w in frozen)
        return admission.Verdict(
            False,
            f"a deploy of {service!r} to {where} may not go ahead now: {named}; "
            f"annotate {admission.ANNOTATION_ID} with an approved change that may be carried out "
            "during it (an emergency; with FREEZE_POLICY=cab, one the CAB approved)",
        )
    return admission.Verdict(
        True,
        f"{where} is not production and no freeze applies: allowed without a change "
        f"(at {schedule.stamp(now)})",
    )


def _stand_in(asked: admission.Request, service: str, now: Any) -> Change:
    """The deploy as the change a freeze's scope is asked about: its service and environment."""
    return Change(
        "(no change)",
        ChangeType.NORMAL,
        "deployment",
        f"{asked.describe()} {asked.operation}",
        "",
        "kubernetes",
        Level.LOW,
        Level.LOW,
        Timeline(now),
        affected_services=[service],
        environment=asked.environment,
    )


def _radius(ctx: Context, tx: Any, deploy: Change) -> dict[str, Any] | None:
    """The service's blast radius in the CMDB (tier-scoped freezes), if it knows the service."""
    from .cmdb import change_radius

    try:
        found = change_radius(ctx, tx, deploy)
    except ValidationError:  # not in the CMDB with CMDB_UNKNOWN_CI=refuse: no tier reached
        return None
    return None if found is None else found.document()
