"""The worker: flags stuck leases, fires due timers, delivers the outbox, pushes metrics."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from ..domain import workflow
from ..domain.codec import fmt_time
from ..domain.errors import CortexError
from ..domain.events import Event, EventKind
from ..domain.lifecycle import AWAITING_APPROVAL, State
from ..domain.values import Value
from ..notify.message import DeliveryError, Message
from ..store import changes, outbox, timers
from . import followups, unit
from .context import Context
from .implementation import implement_change, verification_round, verification_spec
from .workers import sweep_leases

log = logging.getLogger("cortex_change.worker")
TIMER_HOLD = 900.0  # a claimed timer is another worker's again after this long (its worker died)
MESSAGE_HOLD = 120.0
MAX_BACKOFF = 6 * 3600.0


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Tick(Value):
    """What one pass of the worker did."""

    __slots__ = ("dead", "delivered", "failed", "fired", "flagged", "pushed")

    def __init__(
        self,
        flagged: list[str] | None = None,
        fired: list[str] | None = None,
        delivered: int = 0,
        failed: int = 0,
        dead: int = 0,
        pushed: bool = False,
    ) -> None:
        self.flagged: list[str] = [] if flagged is None else flagged
        self.fired: list[str] = [] if fired is None else fired
        self.delivered = delivered
        self.failed = failed
        self.dead = dead
        self.pushed = pushed

    def as_dict(self) -> dict[str, Any]:
        return {
            "flagged_leases": self.flagged,
            "timers_fired": self.fired,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead_lettered": self.dead,
            "metrics_pushed": self.pushed,
        }


def tick(ctx: Context, name: str) -> Tick:
    """One pass: leases, timers, then the outbox (so a timer's messages go out at once)."""
    t = Tick()
    t.flagged = sweep_leases(ctx)
    from .cab import ensure_agenda_timer

    ensure_agenda_timer(ctx)
    t.fired = fire_timers(ctx, name)
    deliver(ctx, name, t)
    from .checkpoints import duty  # last: signing or a witness failing never holds up the work above

    duty(ctx, name)
    return t


def run(ctx: Context, name: str, stop: threading.Event, push: Callable[[], bool] | None = None) -> None:
    """Tick every WORKER_POLL_INTERVAL until `stop` is set; push metrics every METRICS_PUSH_INTERVAL."""
    poll = float(ctx.settings["WORKER_POLL_INTERVAL"])
    every = float(ctx.settings["METRICS_PUSH_INTERVAL"])
    last_push = 0.0
    while not stop.is_set():
        try:
            t = tick(ctx, name)
            if push is not None and ctx.clock().timestamp() - last_push >= every:
                last_push = ctx.clock().timestamp()
                t.pushed = push()
            if t.flagged or t.fired or t.delivered or t.failed:
                log.info("worker %s: %s", name, json.dumps(t.as_dict()))
            if t.fired or t.delivered:
                continue  # there may be more right behind: look again at once, not after a poll
        except CortexError as exc:  # a store hiccup: log it and try again next tick
            log.error("worker %s: %s", name, exc)
        except Exception:  # anything else is a bug: say so loudly, keep the worker alive
            log.exception("worker %s: pass failed", name)
        stop.wait(poll)


def fire_timers(ctx: Context, name: str) -> list[str]:
    """Fire every due timer this worker claims; each fires once whichever worker claims it."""
    fired: list[str] = []
    now = ctx.clock().timestamp()  # fixed: timers scheduled while firing wait for the next tick
    while True:
        with ctx.db.transaction() as tx:
            claimed = timers.claim_due(tx, now, name, TIMER_HOLD, limit=10)
        if not claimed:
            return fired
        for timer_id, kind, change_id, _, payload in claimed:
            try:
                FIRE[kind](ctx, name, change_id, json.loads(payload))
            except CortexError as exc:  # the change moved on meanwhile: the timer is spent either way
                log.warning("timer %s: %s", timer_id, exc)
            except Exception:  # a bug must not wedge the worker or re-fire forever: log it, move on
                log.exception("timer %s failed", timer_id)
            with ctx.db.transaction() as tx:
                timers.fired(tx, timer_id, name, ctx.clock().timestamp())
            fired.append(timer_id)


def _implement(ctx: Context, name: str, change_id: str | None, payload: dict[str, Any]) -> None:
    """Carry out an approved change queued for the workers (or, RESUME, one the kill switch held
    or paused, once it is off)."""
    assert change_id is not None
    state = unit.load(ctx, change_id).state
    # implementing: only a run the switch paused is the worker's to resume; any other state: it
    # was implemented, cancelled or closed meanwhile
    resume = state is State.IMPLEMENTING and bool(payload.get("paused"))
    if (state is not State.APPROVED and not resume) or _held(ctx, change_id):
        return
    worker = f"worker:{name}"
    implement_change(ctx, change_id=change_id, actor=worker, holder=name, trusted=True, resume=resume)


def _held(ctx: Context, change_id: str) -> bool:
    """While the kill switch holds the change, a RESUME timer looks again later (`freeze off`
    makes it due at once)."""
    from . import automation

    with ctx.db.transaction() as tx:
        change = changes.get(tx, change_id)
        if automation.held(tx, change) is None:
            return False
        paused = change.state is State.IMPLEMENTING
        due = ctx.clock().timestamp() + automation.RECHECK
        followups.schedule(tx, followups.RESUME, change_id, due, {"paused": paused})
    return True


def _verify(ctx: Context, name: str, change_id: str | None, payload: dict[str, Any]) -> None:
    """One round of post-change verification; the next one is a timer again unless it is over."""
    assert change_id is not None
    done, state = verification_round(ctx, change_id, payload, f"worker:{name}", holder=name)
    if not done:
        interval = verification_spec(ctx, unit.load(ctx, change_id)).interval
        with ctx.db.transaction() as tx:
            followups.schedule(tx, followups.VERIFY, change_id, ctx.clock().timestamp() + interval, state)


def _approval_timeout(ctx: Context, name: str, change_id: str | None, payload: dict[str, Any]) -> None:
    assert change_id is not None
    change = unit.load(ctx, change_id)
    if change.state not in AWAITING_APPROVAL:
        return
    key = payload.get("config_key", "CAB_APPROVAL_TIMEOUT")
    details = {"config_key": key, "timeout_seconds": ctx.settings[key], "state": change.state.value}
    unit.record(ctx, change_id, [Event(EventKind.APPROVAL_ESCALATED, workflow.CHANGE_MANAGER, details)])
    if ctx.settings["AUTO_REJECT_ON_TIMEOUT"]:
        reason = f"no decision within {key}={ctx.settings[key]}s (AUTO_REJECT_ON_TIMEOUT=true)"
        now = ctx.clock()
        unit.apply(
            ctx, change_id, workflow.CHANGE_MANAGER, lambda c: workflow.expire_approval(c, reason, now)
        )


def _review(kind: EventKind) -> Callable[[Context, str, str | None, dict[str, Any]], None]:
    def fire(ctx: Context, name: str, change_id: str | None, payload: dict[str, Any]) -> None:
        assert change_id is not None
        change = unit.load(ctx, change_id)
        if change.review is None or change.review.reviewed_at is not None:
            return
        due = fmt_time(change.review.due_at)
        unit.record(
            ctx,
            change_id,
            [Event(kind, workflow.CHANGE_MANAGER, {"due_at": due, "reason": f"review due {due}"})],
        )

    return fire


def _pir(handler: str) -> Callable[[Context, str, str | None, dict[str, Any]], None]:
    """A post-implementation review's timer (services/pir.py, imported when one fires)."""

    def fire(ctx: Context, name: str, change_id: str | None, payload: dict[str, Any]) -> None:
        from . import pir

        getattr(pir, handler)(ctx, name, change_id, payload)

    return fire


def _cab_agenda(ctx: Context, name: str, change_id: str | None, payload: dict[str, Any]) -> None:
    from .cab import send_agenda

    send_agenda(ctx, payload)


FIRE: dict[str, Callable[[Context, str, str | None, dict[str, Any]], None]] = {
    followups.IMPLEMENT: _implement,
    followups.RESUME: _implement,
    followups.VERIFY: _verify,
    followups.APPROVAL_TIMEOUT: _approval_timeout,
    followups.REVIEW_DUE: _review(EventKind.REVIEW_DUE),
    followups.REVIEW_OVERDUE: _review(EventKind.REVIEW_OVERDUE),
    followups.CAB_AGENDA: _cab_agenda,
    "pir_overdue": _pir("fire_overdue"),  # services/pir.py's PIR_OVERDUE, PIR_ACTION_DUE
    "pir_action_due": _pir("fire_action_due"),
}


def deliver(ctx: Context, name: str, t: Tick) -> None:
    """Deliver due outbox messages; failures back off exponentially, then go to the dead letters."""
    limit = int(ctx.settings["OUTBOX_MAX_ATTEMPTS"])
    base = float(ctx.settings["OUTBOX_RETRY_BASE"])
    while True:
        now = ctx.clock().timestamp()
        with ctx.db.transaction() as tx:
            claimed = outbox.claim_due(tx, now, name, MESSAGE_HOLD)
        if not claimed:
            return
        for message_id, _, channel, _, _, payload, attempts, _ in claimed:
            error = _send(ctx, channel, payload)
            with ctx.db.transaction() as tx:
                if not error:
                    outbox.delivered(tx, message_id, name, ctx.clock().timestamp())
                    t.delivered += 1
                    continue
                tries = int(attempts) + 1
                backoff = min(base * 2 ** (tries - 1), MAX_BACKOFF)
                next_at = None if tries >= limit else ctx.clock().timestamp() + backoff
                outbox.failed(tx, message_id, name, error, next_at)
            t.failed += 1
            t.dead += next_at is None


def _send(ctx: Context, channel: str, payload: str) -> str:
    """Deliver one message; returns why it failed ("" when it was delivered)."""
    from ..notify.channels import CHANNELS

    if channel not in CHANNELS:
        return f"no channel {channel!r}"
    try:
        CHANNELS[channel](Message.from_json(json.loads(payload)), ctx.settings)
    except DeliveryError as exc:
        return str(exc)
    return ""
