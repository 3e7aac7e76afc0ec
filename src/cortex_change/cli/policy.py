"""`cortex-change policy simulate`: what a candidate configuration would have done to a period's
changes, beside what the running one does (on the local store; docs/simulation.md)."""

from __future__ import annotations

from .exits import EXIT_OK
from .render import as_json, escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..services.context import Context


def cmd_policy_simulate(ctx: Context, a: argparse.Namespace) -> int:
    import os

    from ..config import load
    from ..domain.errors import ValidationError
    from ..domain.period import parse
    from ..domain.simulation import parse_minutes
    from ..services.simulation import simulate

    if not os.path.isfile(a.config):
        raise ValidationError("config", f"{a.config!r} is not a readable file")
    period = parse(a.period, ctx.clock())
    minutes = parse_minutes(a.minutes)
    candidate = load({**os.environ, "CORTEX_CHANGE_CONFIG": a.config})
    out = simulate(ctx, candidate, period, minutes, a.config)
    if a.json:
        print(as_json(out))
    else:
        for line in _report(out, a.list):
            print(escape(line))
    return EXIT_OK


def _report(out: dict[str, Any], listed: int) -> list[str]:
    p, now, then = out["period"], out["current"], out["candidate"]
    lines = [
        f"{out['replayed']} changes filed in {p['label']} replayed under the running configuration and "
        f"under {out['config']} ({out['not_assessed']} never assessed, left out); nothing was written",
    ]
    if out["unlike_recorded"]:
        lines.append(
            f"{out['unlike_recorded']} of them replay under the running configuration unlike their recorded "
            "assessment (the CMDB, windows, catalog or configuration changed since): compare the two columns"
        )
    differences = out["differences"]
    lines.append(
        "settings that differ: "
        + (
            ", ".join(
                f"{k} {_value(v['current'])} → {_value(v['candidate'])}" for k, v in differences.items()
            )
            or "none"
        )
    )
    lines.append(f"{'route':<16}{'current':>9}{'candidate':>11}{'change':>8}")
    for route, count in now["routes"].items():
        other = then["routes"][route]
        lines.append(f"{route:<16}{count:>9}{other:>11}{other - count:>+8}")
    blocked = now["blocked"]["count"], then["blocked"]["count"]
    lines.append(f"{'refused':<16}{blocked[0]:>9}{blocked[1]:>11}{blocked[1] - blocked[0]:>+8}")
    minutes = ", ".join(f"{role} {n}" for role, n in out["minutes_per_approval"].items())
    lines.append(f"approver-hours by role (minutes per approval: {minutes}; --minutes role=N)")
    for role, hours in now["approver_hours"].items():
        other = then["approver_hours"][role]
        each = "" if other["per_member"] is None else f" ({other['per_member']} h each of {other['members']})"
        delta = other["hours"] - hours["hours"]
        lines.append(f"  {role:<14}{hours['hours']:>9}{other['hours']:>11}{delta:>+8.1f}{each}")
    was, will = now["auto_approved_failed"], then["auto_approved_failed"]
    lines.append(
        f"approved by the system and then failed: current {was['count']}, candidate {will['count']}"
        + _named(will["changes"], listed)
    )
    refused = then["blocked"]["changes"][:listed]
    lines += [f"  refused under the candidate: {r['change_id']}: {r['reason']}" for r in refused]
    moved = out["moved"]
    lines.append(f"{len(moved)} changes would take another route" + (":" if moved and listed else ""))
    lines += [f"  {m['change_id']}: {m['from']} → {m['to']}" for m in moved[:listed]]
    if len(moved) > listed:
        lines.append(f"  … and {len(moved) - listed} more (--list N, or --json for all)")
    return lines


def _named(ids: list[str], listed: int) -> str:
    if not ids or not listed:
        return ""
    more = f" and {len(ids) - listed} more" if len(ids) > listed else ""
    return f" ({', '.join(ids[:listed])}{more})"


def _value(v: object) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v)) or "none"
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items())
    return str(v).lower() if isinstance(v, bool) else str(v)
