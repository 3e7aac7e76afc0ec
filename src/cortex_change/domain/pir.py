"""Post-implementation reviews (docs/pir.md): when one is due, its lifecycle, who may write it.

A change that closes `failed` or `rolled_back`, or has an incident opened against it, gets one
review (`Pir`), due `PIR_SLA` days later: findings (text), and action items, each with an owner
and a due date. The review is `open` until a change manager completes it; completing needs
findings, and every action item with an owner and a due date. Action items may stay open after
completion (they are the improvement work): each is `open` until marked `done`.

Pure: time comes in as arguments; decisions come back as audit events.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from . import validation as v
from .codec import fmt_time
from .errors import Forbidden, NotFound, Refused, ValidationError
from .events import Event, EventKind
from .model import Change, ClosureStatus
from .policy import Policy
from .values import Value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

FINDINGS_MAX = v.DESCRIPTION_MAX  # characters
ACTION_TITLE_MAX = v.TITLE_MAX
ACTIONS_MAX = v.LIST_MAX  # action items a review may hold
DUE_MAX_DAYS = 3650  # an action item is due within ten years
SLA_DAYS_MAX = 365  # PIR_SLA's upper bound (config.py)
ACTION_ID = re.compile(r"A[1-9][0-9]{0,3}", re.ASCII)
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
# Findings are prose: newlines and tabs are kept, other control characters refused.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Status(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"


class ActionStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


# What opens a review: a change closed with one of these statuses, or an incident opened.
FAILED_CLOSURES = (ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK)
CAUSES = frozenset({EventKind.CLOSED, EventKind.INCIDENT_OPENED})


class Action(Value):
    """One action item: what is to be done, by whom, by when."""

    __slots__ = ("action_id", "added_at", "added_by", "done_at", "done_by", "due", "owner", "status", "title")

    def __init__(
        self,
        action_id: str,
        title: str,
        owner: str,
        due: date,
        added_at: datetime,
        added_by: str,
        status: ActionStatus = ActionStatus.OPEN,
        done_at: datetime | None = None,
        done_by: str | None = None,
    ) -> None:
        self.action_id = action_id
        self.title = title
        self.owner = owner
        self.due = due  # due by the end of this UTC day
        self.added_at = added_at
        self.added_by = added_by
        self.status = status
        self.done_at = done_at
        self.done_by = done_by

    @property
    def due_at(self) -> datetime:
        """The instant it is overdue from: the end of its due day (UTC)."""
        return due_instant(self.due)

    def overdue(self, now: datetime) -> bool:
        return self.status is ActionStatus.OPEN and now >= self.due_at


class Pir(Value):
    """A change's post-implementation review."""

    __slots__ = (
        "actions",
        "change_id",
        "completed_at",
        "completed_by",
        "due_at",
        "findings",
        "findings_at",
        "findings_by",
        "implementer",
        "opened_at",
        "owner",
        "reason",
        "status",
    )

    def __init__(
        self,
        change_id: str,
        reason: str,
        owner: str,
        opened_at: datetime,
        due_at: datetime,
        implementer: str | None = None,
        status: Status = Status.OPEN,
        findings: str | None = None,
        findings_by: str | None = None,
        findings_at: datetime | None = None,
        completed_at: datetime | None = None,
        completed_by: str | None = None,
        actions: list[Action] | None = None,
    ) -> None:
        self.change_id = change_id
        self.reason = reason  # what opened it: "closed failed", "incident INC-…", …
        self.owner = owner  # who answers for it: the change's requester
        self.opened_at = opened_at
        self.due_at = due_at
        self.implementer = implementer  # who started the implementation, when anyone did
        self.status = status
        self.findings = findings
        self.findings_by = findings_by
        self.findings_at = findings_at
        self.completed_at = completed_at
        self.completed_by = completed_by
        self.actions: list[Action] = [] if actions is None else actions

    def overdue(self, now: datetime) -> bool:
        """Open past its due time."""
        return self.status is Status.OPEN and now >= self.due_at

    def action(self, action_id: str) -> Action:
        for item in self.actions:
            if item.action_id == action_id:
                return item
        raise NotFound(f"{self.change_id}'s post-implementation review has no action item {action_id}")


# --- when a review is due ---------------------------------------------------------------------


def causes(change: Change, events: list[Event]) -> list[str]:
    """Why these events (of one write) open a review of the change: a closure failed or rolled
    back, an incident opened. Empty: they do not."""
    found: list[str] = []
    for e in events:
        if e.action is EventKind.CLOSED and change.closure_status in FAILED_CLOSURES:
            found.append(f"closed {change.closure_status.value}")
        elif e.action is EventKind.INCIDENT_OPENED:
            found.append(f"incident {e.details.get('incident_id', '')}".strip())
    return list(dict.fromkeys(found))


def open_review(
    change: Change, why: list[str], sla_days: int, now: datetime, implementer: str | None = None
) -> tuple[Pir, Event]:
    """The review a failure opens, due `sla_days` (PIR_SLA) later, and its `pir_opened` event."""
    pir = Pir(
        change.change_id,
        "; ".join(why),
        change.requested_by,
        now,
        now + timedelta(days=sla_days),
        implementer,
    )
    details = {"reason": pir.reason, "owner": pir.owner, "due_at": fmt_time(pir.due_at)}
    return pir, Event(EventKind.PIR_OPENED, "change-manager", details)


def overdue_event(pir: Pir) -> Event:
    """The review is past its due time and not completed (the PIR_SLA timer)."""
    due = fmt_time(pir.due_at)
    details = {"due_at": due, "owner": pir.owner, "reason": f"post-implementation review due {due}"}
    return Event(EventKind.PIR_OVERDUE, "change-manager", details)


def action_overdue_event(item: Action) -> Event:
    """An action item is past its due date and not done (its owner hears)."""
    due = item.due.isoformat()
    details = {
        "action_id": item.action_id,
        "title": item.title,
        "owner": item.owner,
        "due": due,
        "reason": f"action {item.action_id} '{item.title}' was due {due}",
    }
    return Event(EventKind.PIR_ACTION_OVERDUE, "change-manager", details)


# --- who may do what (SPEC §11's table style) ---------------------------------------------------


class Act(StrEnum):
    """What an identity asks of a review; the value reads in a refusal."""

    FINDINGS = "record the findings of"
    ADD_ACTION = "add action items to"
    ACTION_DONE = "mark action items done in"
    COMPLETE = "complete"


class Holder(StrEnum):
    REQUESTER = "the requester"
    IMPLEMENTER = "the change's implementer"
    CHANGE_MANAGERS = "CHANGE_MANAGERS"
    ACTION_OWNER = "the action item's owner"


H = Holder
WRITERS = (H.REQUESTER, H.IMPLEMENTER, H.CHANGE_MANAGERS)
# Reading a review is anyone's (as reading the change is). A change manager signs it off.
PERMISSIONS: dict[Act, tuple[Holder, ...]] = {
    Act.FINDINGS: WRITERS,
    Act.ADD_ACTION: WRITERS,
    Act.ACTION_DONE: (H.ACTION_OWNER, H.CHANGE_MANAGERS),
    Act.COMPLETE: (H.CHANGE_MANAGERS,),
}


def _who(holder: Holder, change: Change, pir: Pir, policy: Policy, item: Action | None) -> frozenset[str]:
    if holder is H.REQUESTER:
        return frozenset({change.requested_by})
    if holder is H.IMPLEMENTER:
        return frozenset({pir.implementer} if pir.implementer else ())
    if holder is H.ACTION_OWNER:
        return frozenset({item.owner} if item is not None else ())
    return policy.change_managers


def allowed(
    act: Act, actor: str, change: Change, pir: Pir, policy: Policy, item: Action | None = None
) -> bool:
    return any(actor in _who(h, change, pir, policy, item) for h in PERMISSIONS[act])


def require(
    act: Act, actor: str, change: Change, pir: Pir, policy: Policy, item: Action | None = None
) -> None:
    """Raise Forbidden naming the act and who may do it, unless `actor` may."""
    if allowed(act, actor, change, pir, policy, item):
        return
    parts = []
    for h in PERMISSIONS[act]:
        names = ", ".join(sorted(_who(h, change, pir, policy, item))) or "nobody"
        parts.append(f"{h.value} ({names})")
    raise Forbidden(
        f"{actor} may not {act.value} the post-implementation review of {change.change_id}: "
        f"allowed to {', '.join(parts)}"
    )


# --- input ------------------------------------------------------------------------------------


def findings_text(value: str) -> str:
    """Findings: 1–FINDINGS_MAX characters, not only white space; newlines and tabs allowed,
    other control characters not."""
    v.reason("findings", value, max_len=FINDINGS_MAX)
    if _CONTROL.search(value):
        raise ValidationError("findings", "must not hold control characters (newlines and tabs are fine)")
    return value


def action_title(value: str) -> str:
    return v.name("title", value, ACTION_TITLE_MAX)


def action_id(value: str) -> str:
    if not isinstance(value, str) or not ACTION_ID.fullmatch(value):
        raise ValidationError("action_id", f"{str(value)[:40]!r} is not an action item id (A1, A2, …)")
    return value


def due_date(value: str, now: datetime) -> date:
    """An action item's due date, YYYY-MM-DD: today (UTC) or later, within DUE_MAX_DAYS."""
    if not isinstance(value, str) or not DATE.fullmatch(value):
        raise ValidationError("due", f"{str(value)[:40]!r} is not a date (YYYY-MM-DD)")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError("due", f"{value!r} is not a date of the calendar (YYYY-MM-DD)") from None
    today = now.astimezone(UTC).date()
    if day < today:
        raise ValidationError("due", f"{value} is in the past (today is {today.isoformat()}, UTC)")
    if (day - today).days > DUE_MAX_DAYS:
        raise ValidationError("due", f"{value} is more than {DUE_MAX_DAYS} days ahead")
    return day


def due_instant(day: date) -> datetime:
    """The end of a due day: midnight UTC after it."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


# --- the operations: each checks, mutates the review, returns its audit events ------------------


def _open(pir: Pir, act: Act) -> None:
    if pir.status is not Status.OPEN:
        raise Refused(
            f"cannot {act.value} the post-implementation review of {pir.change_id}: it is "
            f"{pir.status.value} (completed {fmt_time(pir.completed_at)} by {pir.completed_by})"
        )


def record_findings(
    pir: Pir, change: Change, actor: str, text: str, policy: Policy, now: datetime
) -> list[Event]:
    """Write (or rewrite) the findings of an open review."""
    findings_text(text)
    _open(pir, Act.FINDINGS)
    require(Act.FINDINGS, actor, change, pir, policy)
    replaced = pir.findings is not None
    pir.findings, pir.findings_by, pir.findings_at = text, actor, now
    return [Event(EventKind.PIR_FINDINGS_RECORDED, actor, {"findings": text, "replaced": replaced})]


def add_action(
    pir: Pir, change: Change, actor: str, title: str, owner: str, due: str, policy: Policy, now: datetime
) -> list[Event]:
    """Add an action item to an open review; its id is the next A<n>."""
    action_title(title)
    v.identity("owner", owner)
    day = due_date(due, now)
    _open(pir, Act.ADD_ACTION)
    require(Act.ADD_ACTION, actor, change, pir, policy)
    if len(pir.actions) >= ACTIONS_MAX:
        raise Refused(
            f"the post-implementation review of {pir.change_id} holds {ACTIONS_MAX} action items already"
        )
    number = max((int(a.action_id[1:]) for a in pir.actions), default=0) + 1
    item = Action(f"A{number}", title, owner, day, now, actor)
    pir.actions.append(item)
    details = {
        "action_id": item.action_id,
        "title": title,
        "owner": owner,
        "due": day.isoformat(),
        "reason": f"action {item.action_id} '{title}' due {day.isoformat()}",
    }
    return [Event(EventKind.PIR_ACTION_ADDED, actor, details)]


def finish_action(
    pir: Pir, change: Change, actor: str, action: str, policy: Policy, now: datetime
) -> list[Event]:
    """Mark an action item done (also after the review was completed: the work outlives it)."""
    action_id(action)
    item = pir.action(action)
    require(Act.ACTION_DONE, actor, change, pir, policy, item)
    if item.status is ActionStatus.DONE:
        done = fmt_time(item.done_at)
        raise Refused(f"action {item.action_id} of {pir.change_id} is done already ({done})")
    item.status, item.done_at, item.done_by = ActionStatus.DONE, now, actor
    late = now >= item.due_at
    details = {"action_id": item.action_id, "title": item.title, "owner": item.owner, "late": late}
    return [Event(EventKind.PIR_ACTION_DONE, actor, details)]


def missing(pir: Pir) -> list[str]:
    """What completing the review still needs."""
    out = [] if pir.findings else ["findings (pir findings ID TEXT)"]
    for item in pir.actions:
        if not item.owner or item.due is None:
            out.append(f"an owner and a due date for action {item.action_id}")
    return out


def complete(pir: Pir, change: Change, actor: str, policy: Policy, now: datetime) -> list[Event]:
    """Sign the review off: findings written, every action item owned and dated."""
    _open(pir, Act.COMPLETE)
    require(Act.COMPLETE, actor, change, pir, policy)
    needs = missing(pir)
    if needs:
        raise Refused(
            f"cannot complete the post-implementation review of {pir.change_id}: it needs {'; '.join(needs)}"
        )
    pir.status, pir.completed_at, pir.completed_by = Status.COMPLETED, now, actor
    late = now >= pir.due_at
    still = [a.action_id for a in pir.actions if a.status is ActionStatus.OPEN]
    details = {"late": late, "actions": len(pir.actions), "actions_open": still}
    return [Event(EventKind.PIR_COMPLETED, actor, details)]


# --- as a document ----------------------------------------------------------------------------


def action_document(item: Action, now: datetime) -> dict[str, Any]:
    return {
        "action_id": item.action_id,
        "title": item.title,
        "owner": item.owner,
        "due": item.due.isoformat(),
        "status": item.status.value,
        "overdue": item.overdue(now),
        "added_at": fmt_time(item.added_at),
        "added_by": item.added_by,
        "done_at": fmt_time(item.done_at),
        "done_by": item.done_by,
    }


def document(pir: Pir, now: datetime, title: str | None = None) -> dict[str, Any]:
    """The review as `pir show` and the API print it."""
    return {
        "change_id": pir.change_id,
        "title": title,
        "status": pir.status.value,
        "reason": pir.reason,
        "owner": pir.owner,
        "implementer": pir.implementer,
        "opened_at": fmt_time(pir.opened_at),
        "due_at": fmt_time(pir.due_at),
        "overdue": pir.overdue(now),
        "findings": pir.findings,
        "findings_by": pir.findings_by,
        "findings_at": fmt_time(pir.findings_at),
        "completed_at": fmt_time(pir.completed_at),
        "completed_by": pir.completed_by,
        "actions": [action_document(a, now) for a in pir.actions],
    }
