"""`cortex-change windows add|list|remove`: freeze and maintenance windows (on the local store)."""

from __future__ import annotations

import json
import sys

from .exits import EXIT_OK
from .operations import _who
from .render import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse

    from ..services.context import Context


def _line(w: dict[str, object]) -> str:
    where = "all" if w["scope"] == "all" else f"{w['scope']}:{w['scope_value']}"
    every = f"  every '{w['cron']}' (UTC) for {w['duration_seconds']} s" if w.get("cron") else ""
    policy = f"  policy {w['policy']}" if w.get("policy") else ""
    span = f"{w['starts_at']} to {w['ends_at']}"
    return escape(f"{w['window_id']}  {w['kind']}  {span}{every}  {where}{policy}  {w['reason']}")


def cmd_windows_add(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.windows import add_window

    w = add_window(
        ctx,
        kind=a.kind,
        start=a.start,
        end=a.end,
        scope=a.scope,
        reason=a.reason,
        actor=_who(a),
        cron=a.cron,
        duration=a.duration,
        policy=a.policy,
    )
    print(_line(w))
    return EXIT_OK


def cmd_windows_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.windows import list_windows

    rows = list_windows(ctx)
    if a.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    for w in rows:
        print(_line(w))
    if not rows:
        print("no windows ahead (windows add freeze|maintenance START END --reason TEXT)", file=sys.stderr)
    return EXIT_OK


def cmd_windows_remove(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.windows import remove_window

    remove_window(ctx, window_id=a.window_id, actor=_who(a))
    print(f"{a.window_id} removed")
    return EXIT_OK


def cmd_observe(ctx: Context, a: argparse.Namespace) -> int:
    """Record what really changed; exit 1 when no change covers it (an unauthorized change)."""
    from ..services.observations import observe

    seen = observe(
        ctx,
        service=a.service,
        environment=a.environment,
        at=a.at,
        source=a.source,
        reference=a.reference,
        actor=_who(a),
    )
    if a.json:
        print(json.dumps(seen, indent=2, ensure_ascii=False))
    elif seen["authorized"]:
        print(escape(f"{seen['observation_id']}: authorized by {seen['change_id']}"))
    else:
        print(
            escape(f"{seen['observation_id']}: UNAUTHORIZED change to {seen['service']} (audited, notified)")
        )
    return EXIT_OK if seen["authorized"] else 1


def cmd_observations_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.observations import list_observations

    rows = list_observations(ctx, unmatched=a.unmatched)
    if a.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    for r in rows:
        by = r["change_id"] or "UNAUTHORIZED"
        where = f"{r['service']}  {r['environment'] or '-'}"
        print(
            escape(
                f"{r['observation_id']}  {r['observed_at']}  {where}  {by}  {r['source']}: {r['reference']}"
            )
        )
    return EXIT_OK
