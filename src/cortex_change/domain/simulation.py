"""Policy simulation (docs/simulation.md), pure: a change as it stood when filed, what its replayed
assessment asks of people, and the tallies that set one configuration beside another."""

from __future__ import annotations

from collections import Counter

from . import routing
from .codec import from_document, to_document
from .errors import ValidationError
from .lifecycle import State
from .model import Change, ClosureStatus, Route, Timeline
from .policy import Policy
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, Final

# Minutes one approval takes its approver, by role (an assumption the operator states with
# --minutes role=N; the store records when approvals happen, not how long they took).
MINUTES: dict[str, int] = {"technical-lead": 15, "cab": 30, "ciso": 20, "cto": 20, "ecab": 15}
ROUTES = tuple(Route)
LISTED = 10  # changes named per finding in the text report


def parse_minutes(items: Sequence[str]) -> dict[str, int]:
    """`role=N` pairs over the defaults; a role or a number outside what is allowed is refused."""
    out = dict(MINUTES)
    for item in items:
        role, _, number = item.partition("=")
        if role not in MINUTES:
            raise ValidationError("minutes", f"{role!r} is not a role; allowed: {', '.join(MINUTES)}")
        if not number.isdigit() or not 0 <= int(number) <= 1440:
            raise ValidationError("minutes", f"{item!r}: give role=N, N whole minutes 0–1440")
        out[role] = int(number)
    return out


def as_filed(change: Change) -> Change:
    """A copy of the change as it stood before its first assessment: its request, nothing decided
    (a standard request turned into another type is standard again)."""
    copy = from_document(to_document(change))
    copy.state = State.PENDING_ASSESSMENT
    copy.type = copy.reclassified_from or copy.type
    copy.reclassified_from = None
    copy.assessment = None
    copy.approvals = []
    copy.review = None
    copy.route_floor = None
    copy.closure_status = None
    copy.closure_notes = None
    copy.timeline = Timeline(created_at=change.timeline.created_at)
    return copy


def failed(change: Change) -> bool:
    """Closed failed or rolled back (what an auto-approval should not have let through)."""
    return change.closure_status in (ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK)


class Replay(Frozen):
    """One change's replayed assessment under one configuration: its route, or why it was
    refused; whether the system approved it by itself; the approver-minutes it asks, by role."""

    __slots__ = ("blocked", "change_id", "failed", "minutes", "route", "score", "system_approved")

    def __init__(
        self,
        change_id: str,
        failed: bool,
        route: Route | None = None,
        system_approved: bool = False,
        minutes: dict[str, int] | None = None,
        blocked: str | None = None,
        score: int | None = None,
    ) -> None:
        self.change_id: Final = change_id
        self.failed: Final = failed
        self.route: Final = route
        self.score: Final = score
        self.system_approved: Final = system_approved
        self.minutes: Final = minutes or {}
        self.blocked: Final = blocked


def replayed(recorded: Change, assessed: Change, policy: Policy, minutes: dict[str, int]) -> Replay:
    """The replay of `recorded` from its assessed copy: approved by the system when the copy left
    its assessment approved; else each requirement of its route costs its votes × minutes."""
    a = assessed.assessment
    assert a is not None
    if assessed.state is State.APPROVED:
        return Replay(recorded.change_id, failed(recorded), a.route, True, score=a.score)
    cost: Counter[str] = Counter()
    for req in routing.requirements(a.route, policy, a.ciso):
        cost[req.role] += req.count * minutes[req.role]
    return Replay(recorded.change_id, failed(recorded), a.route, False, dict(cost), score=a.score)


def drifted(recorded: Change, replay: Replay) -> bool:
    """The running configuration's replay disagrees with what was recorded (the CMDB, windows,
    catalog or configuration changed since, or a reassessment saw more history)."""
    a = recorded.assessment
    assert a is not None
    return (replay.route, replay.score) != (a.route, a.score)


def refused(recorded: Change, why: str) -> Replay:
    return Replay(recorded.change_id, failed(recorded), blocked=why)


class Tally(Frozen):
    """One configuration's replays summed: routes, approver-hours by role, the changes it let
    through by itself that then failed, and those it refused."""

    __slots__ = ("blocked", "hours", "let_through_failed", "routes")

    def __init__(self, replays: Iterable[Replay]) -> None:
        routes: Counter[str] = Counter()
        minutes: Counter[str] = Counter()
        let_through: list[str] = []
        blocked: list[tuple[str, str]] = []
        for r in replays:
            if r.blocked is not None:
                blocked.append((r.change_id, r.blocked))
                continue
            assert r.route is not None
            routes[r.route.value] += 1
            minutes.update(r.minutes)
            if r.system_approved and r.failed:
                let_through.append(r.change_id)
        self.routes: Final = {route.value: routes[route.value] for route in ROUTES}
        self.hours: Final = {role: round(minutes[role] / 60, 1) for role in MINUTES}
        self.let_through_failed: Final = let_through
        self.blocked: Final = blocked

    def document(self, policy: Policy) -> dict[str, Any]:
        members = {
            "technical-lead": policy.tech_leads,
            "cab": policy.cab_members,
            "ciso": policy.ciso_members,
            "cto": policy.cto_members,
            "ecab": policy.ecab_members,
        }
        return {
            "routes": self.routes,
            "approver_hours": {
                role: {
                    "hours": hours,
                    "members": len(members[role]),
                    "per_member": round(hours / len(members[role]), 1) if members[role] else None,
                }
                for role, hours in self.hours.items()
            },
            "auto_approved_failed": {
                "count": len(self.let_through_failed),
                "changes": self.let_through_failed,
            },
            "blocked": {
                "count": len(self.blocked),
                "changes": [{"change_id": cid, "reason": why} for cid, why in self.blocked],
            },
        }


def moved(base: Sequence[Replay], candidate: Sequence[Replay]) -> list[dict[str, str]]:
    """The changes whose outcome differs between the two configurations, in filing order."""
    out = []
    for b, c in zip(base, candidate, strict=True):
        was, now = _outcome(b), _outcome(c)
        if was != now:
            out.append({"change_id": b.change_id, "from": was, "to": now})
    return out


def _outcome(r: Replay) -> str:
    return "refused" if r.route is None else r.route.value
