"""Observed changes (docs/schedule.md): record what really changed, match it to the change that
authorised it, and report the rest as unauthorized changes (audited, notified, counted)."""

from __future__ import annotations

import os
from typing import Any

from ..domain import observations, permissions, schedule
from ..domain import validation as v
from ..domain.codec import fmt_epoch
from ..domain.events import Event, EventKind
from ..store import audit, changes
from ..store import observations as store
from . import followups
from .context import Context


def observe(
    ctx: Context,
    *,
    service: str,
    environment: str | None,
    at: str | None,
    source: str,
    reference: str,
    actor: str,
) -> dict[str, Any]:
    """Record one observation; matched to a change, or audited and notified as unauthorized."""
    permissions.require(permissions.Act.OBSERVE, actor, ctx.policy)
    name = v.name("service", service).strip().lower()
    env = None if environment is None else v.name("environment", environment)
    v.name("source", source)
    v.reason("reference", reference)
    now = ctx.clock()
    when = now if at is None else schedule.instant("at", at)
    oid = f"OBS-{os.urandom(5).hex()}"
    with ctx.db.transaction() as tx:
        candidates = [changes.get(tx, cid) for cid in store.candidate_ids(tx, name)]
        change_id = observations.match(candidates, name, env, when)
        store.insert(
            tx, oid, name, env, when.timestamp(), source, reference, actor, now.timestamp(), change_id
        )
        details = {
            "observation_id": oid,
            "service": name,
            "environment": env,
            "observed_at": schedule.stamp(when),
            "source": source,
            "reference": reference,
        }
        if change_id is not None:
            audit.append(tx, change_id, [Event(EventKind.CHANGE_OBSERVED, actor, details)], now)
        else:
            where = f" in {env}" if env else ""
            followups.announce(
                tx,
                ctx,
                Event(EventKind.UNAUTHORIZED_CHANGE, actor, details),
                now,
                subject=f"Unauthorized change: {name}{where} ({source})",
                text=f"{source} saw {name}{where} change at {schedule.stamp(when)} ({reference}); "
                "no approved change was being carried out for it then.",
                ask="find who changed it and file a change (or an incident)",
                recipients=ctx.policy.change_managers,
            )
    return {**details, "change_id": change_id, "authorized": change_id is not None}


def list_observations(ctx: Context, *, unmatched: bool = False) -> list[dict[str, Any]]:
    keys = ("observation_id", "service", "environment", "observed_at", "source", "reference", "recorded_by")
    with ctx.db.read() as tx:
        rows = store.listing(tx, unmatched)
    out = []
    for row in rows:
        doc = dict(zip(keys, row[:7], strict=True))
        doc["observed_at"] = fmt_epoch(float(row[3]))
        doc["change_id"] = row[7]
        out.append(doc)
    return out
