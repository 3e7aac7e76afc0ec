"""Operations commands: rollback, the worker and its protocol, incidents, the outbox, the CAB agenda.

They act on the database directly (they run where the store is, never through the API).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from ..domain.errors import CortexError, NotFound
from .exits import EXIT_OK
from .render import escape

if TYPE_CHECKING:
    from ..services.context import Context


def _who(a: argparse.Namespace) -> str:
    from . import inputs

    who = inputs.who(a.as_, None, "actor", True)
    assert who is not None
    return who


def cmd_rollback(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.workers import rollback_change
    from .commands import implement_outcome

    change = rollback_change(ctx, change_id=a.change_id, actor=_who(a), reason=a.reason)
    print(f"{change.change_id}: {implement_outcome(change)}")
    return EXIT_OK


def cmd_worker_run(ctx: Context, a: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from ..domain import validation
    from ..services import worker

    name = worker.default_name() if a.name is None else validation.identity("--name", a.name)
    if a.once:
        print(json.dumps(worker.tick(ctx, name).as_dict(), ensure_ascii=False))
        return EXIT_OK
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"worker {escape(name)} running (WORKER_POLL_INTERVAL={ctx.settings['WORKER_POLL_INTERVAL']}s)",
        file=sys.stderr,
    )
    worker.run(ctx, name, stop, _pusher(ctx))
    print(f"worker {escape(name)} stopped", file=sys.stderr)
    return EXIT_OK


def _pusher(ctx: Context) -> Any:
    """The periodic metrics push, when the configuration asks for one (else None)."""
    try:
        from ..services.telemetry import push, push_target

        push_target(ctx)
    except (ImportError, CortexError):  # not configured, or the worker extra is not installed
        return None

    def run() -> bool:
        try:
            push(ctx)
            return True
        except Exception as exc:  # an unreachable gateway must not stop the worker
            print(f"cortex-change worker: metrics push failed: {escape(exc)}", file=sys.stderr)
            return False

    return run


def cmd_worker_execute(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.workers import execute

    print(json.dumps(execute(ctx, change_id=a.change_id, worker=a.worker), ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_worker_heartbeat(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.workers import heartbeat

    until = heartbeat(ctx, change_id=a.change_id, worker=a.worker)
    print(escape(f"{a.change_id}: lease of {a.worker} renewed until {until}"))
    return EXIT_OK


def cmd_worker_report(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.workers import report
    from .commands import implement_outcome

    default = "worker reported success" if a.success else "worker reported failure"
    notes = default if a.notes is None else a.notes  # a reason given empty is refused, not replaced
    change = report(ctx, change_id=a.change_id, worker=a.worker, success=a.success, notes=notes)
    print(f"{change.change_id}: {implement_outcome(change)}")
    return EXIT_OK


def cmd_worker_leases(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.workers import lease_listing

    rows = lease_listing(ctx)
    if a.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for r in rows:
        print(escape(f"{r['change_id']}  {r['holder']}  {r['status']}  until {r['expires_at']}"))
    return EXIT_OK


def cmd_incidents_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.incidents import list_incidents

    rows = list_incidents(ctx, change_id=a.change)
    if a.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    for r in rows:
        print(escape(f"{r['incident_id']}  {r['state']}  {r['opened_at']}  {r['change_id']}  {r['title']}"))
    if not rows:
        print("no incidents", file=sys.stderr)
    return EXIT_OK


def cmd_incidents_show(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.incidents import get_incident

    print(json.dumps(get_incident(ctx, incident_id=a.incident_id), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_outbox_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.notifications import list_outbox

    rows = list_outbox(ctx, state="dead" if a.failed else a.state)
    if a.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    for r in rows:
        error = f"  {r['last_error']}" if r["last_error"] else ""
        print(
            escape(
                f"{r['message_id']}  {r['state']}  {r['channel']}  {r['kind']}  {r['change_id'] or '-'}  "
                f"attempts {r['attempts']}{error}"
            )
        )
    return EXIT_OK


def cmd_outbox_retry(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.notifications import retry

    if not retry(ctx, message_id=a.message_id):
        raise NotFound(f"no dead-lettered message {a.message_id!r} (see outbox list --failed)")
    print(f"{escape(a.message_id)} queued again")
    return EXIT_OK


def cmd_cab_agenda(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.cab import agenda

    data = agenda(ctx)
    if a.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(
        escape(f"CAB meeting {data['meeting']} ({data['schedule']}); members: {', '.join(data['members'])}")
    )
    for i in data["changes"]:
        risk = f"risk {i['risk_score']} ({i['risk_level']})"
        title = escape(i["title"], backslashes=True)  # as `list` shows it
        print(escape(f"  {i['change_id']}  {risk}  {i['type']} {i['category']}  {title}"))
    if not data["changes"]:
        print("  no change is waiting for the CAB")
    return EXIT_OK
