"""`cortex-change observe` and `observations list`: what really changed (on the local store)."""

from __future__ import annotations

import json

from .exits import EXIT_OK, EXIT_REFUSED
from .operations import _who
from .render import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse

    from ..services.context import Context


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
    return EXIT_OK if seen["authorized"] else EXIT_REFUSED


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
