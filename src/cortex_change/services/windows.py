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
from ..store.db import Tx
from .context import Context

TOML = "cortex-change.toml"


def configured(ctx: Context) -> list[windows.Window]:
    """The windows the configuration defines (`[windows.NAME]` tables: kind, start, end, scope,
    reason, cron, duration, policy), checked like added ones; a bad one stops with its name."""
    out = []
    for name, raw in sorted(ctx.settings.extra.get("windows", {}).items()):
        where = f"windows.{name}"
        if not isinstance(raw, dict):
            raise ValidationError(where, "must be a table (kind, start, end, reason, ...)")
        unknown = sorted(set(raw) - {"kind", "start", "end", "scope", "reason", "cron", "duration", "policy"})
        if unknown:
            raise ValidationError(where, f"unknown key(s) {', '.join(unknown)}")
        try:
            out.append(
                windows.define(
                    f"toml:{name}",
                    str(raw.get("kind", "")),
                    str(raw.get("start", "")),
                    str(raw.get("end", "")),
                    str(raw.get("scope", "all")),
                    str(raw.get("reason", "")),
                    TOML,
                    None if raw.get("cron") is None else str(raw["cron"]),
                    None if raw.get("duration") is None else str(raw["duration"]),
                    None if raw.get("policy") is None else str(raw["policy"]),
                )
            )
        except ValidationError as exc:
            raise ValidationError(f"{where} {exc.field}", str(exc).removeprefix(f"{exc.field}: ")) from None
    return out


def overlapping(ctx: Context, tx: Tx, start: float, end: float) -> list[windows.Window]:
    """Every window (stored or configured) over any part of [start, end)."""
    found = store.overlapping(tx, start, end)
    return found + [
        w for w in configured(ctx) if w.starts_at.timestamp() < end and start < w.ends_at.timestamp()
    ]


def in_force(ctx: Context, tx: Tx, now: float, kind: str = "freeze") -> list[windows.Window]:
    """The windows of `kind` whose span (their range, for a recurring one) holds `now`."""
    return [w for w in overlapping(ctx, tx, now, now + 1) if w.kind == kind]


def upcoming(ctx: Context, tx: Tx, after: float) -> list[windows.Window]:
    """Windows not over by `after` (stored and configured), soonest first."""
    found = store.listing(tx, after) + [w for w in configured(ctx) if w.ends_at.timestamp() > after]
    return sorted(found, key=lambda w: (w.starts_at, w.window_id))


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
            found = overlapping(ctx, tx, window.starts_at.timestamp(), window.ends_at.timestamp())
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
        return [_doc(w) for w in upcoming(ctx, tx, ctx.clock().timestamp())]


def remove_window(ctx: Context, *, window_id: str, actor: str) -> None:
    permissions.require(permissions.Act.MANAGE_WINDOWS, actor, ctx.policy)
    if window_id.startswith("toml:"):
        raise ValidationError("ID", f"{window_id} is defined in {TOML}: remove it there")
    now = ctx.clock()
    with ctx.db.transaction() as tx:
        if store.delete(tx, window_id) != 1:
            raise NotFound(f"no window {window_id!r} (windows list shows them)")
        audit.append(tx, None, [Event(EventKind.WINDOW_REMOVED, actor, {"window_id": window_id})], now)
