"""Freeze and maintenance windows: add, list, remove (audited), and the ones over a time span."""

from __future__ import annotations

import os
from typing import Any

from ..domain import permissions, windows
from ..domain.errors import NotFound
from ..domain.events import Event, EventKind
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
    }


def add_window(
    ctx: Context, *, kind: str, start: str, end: str, scope: str, reason: str, actor: str
) -> dict[str, Any]:
    permissions.require(permissions.Act.MANAGE_WINDOWS, actor, ctx.policy)
    window = windows.define(f"W-{os.urandom(4).hex()}", kind, start, end, scope, reason, actor)
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        store.insert(tx, window, now.timestamp())
        audit.append(tx, None, [Event(EventKind.WINDOW_ADDED, actor, _doc(window))], now)
    return _doc(window)


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
