"""`cortex-change freeze on|off|status`: the kill switch (on the local store; docs/agents.md)."""

from __future__ import annotations

import json

from .exits import EXIT_OK
from .operations import _who
from .render import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..services.context import Context


def line(state: dict[str, Any]) -> str:
    """The switch in one line (also `config show`'s last line)."""
    if not state["halted"]:
        return "automation: running (kill switch off)"
    return escape(f"automation: HALTED since {state['since']} by {state['by']}: {state['reason']}")


def cmd_freeze_on(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.automation import switch

    state = switch(ctx, on=True, actor=_who(a), reason=a.reason)
    print(line(state) + ("" if state["changed"] else " (it was already on)"))
    return EXIT_OK


def cmd_freeze_off(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.automation import switch

    state = switch(ctx, on=False, actor=_who(a))
    print(line(state) + ("" if state["changed"] else " (it was already off)"))
    return EXIT_OK


def cmd_freeze_status(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.automation import status

    state = status(ctx)
    print(json.dumps(state, ensure_ascii=False) if a.json else line(state))
    return EXIT_OK
