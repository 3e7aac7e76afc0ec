"""The worker protocol (seed "Workers"): execute under a lease, heart-beat, report; and stuck leases."""

from __future__ import annotations

import os
from typing import Any

from ..domain import permissions, validation, workflow
from ..domain.codec import fmt_epoch
from ..domain.errors import Conflict, Refused
from ..domain.events import Event, EventKind
from ..domain.lifecycle import State
from ..domain.model import Change, ClosureStatus
from ..runner import checks
from ..store import changes, leases
from ..store.db import Tx
from . import followups, unit
from .context import Context
from .implementation import Run, begin, fail_change, verification_spec
from .runbooks import expanded_plan


def execute(ctx: Context, *, change_id: str, worker: str) -> dict[str, Any]:
    """Hand an approved change to `worker` (a lease); returns the plan it is to carry out."""
    validation.identity("worker", worker)
    change = unit.load(ctx, validation.change_id(change_id))
    with ctx.db.read() as tx:
        lease = leases.get(tx, change_id)
    if lease is not None and lease.holder != worker and lease.live(ctx.clock().timestamp()):
        until = fmt_epoch(lease.expires_at)
        raise Conflict(f"{change_id} is leased to {lease.holder} until {until}; nothing was written")
    spec = verification_spec(ctx, change)
    run = Run(ctx, change_id, worker, os.environ)
    change = begin(run, worker, checks.baseline(spec) if spec.has_checks else None)
    with ctx.db.read() as tx:
        lease = leases.get(tx, change_id)
    assert lease is not None
    return {
        "change_id": change_id,
        "worker": worker,
        "state": change.state.value,
        "lease_expires_at": fmt_epoch(lease.expires_at),
        "lease_ttl_seconds": run.ttl,
        # Runbook steps expanded: what the worker runs (it need not read the catalog).
        "implementation_plan": expanded_plan(ctx.settings, change.implementation_plan),
        "rollback_plan": expanded_plan(ctx.settings, change.rollback_plan),
        "validation": change.validation,
    }


def _holder_check(ctx: Context, change_id: str, worker: str) -> None:
    with ctx.db.read() as tx:
        lease = leases.get(tx, change_id)
    if lease is None:
        raise Refused(f"{worker} holds no lease on {change_id} (take it with worker execute)")
    if lease.holder != worker:
        raise Refused(f"{change_id} is leased to {lease.holder}, not {worker}")
    if lease.flagged_at is not None:
        raise Refused(
            f"the lease of {worker} on {change_id} expired and was flagged; an operator decides now "
            f"(implement {change_id} --resume, or rollback {change_id} REASON)"
        )


def heartbeat(ctx: Context, *, change_id: str, worker: str) -> str:
    """Renew the worker's lease; returns when it now expires."""
    validation.identity("worker", worker)
    _holder_check(ctx, validation.change_id(change_id), worker)
    now = ctx.clock().timestamp()
    ttl = int(ctx.settings["LEASE_TTL"])
    with ctx.db.transaction() as tx:
        if not leases.renew(tx, change_id, worker, now, ttl):
            raise Refused(
                f"the lease of {worker} on {change_id} expired and was flagged; an operator decides now"
            )
    return fmt_epoch(now + ttl)


def report(ctx: Context, *, change_id: str, worker: str, success: bool, notes: str) -> Change:
    """report_success closes the change successful; report_failure takes the rollback path."""
    validation.identity("worker", worker)
    validation.text("notes", notes, max_len=validation.DESCRIPTION_MAX)
    if not success:  # a failure's reason is what the rollback and its incident rest on
        validation.reason("reason", notes, max_len=validation.DESCRIPTION_MAX)
    _holder_check(ctx, validation.change_id(change_id), worker)
    if not success:
        return fail_change(
            ctx, change_id=change_id, actor=worker, reason=notes, run=Run(ctx, change_id, worker, {})
        )
    now = ctx.clock()

    def op(change: Change) -> list[Event]:
        events: list[Event] = []
        if change.state is State.IMPLEMENTING:
            events += workflow.finish_implementation(change, worker, now, notes)
        return events + workflow.close(change, ClosureStatus.SUCCESSFUL, notes, worker, now)

    def release(tx: Tx, change: Change) -> list[Event]:
        leases.release(tx, change_id)
        return []

    return unit.apply(ctx, change_id, worker, op, extra=release)


def rollback_change(ctx: Context, *, change_id: str, actor: str, reason: str) -> Change:
    """An operator rolls back an implementing or implemented change (a live lease of another refuses)."""
    validation.identity("actor", actor)
    validation.reason("reason", reason)
    with ctx.db.read() as tx:
        lease = leases.get(tx, validation.change_id(change_id))
    now = ctx.clock().timestamp()
    if lease is not None and lease.holder != f"cli:{actor}" and lease.live(now):
        until = fmt_epoch(lease.expires_at)
        raise Refused(f"{change_id} is being carried out by {lease.holder} (lease live until {until})")
    holder = lease.holder if lease is not None and lease.flagged_at is None else None
    return fail_change(
        ctx,
        change_id=change_id,
        actor=actor,
        reason=f"rolled back by {actor}: {reason}",
        allowed=lambda c: permissions.require(permissions.Act.ROLLBACK, actor, ctx.policy, c, holder),
    )


def sweep_leases(ctx: Context) -> list[str]:
    """Flag expired leases: the change is stuck, so say so (audit, notify); an operator decides."""
    now = ctx.clock()
    flagged = []
    with ctx.db.transaction() as tx:
        for change_id, holder, expired_at in leases.expired(tx, now.timestamp()):
            leases.flag(tx, change_id, now.timestamp())
            change = changes.get(tx, change_id)
            event = Event(
                EventKind.LEASE_EXPIRED,
                "worker-supervisor",
                {
                    "holder": holder,
                    "expired_at": fmt_epoch(expired_at),
                    "state": change.state.value,
                    "next": _next_for(change),
                },
            )
            followups.commit(tx, ctx, change, [event], now)
            flagged.append(change_id)
    return flagged


def _next_for(change: Change) -> str:
    """What an operator can do with a change whose implementer stopped."""
    cid = change.change_id
    if change.state is State.ROLLING_BACK:
        return (
            f"rollback {cid} REASON (runs the rollback plan again), or close {cid} failed|rolled_back NOTES"
        )
    return f"implement {cid} --resume, or rollback {cid} REASON"


def lease_listing(ctx: Context) -> list[dict[str, Any]]:
    now = ctx.clock().timestamp()
    with ctx.db.read() as tx:
        rows = leases.listing(tx)
    return [
        {
            "change_id": c,
            "holder": h,
            "taken_at": fmt_epoch(t),
            "expires_at": fmt_epoch(e),
            "status": "flagged" if f is not None else ("expired" if float(e) < now else "live"),
        }
        for c, h, t, e, f in rows
    ]
