"""`cortex-change pir list|show|findings|action add|action done|complete`: post-implementation
reviews (on the local store; docs/pir.md)."""

from __future__ import annotations

import sys

from .exits import EXIT_OK
from .operations import _who
from .render import as_json, escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..services.context import Context


def _line(r: dict[str, Any]) -> str:
    late = "  OVERDUE" if r["overdue"] else ""
    when = f"completed {r['completed_at']}" if r["completed_at"] else f"due {r['due_at']}"
    return escape(
        f"{r['change_id']}  {r['status']}  {when}{late}  owner {r['owner']}  "
        f"{r['actions_open']} open action(s)  {r['reason']}  '{r['title']}'"
    )


def cmd_pir_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.pir import list_pirs

    rows = list_pirs(ctx, which="overdue" if a.overdue else "all" if a.all else "open")
    if a.json:
        print(as_json(rows))
        return EXIT_OK
    for r in rows:
        print(_line(r))
    if not rows:
        print("no post-implementation reviews here", file=sys.stderr)
    return EXIT_OK


def cmd_pir_show(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.pir import get_pir

    print(as_json(get_pir(ctx, change_id=a.change_id)))
    return EXIT_OK


def cmd_pir_findings(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.pir import record_findings

    doc = record_findings(ctx, change_id=a.change_id, actor=_who(a), findings=a.text)
    print(escape(f"{doc['change_id']}: findings recorded by {doc['findings_by']}"))
    return EXIT_OK


def cmd_pir_action_add(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.pir import add_action

    doc = add_action(ctx, change_id=a.change_id, actor=_who(a), title=a.title, owner=a.owner, due=a.due)
    item = doc["actions"][-1]
    print(escape(f"{doc['change_id']}: action {item['action_id']} for {item['owner']}, due {item['due']}"))
    return EXIT_OK


def cmd_pir_action_done(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.pir import finish_action

    finish_action(ctx, change_id=a.change_id, actor=_who(a), action_id=a.action_id)
    print(escape(f"{a.change_id}: action {a.action_id} done"))
    return EXIT_OK


def cmd_pir_complete(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.pir import complete

    doc = complete(ctx, change_id=a.change_id, actor=_who(a))
    still = sum(1 for item in doc["actions"] if item["status"] == "open")
    more = f" ({still} action item(s) still open)" if still else ""
    print(escape(f"{doc['change_id']}: post-implementation review completed by {doc['completed_by']}{more}"))
    return EXIT_OK
