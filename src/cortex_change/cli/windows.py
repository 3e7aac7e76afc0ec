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
