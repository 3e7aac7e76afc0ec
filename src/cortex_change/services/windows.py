"""Freeze and maintenance windows: add, list, remove (audited), and the ones over a time span."""

from __future__ import annotations

import os
from typing import Any

from ..domain import permissions, windows
from ..domain.errors import NotFound, ValidationError
from ..domain.events import Event, EventKind
from ..domain.schedule import instant
from ..store import audit
from ..store import windows as store
from .context import Context


def _doc(w: windows.Window) -> dict[str, Any]:
    return {
        "window_id": w.window_id,
        "kind": w.kind,
        "starts_at": w.starts_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ends_at": w.ends_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scope": w.scope,
        "scope_value": w.scope_value,
        "reason": w.reason,
        "created_by": w.created_by,
        "cron": w.cron,
        "duration_seconds": None if w.duration is None else w.duration.total_seconds(),
        "policy": w.policy,
    }


def add_window(
    ctx: Context,
    *,
    kind: str,
    start: str | None,
    end: str | None,
    scope: str,
    reason: str,
    actor: str,
    cron: str | None = None,
    duration: str | None = None,
    policy: str | None = None,
) -> dict[str, Any]:
    """A window; a recurring one (`cron` + `duration`) runs from START (default now) to END
    (default 360 days later). A freeze's `policy` may not contradict an overlapping freeze's."""
    permissions.require(permissions.Act.MANAGE_WINDOWS, actor, ctx.policy)
    now = ctx.clock()
    if cron is not None:
        start = start or now.isoformat()
        end = end or (instant("START", start) + windows.LONGEST).isoformat()
    if start is None or end is None:
        raise ValidationError("START", "give START and END (or --cron and --duration for a recurring window)")
    window = windows.define(
        f"W-{os.urandom(4).hex()}", kind, start, end, scope, reason, actor, cron, duration, policy
    )
    with ctx.db.transaction() as tx:
        if window.kind == "freeze":
            found = store.overlapping(tx, window.starts_at.timestamp(), window.ends_at.timestamp())
            _same_policy(ctx, window, found)
        store.insert(tx, window, now.timestamp())
        audit.append(tx, None, [Event(EventKind.WINDOW_ADDED, actor, _doc(window))], now)
    return _doc(window)


def _same_policy(ctx: Context, new: windows.Window, found: list[windows.Window]) -> None:
    """Overlapping freezes over the same scope may not ask for different things."""
    default = ctx.settings["FREEZE_POLICY"]
    for old in found:
        same_scope = (old.scope, old.scope_value) == (new.scope, new.scope_value)
        if old.kind == "freeze" and same_scope and (old.policy or default) != (new.policy or default):
            raise ValidationError(
                "--policy",
                f"{new.policy or default!r} contradicts {old.describe()}, whose policy is "
                f"{old.policy or default!r}; remove it or use the same policy",
            )


def list_windows(ctx: Context) -> list[dict[str, Any]]:
    """Windows not yet over, soonest first."""
    with ctx.db.read() as tx:
        return [_doc(w) for w in store.listing(tx, ctx.clock().timestamp())]


def remove_window(ctx: Context, *, window_id: str, actor: str) -> None:
    permissions.require(permissions.Act.MANAGE_WINDOWS, actor, ctx.policy)
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        if store.delete(tx, window_id) != 1:
            raise NotFound(f"no window {window_id!r} (windows list shows them)")
        audit.append(tx, None, [Event(EventKind.WINDOW_REMOVED, actor, {"window_id": window_id})], now)
