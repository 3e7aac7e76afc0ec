"""Where steps run (SPEC §11): a request hands executable plans to the workers, never runs them."""

from __future__ import annotations

import json

from ..domain import permissions, plan, workflow
from ..domain import validation as v
from ..domain.codec import fmt_epoch
from ..domain.errors import Conflict
from ..domain.events import Event, EventKind
from ..domain.model import Change
from ..store import timers
from ..store.db import Tx
from . import followups, unit
from .context import Context


def queue_implementation(
    ctx: Context, *, change_id: str, actor: str, if_version: int | None = None
) -> Change:
    """Hand an approved change to the workers: `implementation_queued`, and their timer due now."""
    v.identity("actor", actor)
    now = ctx.clock()

    def op(change: Change) -> list[Event]:
        permissions.require(permissions.Act.IMPLEMENT, actor, ctx.policy, change)  # state first
        workflow.check_reviewed(change)
        why = "the plan has executable steps: a worker (worker run) carries it out"
        return [Event(EventKind.IMPLEMENTATION_QUEUED, actor, {"reason": why})]

    def schedule(tx: Tx, change: Change) -> list[Event]:
        for _, kind, _, due, payload in timers.pending(tx, change_id):
            if kind == followups.IMPLEMENT:
                raise Conflict(
                    f"{change_id} is already queued for the workers ({_queued(due, payload)}); "
                    "nothing was written"
                )
        followups.schedule(tx, followups.IMPLEMENT, change_id, now.timestamp(), {"queued_by": actor})
        return []

    return unit.apply(ctx, change_id, actor, op, if_version, extra=schedule)


def _queued(due: float, payload: str) -> str:
    by = json.loads(payload).get("queued_by")
    return f"by {by}, due {fmt_epoch(due)}" if by else f"AUTO_IMPLEMENT, due {fmt_epoch(due)}"


def implement_or_queue(
    ctx: Context, *, change_id: str, actor: str, if_version: int | None = None
) -> tuple[Change, bool]:
    """The API's implement: executable plans are queued (True); text-only plans are recorded here."""
    if plan.has_executable_steps(unit.load(ctx, change_id).implementation_plan):
        return queue_implementation(ctx, change_id=change_id, actor=actor, if_version=if_version), True
    from .implementation import implement_change

    change = implement_change(ctx, change_id=change_id, actor=actor, if_version=if_version, text_only=True)
    return change, False
