"""The deploy gate (docs/pipelines.md): may a deploy of SERVICE to ENVIRONMENT go ahead now?

Yes when a change touching the service is approved (or being carried out), for that environment
(or none named), and now lies in its planned window (or it has none): the answer names it. No
otherwise, with each reason. With a change id, only that change is asked about.
With CHANGE_MGMT_ENABLED=false nothing is gated: allowed, the reason saying so (docs/devops.md).
"""

from __future__ import annotations

from typing import Any

from ..domain import schedule, windows
from ..domain import validation as v
from ..domain.errors import Refused
from ..domain.lifecycle import State
from ..domain.model import Change
from ..domain.policy import UNMANAGED
from ..store import changes
from .context import Context
from .windows import in_force

MAY_DEPLOY = (State.APPROVED, State.IMPLEMENTING)
CANDIDATES_MAX = 200


def _reasons(
    change: Change, service: str, environment: str | None, now: Any, freezes: list[Any], policy: str
) -> list[str]:
    cid = change.change_id
    why = []
    try:
        windows.implementation_frozen(change, freezes, policy, now)
    except Refused as exc:
        why.append(str(exc))
    if service not in change.affected_services:
        listed = ", ".join(change.affected_services) or "none"
        why.append(f"{cid} does not name the service {service!r} (its services: {listed})")
    if change.state not in MAY_DEPLOY:
        why.append(f"{cid} is {change.state.value}, not approved")
    if environment is not None and change.environment not in (None, environment):
        why.append(f"{cid} is for the environment {change.environment!r}, not {environment!r}")
    if not schedule.in_window(change, now):
        assert change.planned_start is not None and change.planned_end is not None
        why.append(
            f"{cid} is planned for {change.planned_start:%Y-%m-%dT%H:%M:%SZ} to "
            f"{change.planned_end:%Y-%m-%dT%H:%M:%SZ}, not now"
        )
    return why


def gate(
    ctx: Context, *, service: str, environment: str | None = None, change_id: str | None = None
) -> dict[str, Any]:
    """{"allowed": bool, "change_id": the authorising change or None, "reasons": [...], "at": now}."""
    v.name("--service", service)
    if environment is not None:
        v.name("--env", environment)
    now = ctx.clock()
    if not ctx.policy.change_management:
        if change_id is not None:
            v.change_id(change_id)
        return {"allowed": True, "change_id": change_id, "reasons": [UNMANAGED], "at": schedule.stamp(now)}
    with ctx.db.read() as tx:
        if change_id is not None:
            v.change_id(change_id)
            candidates = [changes.get(tx, change_id)]
        else:
            rows = changes.listing(tx, frozenset(MAY_DEPLOY), CANDIDATES_MAX, None, {"service": service})
            candidates = [changes.get(tx, row[0]) for row in rows]
        freezes = in_force(ctx, tx, now.timestamp())
    policy = ctx.settings["FREEZE_POLICY"]
    reasons: list[str] = []
    for change in candidates:
        why = _reasons(change, service, environment, now, freezes, policy)
        if not why:
            return {"allowed": True, "change_id": change.change_id, "reasons": [], "at": schedule.stamp(now)}
        reasons += why
    if not candidates:
        where = f" in {environment}" if environment else ""
        reasons.append(f"no approved change names the service {service!r}{where}")
    return {"allowed": False, "change_id": None, "reasons": reasons, "at": schedule.stamp(now)}
