"""`cortex-change calendar`: planned changes and windows over a span; `calendar feed create|list|
revoke`: the iCalendar feeds' secrets (on the local store)."""

from __future__ import annotations

import sys

from . import render
from .exits import EXIT_OK
from .operations import _who

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..services.context import Context
    from .gateway import Gateway

HEADERS = ("START", "END", "CHANGE", "STATE", "RISK", "SERVICES", "TITLE")


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell; the last one (the title) is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
        for r in rows
    ]


def lines(view: dict[str, Any]) -> list[str]:
    """The calendar as a table (times UTC), then the windows over the span."""
    rows: list[tuple[str, ...]] = [HEADERS]
    for c in view["changes"]:
        rows.append(
            (
                c["planned_start"],
                c["planned_end"],
                c["change_id"],
                c["state"],
                c["risk_level"] or "-",
                ",".join(c["services"]) or "-",
                c["title"],
            )
        )
    out = [f"planned changes {view['from']} to {view['to']} (UTC)"]
    out += _table([tuple(render.escape(cell) for cell in r) for r in rows]) if view["changes"] else []
    if not view["changes"]:
        out.append("no planned changes in this span")
    for w in view["windows"]:
        where = "all" if w["scope"] == "all" else f"{w['scope']}:{w['scope_value']}"
        out.append(
            render.escape(
                f"{w['kind'].upper()}  {w['starts_at']} to {w['ends_at']}  {w['window_id']}  {where}  "
                f"{w['reason']}"
            )
        )
    return out


def cmd_calendar(gw: Gateway, a: argparse.Namespace) -> int:
    view = gw.calendar(a.from_, a.to, a.service, a.environment)
    if a.json:
        print(render.as_json(view))
        return EXIT_OK
    print("\n".join(lines(view)))
    return EXIT_OK


def cmd_calendar_feed_create(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.calendar import create_feed, feed_path

    feed_id, secret = create_feed(ctx, a.name, _who(a))
    print(
        f"calendar feed {feed_id} for {render.escape(a.name)}; shown once, subscribe to this path on the "
        "server now (only its hash is kept)",
        file=sys.stderr,
    )
    print(feed_path(secret))
    return EXIT_OK


def cmd_calendar_feed_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.calendar import list_feeds

    rows = list_feeds(ctx)
    if a.json:
        print(render.as_json(rows))
        return EXIT_OK
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        print(render.escape(f"{r['feed_id']}  {r['name']}  created {r['created_at']}  {state}"))
    return EXIT_OK


def cmd_calendar_feed_revoke(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.calendar import revoke_feed

    revoke_feed(ctx, a.feed_id, _who(a))
    print(f"calendar feed {render.escape(a.feed_id)} revoked")
    return EXIT_OK
