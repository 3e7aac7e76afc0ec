"""A generator of realistic change histories with a planted failure signal (issue 17, risk
intelligence): training and evaluation data for the learned change-failure predictor, written
through the real services on a store, so every change has a real assessment, real approvals
and a real, hash-chained audit trail.

`generate(ctx, clock, n, seed)` files `n` changes over about n/10 days, moving `clock` (a
`FakeClock`) forward as it goes: 8–14 changes on a weekday, 2–6 on Saturday and Sunday, at
hours spread over the day (most in working hours, some in the evening and at night). Each is

- normal (about 95 %) or emergency (about 5 %); never standard;
- of a category of `ctx.policy.categories` (deployment, configuration, patch and update the
  most frequent), with an impact and an urgency (low 30 %, medium 40 %, high 22 %, critical 8 %);
- on 1–3 services of the fixed pool `SERVICES` (12 names, four databases: `*-db`);
- in production, or (about 12 %) a staging deployment; about a quarter of the production
  changes promote an earlier successful staging change: same category and services, citing it
  as `tested_in_staging`;
- with a text implementation plan of 1–6 steps, a rollback plan about 70 % of the time (a
  normal change that is assessed high or critical without one is sent back: its requester adds
  one, as REQUIRE_ROLLBACK_PLAN asks), and a test plan about half of the time;
- filed by one of `REQUESTERS` (people, and a few agent-like names, which file as people here).

It is assessed (`assess_change`), approved by whoever its route waits for (`routing.needs`:
technical lead `tech-lead`; CAB two of `ops-lead`, `security-lead` and the other CAB members;
CISO `ciso`; CTO `cto`; ECAB `tech-lead-oncall` — never its requester), implemented by
`cortex-deployer` (text steps: it is left implemented) and closed by `cortex-deployer` as
`successful`, or `failed` / `rolled_back` (the latter only when it has a rollback plan) as the
planted signal decides. Emergency changes get their retrospective review by `ops-lead`. Each
change's lifecycle takes at most about three hours (1–20 minutes between its steps), mostly on
the day it was filed (a late filing may be carried out after midnight: the signal reads the
day the implementation started).

THE PLANTED SIGNAL — the probability that a change fails, decided from its final record:

- base: 1 %;
- a database change (a service whose name ends in `-db`): +5 points;
- implemented on a Friday (the UTC weekday of `timeline.implementation_started_at`): +5 points;
- both, a database change on a Friday: +85 points more (96 % in all);
- no rollback plan: +45 points;
- an emergency change: +40 points;
- plus noise: ± up to 3 points drawn per change, then clamped to [1 %, 95 %]; the outcome is
  one draw against that probability.

Nothing else (category, impact, urgency, the number of services, the requester, staging
evidence, the hour) changes the chance of failure, though some correlate with what does.

Every random choice comes from `random.Random(seed)`, drawn in the same order whatever the
store holds, so one seed gives the same changes and outcomes on any backend (change ids differ:
they carry random bytes).

How separable that is, measured (seeds 7, 8, 9; 700 changes; the newest fifth held out): the
true probabilities themselves rank failures with AUC 0.87–0.92; `risk train`'s logistic candidate
reaches 0.83–0.87 (it approximates the Friday-and-database interaction by its parts), the boosted
trees 0.85–0.90, and the chosen model (lowest held-out Brier score) 0.85–0.91.

Figures computed on generated data — a model's accuracy, AUC, calibration — say how well a
learner recovers this planted signal; they say nothing about how it would do on a real
installation's history.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from cortex_change.domain import routing
from cortex_change.domain.fields import ChangeRequest
from cortex_change.domain.lifecycle import AWAITING_APPROVAL, State
from cortex_change.domain.model import Change, ChangeType, ClosureStatus
from cortex_change.domain.workflow import missing_documentation
from cortex_change.services.changes import (
    approve_change,
    assess_change,
    close_change,
    create_change,
    limits,
    review_change,
    update_change,
)
from cortex_change.services.context import Context
from cortex_change.services.implementation import implement_change
from support import FakeClock

SERVICES = (
    "payments-db",
    "orders-db",
    "users-db",
    "inventory-db",
    "web",
    "search",
    "checkout",
    "api-gateway",
    "auth",
    "notifications",
    "reporting",
    "cdn",
)
REQUESTERS = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "release-bot",
    "renovate-bot",
    "deploy-agent",
)
IMPLEMENTER = "cortex-deployer"
REVIEWER = "ops-lead"
# Whom each role asks first; the role's other members (sorted) after them.
PREFERRED: dict[str, tuple[str, ...]] = {
    "technical-lead": ("tech-lead",),
    "cab": ("ops-lead", "security-lead"),
    "ciso": ("ciso",),
    "cto": ("cto",),
    "ecab": ("tech-lead-oncall",),
}

# The planted signal (see the module docstring).
BASE_RATE = 0.01
DATABASE = 0.05  # a database change, any day
ON_FRIDAY = 0.05  # any change implemented on a Friday
FRIDAY_DATABASE = 0.85  # both: on top of the two above (0.96 with the base)
NO_ROLLBACK_PLAN = 0.45
EMERGENCY = 0.40
NOISE = 0.03
FRIDAY = 4  # datetime.weekday()

CATEGORY_WEIGHTS = {
    "deployment": 8,
    "configuration": 6,
    "patch": 5,
    "update": 4,
    "infrastructure": 3,
    "security": 2,
    "cicd": 2,
    "rollback": 1,
    "inventory": 1,
    "documentation": 1,
}
LEVELS = ("low", "medium", "high", "critical")
LEVEL_WEIGHTS = (30, 40, 22, 8)
# Filing hour (UTC) weights: quiet at night, busy in working hours, some evening work.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 6, 9, 10, 10, 9, 7, 4, 3, 2, 2, 1, 1)

VERBS = {
    "deployment": "Deploy release {v} of {s}",
    "configuration": "Tune the configuration of {s}",
    "patch": "Apply patch {v} to {s}",
    "update": "Update {s} dependencies to {v}",
    "infrastructure": "Resize the nodes behind {s}",
    "security": "Rotate credentials of {s}",
    "cicd": "Change the pipeline of {s}",
    "rollback": "Roll {s} back to {v}",
    "inventory": "Record the hosts of {s}",
    "documentation": "Refresh the runbook of {s}",
}
STEPS = (
    "announce the change in #ops",
    "take a snapshot",
    "drain one instance",
    "apply the change to the canary",
    "watch the dashboards for ten minutes",
    "apply the change everywhere",
    "run the smoke tests",
    "check error rates and latency",
    "update the runbook",
)
ROLLBACK_STEPS = (
    "redeploy the previous release",
    "restore the snapshot",
    "revert the configuration commit",
    "fail over to the standby",
)


def failure_probability(change: Change, noise: float) -> float:
    """The planted signal: the chance that `change` (an implemented record) fails."""
    started = change.timeline.implementation_started_at
    database = any(s.endswith("-db") for s in change.affected_services)
    friday = started is not None and started.weekday() == FRIDAY
    p = BASE_RATE + DATABASE * database + ON_FRIDAY * friday + FRIDAY_DATABASE * (database and friday)
    if not (change.rollback_plan or {}).get("steps"):
        p += NO_ROLLBACK_PLAN
    if change.type is ChangeType.EMERGENCY:
        p += EMERGENCY
    return min(0.95, max(0.01, p + noise))


class Draws:
    """Everything random about one change, drawn from the generator's `random.Random` in a fixed
    order and number (so what the store holds never shifts later draws)."""

    def __init__(self, rng: random.Random, categories: list[str]) -> None:
        self.emergency = rng.random() < 0.05
        self.staging = rng.random() < 0.12
        self.promote = rng.random() < 0.25
        self.promoted_pick = rng.random()
        self.category = rng.choices(categories, [CATEGORY_WEIGHTS.get(c, 1) for c in categories])[0]
        self.impact = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
        self.urgency = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
        k = rng.choices((1, 2, 3), (55, 30, 15))[0]
        self.services = rng.sample(SERVICES, k)
        self.steps = rng.sample(STEPS, rng.randint(1, 6))
        self.rollback = rng.random() < 0.70
        self.rollback_steps = rng.sample(ROLLBACK_STEPS, rng.randint(1, 2))
        self.test_plan = rng.random() < 0.5
        self.requester = rng.choice(REQUESTERS)
        self.version = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        self.minutes = [rng.randint(1, 20) for _ in range(6)]  # between the lifecycle's steps
        self.noise = rng.uniform(-NOISE, NOISE)
        self.outcome = rng.random()
        self.rolled_back = rng.random() < 0.7


class Staged:
    """A staging change that closed successful: what a production change may promote."""

    def __init__(self, change_id: str, category: str, services: list[str]) -> None:
        self.change_id = change_id
        self.category = category
        self.services = services


def _filing_times(rng: random.Random, start: datetime) -> Iterator[datetime]:
    """Filing times from the day after `start`, each day's drawn as it begins (so the first n
    changes are the same whatever n): 8–14 on a weekday, 2–6 on a weekend day."""
    day = (start + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    while True:
        count = rng.randint(2, 6) if day.weekday() >= 5 else rng.randint(8, 14)
        hours = rng.choices(range(24), HOUR_WEIGHTS, k=count)
        for second in sorted(h * 3600 + rng.randint(0, 3599) for h in hours):
            yield day + timedelta(seconds=second)
        day += timedelta(days=1)


def _request(d: Draws, staged: list[Staged]) -> dict[str, Any]:
    kind = ChangeType.EMERGENCY if d.emergency else ChangeType.NORMAL
    category, services = d.category, list(d.services)
    fields: dict[str, Any] = {"environment": "production"}
    if d.staging and kind is ChangeType.NORMAL:
        fields["environment"] = "staging"
    elif d.promote and staged and kind is ChangeType.NORMAL:
        cited = staged.pop(int(d.promoted_pick * len(staged)))  # each staging change promoted once
        category, services = cited.category, list(cited.services)
        fields["tested_in_staging"] = cited.change_id
    title = VERBS.get(category, "Change {s}").format(v=d.version, s=services[0])
    if fields["environment"] == "staging":
        title += " (staging)"
    fields |= {
        "type": kind.value,
        "category": category,
        "title": title,
        "description": f"{title}; touches {', '.join(services)}.",
        "requested_by": d.requester,
        "impact": d.impact,
        "urgency": "critical" if kind is ChangeType.EMERGENCY else d.urgency,
        "affected_services": services,
        "implementation_plan": {"steps": list(d.steps)},
    }
    if d.rollback:
        fields["rollback_plan"] = {"steps": list(d.rollback_steps)}
    if d.test_plan:
        fields["test_plan"] = {"steps": ["run the integration suite", "check the staging dashboards"]}
    return fields


def _approvers(requirement: routing.Requirement) -> list[str]:
    first = [m for m in PREFERRED.get(requirement.role, ()) if m in requirement.members]
    return first + sorted(requirement.members - set(first))


def _approve(ctx: Context, clock: FakeClock, change: Change, d: Draws) -> Change:
    """Approve as the route's roles ask, each vote by a member who did not author the change."""
    voted: set[str] = set()
    for requirement in routing.needs(change, ctx.policy):
        candidates = [m for m in _approvers(requirement) if m not in voted and not change.authored_by(m)]
        for member in candidates[: requirement.count]:
            if change.state not in AWAITING_APPROVAL:
                return change
            clock.advance(minutes=d.minutes[2])
            change, _ = approve_change(
                ctx,
                change_id=change.change_id,
                approver=member,
                reason=f"reviewed the plan for {change.title}",
                role=requirement.role,
            )
            voted.add(member)
    return change


def _one(ctx: Context, clock: FakeClock, d: Draws, staged: list[Staged]) -> Change:
    fields = _request(d, staged)
    change = create_change(ctx, ChangeRequest.of(fields, limits(ctx.settings)))
    cid = change.change_id
    clock.advance(minutes=d.minutes[0])
    change = assess_change(ctx, change_id=cid)
    if missing_documentation(change, ctx.policy):  # sent back: the requester adds a rollback plan
        clock.advance(minutes=d.minutes[1])
        update = {"rollback_plan": {"steps": list(d.rollback_steps)}}
        change = update_change(ctx, change_id=cid, actor=change.requested_by, fields=update)
    if change.state in AWAITING_APPROVAL:
        change = _approve(ctx, clock, change, d)
    if change.state is not State.APPROVED:
        raise AssertionError(f"{cid} is {change.state.value} after its approvals")
    clock.advance(minutes=d.minutes[3])
    change = implement_change(ctx, change_id=cid, actor=IMPLEMENTER)
    clock.advance(minutes=d.minutes[4])
    failed = d.outcome < failure_probability(change, d.noise)
    has_rollback = bool((change.rollback_plan or {}).get("steps"))
    if not failed:
        status, notes = ClosureStatus.SUCCESSFUL, "done; dashboards green"
    elif has_rollback and d.rolled_back:
        status, notes = ClosureStatus.ROLLED_BACK, "errors after the change: rolled back"
    else:
        status, notes = ClosureStatus.FAILED, "the change failed; fixed forward"
    change = close_change(ctx, change_id=cid, status=status.value, notes=notes, actor=IMPLEMENTER)
    if change.type is ChangeType.EMERGENCY and change.review is not None and not change.authored_by(REVIEWER):
        clock.advance(minutes=d.minutes[5])
        change = review_change(ctx, change_id=cid, reviewer=REVIEWER, outcome="accepted", notes="")
    if change.environment == "staging" and status is ClosureStatus.SUCCESSFUL:
        staged.append(Staged(cid, change.category, list(change.affected_services)))
    return change


def generate(ctx: Context, clock: FakeClock, n: int, seed: int = 7) -> list[str]:
    """File, assess, approve, implement and close `n` changes on `ctx`'s store, moving `clock`
    forward; returns their ids in filing order (see the module docstring for the signal)."""
    rng = random.Random(seed)
    categories = list(ctx.policy.categories)
    times = _filing_times(rng, clock())
    staged: list[Staged] = []
    ids: list[str] = []
    while len(ids) < n:
        when = next(times)
        d = Draws(rng, categories)
        clock.set(max(when, clock() + timedelta(minutes=2)))
        ids.append(_one(ctx, clock, d, staged).change_id)
    return ids
