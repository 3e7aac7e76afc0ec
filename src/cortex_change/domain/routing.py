"""Risk level → route, who must approve each route, and segregation of duties (SPEC §3–§4)."""

from __future__ import annotations

from .errors import ApprovalRefused
from .lifecycle import State
from .model import Approval, Change, ChangeType, Decision, Level, Route
from .policy import Policy
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Final

AUTO_APPROVER = "auto-approval-system"
EMERGENCY_APPROVER = "emergency-cab"
STANDARD_APPROVER_PREFIX = "standard-model:"

TESTING_REQUIRED: dict[Level, str] = {
    Level.LOW: "unit",
    Level.MEDIUM: "integration",
    Level.HIGH: "full staging",
    Level.CRITICAL: "complete suite",
}

# category -> assessor; other categories depend on the score (see assessor_for).
ASSESSORS: dict[str, str] = {
    "security": "security-master",
    "deployment": "development-master",
    "infrastructure": "cicd-master",
    "inventory": "inventory-master",
}

STATE_AFTER_ROUTE: dict[Route, State] = {
    Route.PRE_APPROVED: State.APPROVED,
    Route.AUTO_APPROVED: State.APPROVED,
    Route.TECHNICAL_LEAD: State.PENDING_APPROVAL,
    Route.CAB: State.PENDING_CAB,
    Route.CAB_CISO_CTO: State.PENDING_CAB,
    Route.EMERGENCY_CAB: State.PENDING_APPROVAL,
}


class Requirement(Frozen):
    """`count` distinct approvals from `members`, recorded under `role`."""

    __slots__ = ("config_key", "count", "members", "role")

    def __init__(self, role: str, config_key: str, members: frozenset[str], count: int) -> None:
        self.role: Final = role
        self.config_key: Final = config_key
        self.members: Final = members
        self.count: Final = count


def is_system_approver(name: str) -> bool:
    """Approvals the policy grants by itself (auto, emergency, standard model)."""
    return name in (AUTO_APPROVER, EMERGENCY_APPROVER) or name.startswith(STANDARD_APPROVER_PREFIX)


def assessor_for(category: str, score: int) -> str:
    if category in ASSESSORS:
        return ASSESSORS[category]
    return "coordinator-master" if score >= 60 else "development-master"


def route_for(change: Change, level: Level, score: int, policy: Policy) -> tuple[Route, str]:
    """The approval route for a (non-standard) change, and why."""
    if change.type is ChangeType.EMERGENCY:
        return Route.EMERGENCY_CAB, "emergency change: emergency CAB"
    if not policy.require_change_approval:
        return Route.AUTO_APPROVED, "REQUIRE_CHANGE_APPROVAL=false: approved without review"
    if level is Level.LOW:
        if policy.auto_approve_low_risk and score < policy.auto_approve_threshold:
            return Route.AUTO_APPROVED, f"low risk, score {score} < AUTO_APPROVE_THRESHOLD"
        return Route.TECHNICAL_LEAD, "low risk, not eligible for auto-approval"
    return {
        Level.MEDIUM: (Route.TECHNICAL_LEAD, "medium risk: technical lead"),
        Level.HIGH: (Route.CAB, "high risk: CAB"),
        Level.CRITICAL: (Route.CAB_CISO_CTO, "critical risk: CAB + CISO + CTO"),
    }[level]


def state_after_route(route: Route, policy: Policy, human: bool = False) -> State:
    if route is Route.EMERGENCY_CAB and policy.emergency_auto_approve and not human:
        return State.APPROVED
    return STATE_AFTER_ROUTE[route]


def requirements(route: Route, policy: Policy, ciso: bool = False) -> list[Requirement]:
    """What a route needs before the change is approved (empty: approved by the system); with
    `ciso` (PHI or PCI data in the blast radius, `Assessment.ciso`), a CISO member as well."""
    tl = Requirement("technical-lead", "TECH_LEADS", policy.tech_leads, 1)
    cab = Requirement("cab", "CAB_MEMBERS", policy.cab_members, policy.cab_min_approvals)
    ciso_member = Requirement("ciso", "CISO_MEMBERS", policy.ciso_members, 1)
    cto = Requirement("cto", "CTO_MEMBERS", policy.cto_members, 1)
    ecab = Requirement("ecab", "ECAB_MEMBERS", policy.ecab_members, 1)
    reqs = {
        Route.TECHNICAL_LEAD: [tl],
        Route.CAB: [cab],
        Route.CAB_CISO_CTO: [cab, ciso_member, cto],
        Route.EMERGENCY_CAB: [ecab],
    }.get(route, [])
    return [*reqs, ciso_member] if ciso and route in (Route.TECHNICAL_LEAD, Route.CAB) else reqs


def _granted(approvals: list[Approval], role: str) -> int:
    return sum(1 for a in approvals if a.decision is Decision.APPROVED and a.role == role)


def outstanding(route: Route, approvals: list[Approval], policy: Policy, ciso: bool = False) -> list[str]:
    """Human-readable parts of the route still unmet; empty when the change may be approved."""
    missing = []
    for req in requirements(route, policy, ciso):
        have = _granted(approvals, req.role)
        if have < req.count:
            missing.append(f"{req.role} {have}/{req.count}")
    return missing


def _ciso(change: Change) -> bool:
    return change.assessment is not None and change.assessment.ciso


def needs(change: Change, policy: Policy) -> list[Requirement]:
    """What the change's route needs (the CISO too when its blast radius holds PHI or PCI data)."""
    a = change.assessment
    return [] if a is None else requirements(a.route, policy, a.ciso)


def _holders(reqs: list[Requirement]) -> str:
    return "; ".join(f"{r.role} ({r.config_key}): {', '.join(sorted(r.members)) or 'nobody'}" for r in reqs)


def check_segregation(change: Change, person: str, verb: str, policy: Policy) -> None:
    """Nobody decides on a change they requested or authored (SPEC §4, §11)."""
    if not policy.segregation_of_duties or not change.authored_by(person):
        return
    did = "requested it" if person == change.requested_by else "edited it (an author)"
    raise ApprovalRefused(
        f"{person} may not {verb} {change.change_id}: they {did} (SEGREGATION_OF_DUTIES=true)"
    )


# How much human review a route asks for: a re-assessment never goes below the highest reached.
# An emergency route counts as a human route only when an ECAB member had to decide.
RANK: dict[Route, int] = {
    Route.PRE_APPROVED: 0,
    Route.AUTO_APPROVED: 0,
    Route.TECHNICAL_LEAD: 1,
    Route.EMERGENCY_CAB: 1,
    Route.CAB: 2,
    Route.CAB_CISO_CTO: 3,
}
ADHOC_REASON = "the plans hold ad-hoc executable steps (run/http): a human approves them (SPEC §11)"


def human_route(change: Change, route: Route, why: str, adhoc: bool) -> tuple[Route, str, bool]:
    """Raise a route that needs no person when ad-hoc steps or the route floor ask for one.

    Returns the route, its reason, and whether a person must approve (for `emergency-cab`,
    whether an ECAB member must, whatever EMERGENCY_AUTO_APPROVE says).
    """
    floor = change.route_floor
    if change.type is ChangeType.EMERGENCY:
        if adhoc:
            return route, f"{why}; {ADHOC_REASON}: an ECAB member", True
        if floor is not None:
            return route, f"{why}; an ECAB member had to decide before (route floor)", True
        return route, why, False
    if adhoc and RANK[route] == 0:
        route, why = Route.TECHNICAL_LEAD, f"{ADHOC_REASON}: technical lead"
    if floor is not None and RANK[route] < RANK[floor]:
        target = Route.TECHNICAL_LEAD if floor is Route.EMERGENCY_CAB else floor
        route, why = target, f"{why}; kept at {target.value}, the highest route already reached (route floor)"
    return route, why, RANK[route] > 0


def roles_held(change: Change, person: str, route: Route, policy: Policy) -> list[Requirement]:
    """The route's requirements that `person` may fill; refused if none."""
    reqs = requirements(route, policy, _ciso(change))
    held = [r for r in reqs if person in r.members]
    if not held:
        raise ApprovalRefused(
            f"{person} holds no role that {change.change_id} needs (route {route.value}; {_holders(reqs)})"
        )
    return held


def _match(voters: list[str], reqs: list[Requirement], fixed: dict[str, str]) -> dict[str, str] | None:
    """Seat every voter in a role they hold (a bipartite matching, Kuhn's algorithm).

    Earlier voters keep their seats where possible (`fixed`); returns None when some voter
    cannot be seated without leaving another one out.
    """
    seats = [r.role for r in reqs for _ in range(r.count)]
    holder: dict[int, str] = {}

    def can(voter: str, seat: int) -> bool:
        return any(voter in r.members for r in reqs if r.role == seats[seat])

    def seat(voter: str, seen: set[int]) -> bool:
        order = sorted(range(len(seats)), key=lambda i: (seats[i] != fixed.get(voter), seats[i] == "cab"))
        for i in order:
            if i in seen or not can(voter, i):
                continue
            seen.add(i)
            if i not in holder or seat(holder[i], seen):
                holder[i] = voter
                return True
        return False

    for voter in voters:
        if not seat(voter, set()):
            return None
    return {voter: seats[i] for i, voter in holder.items()}


def seat_vote(
    change: Change, approver: str, route: Route, policy: Policy, wanted: str | None = None
) -> dict[str, str]:
    """The role every active approver counts under once `approver`'s vote is added.

    One person counts once. Earlier approvers may move to another role they hold when that lets
    the new vote count (e.g. a CAB member who is also CISO moves to CAB so the CISO can vote).
    """
    held = roles_held(change, approver, route, policy)
    active = [a for a in change.active_approvals if a.decision is Decision.APPROVED]
    if any(a.approver == approver for a in change.active_approvals):
        raise ApprovalRefused(f"{approver} has already approved {change.change_id}; one person counts once")
    reqs = requirements(route, policy, _ciso(change))
    if wanted is not None:
        if wanted not in {r.role for r in held}:
            raise ApprovalRefused(f"{approver} does not hold the role {wanted} on route {route.value}")
        reqs = [
            r
            if r.role == wanted or approver not in r.members
            else Requirement(r.role, r.config_key, r.members - {approver}, r.count)
            for r in reqs
        ]
    fixed = {a.approver: a.role for a in active}
    seating = _match([*fixed, approver], reqs, fixed)
    if seating is None:
        raise ApprovalRefused(
            f"no outstanding approval of {change.change_id} needs {approver}'s role"
            + (f" {wanted}" if wanted else "")
            + f" (already counted: {', '.join(f'{a.approver} as {a.role}' for a in active) or 'nobody'})"
        )
    return seating
