"""Agents as agents (domain/agents.py): scopes parsed and enforced, and the human-in-the-loop
rules, as tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cortex_change.domain import agents
from cortex_change.domain.agents import Principal, Scopes
from cortex_change.domain.errors import ApprovalRefused, Forbidden, ValidationError
from cortex_change.domain.model import Change, ChangeType, Level, Route, Timeline
from cortex_change.domain.policy import Policy

COMPONENTS = {"cicd-master": {"build", "deploy", "rollback"}, "worker": {"execute", "report_success"}}
CATEGORIES = ["deployment", "security", "infrastructure"]


def parse(*specs: str, agent: bool = True, read_only: bool = False, worker: bool = False) -> Scopes:
    return agents.parse_scopes(
        specs, agent=agent, read_only=read_only, worker=worker, components=COMPONENTS, categories=CATEGORIES
    )


def change(origin: str = "human", cap: Level | None = None, **kw: object) -> Change:
    fields: dict[str, object] = {
        "change_id": "RFC-1",
        "type": ChangeType.NORMAL,
        "category": "deployment",
        "title": "t",
        "description": "d",
        "requested_by": "bot" if origin == "agent" else "alice",
        "impact": Level.LOW,
        "urgency": Level.LOW,
        "timeline": Timeline(created_at=datetime(2026, 1, 1, tzinfo=UTC)),
        "origin": origin,
        "agent_max_level": cap,
        **kw,
    }
    return Change(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        ((), {"components": [], "read_only": False, "worker": False}),
        (("components=cicd-master.deploy,worker",), {"components": ["cicd-master.deploy", "worker"]}),
        (("components=*",), {"components": ["*"]}),
        (("categories=deployment", "types=standard,normal"), {"categories": ["deployment"]}),
        (("max-level=low", "rate=30"), {"max_level": "low", "rate": 30}),
    ],
)
def test_scopes_parse_into_what_the_token_keeps(specs: tuple[str, ...], expected: dict[str, object]) -> None:
    doc = parse(*specs).document()
    for key, value in expected.items():
        assert doc[key] == value
    assert Scopes.of_document(doc) == parse(*specs)  # what the store keeps reads back the same


def test_a_person_token_without_scopes_is_unrestricted_an_agent_integrates_nothing() -> None:
    assert parse(agent=False) == agents.UNRESTRICTED
    assert parse().components == frozenset()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("components=nope", "unknown component 'nope'"),
        ("components=cicd-master.launch", "cicd-master has no action 'launch'"),
        ("categories=payroll", "unknown category 'payroll'"),
        ("types=urgent", "types"),
        ("max-level=extreme", "max-level"),
        ("max-level=low,high", "max-level takes one level"),
        ("rate=0", "rate="),
        ("rate=1e9", "rate="),
        ("rate=$(id)", "rate="),
        ("colour=red", "is not a scope like"),
        ("categories", "is not a scope like"),
        ("categories=", "names nothing"),
    ],
)
def test_bad_scopes_are_refused_naming_what_is_allowed(spec: str, message: str) -> None:
    with pytest.raises(ValidationError, match="scope") as info:
        parse(spec)
    assert message in str(info.value)


def test_a_scope_given_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="given twice"):
        parse("categories=deployment", "categories=security")


BOT = Principal("bot", agent=True, scopes=parse("categories=deployment", "types=normal"))
READER = Principal("dash", agent=False, scopes=parse(agent=False, read_only=True))
PERSON = Principal("alice")


@pytest.mark.parametrize(
    ("who", "category", "type_", "refused"),
    [
        (BOT, "deployment", ChangeType.NORMAL, None),
        (BOT, "security", ChangeType.NORMAL, "categories: deployment"),
        (BOT, "deployment", ChangeType.EMERGENCY, "types: normal"),
        (READER, "deployment", ChangeType.NORMAL, "read-only"),
        (PERSON, "security", ChangeType.EMERGENCY, None),
    ],
)
def test_filing_within_the_scopes(
    who: Principal, category: str, type_: ChangeType, refused: str | None
) -> None:
    if refused is None:
        agents.require_filing(who, category, type_)
        return
    with pytest.raises(Forbidden, match="outside its token's scopes") as info:
        agents.require_filing(who, category, type_)
    assert refused in str(info.value)


DEPLOYER = Principal("ci", agent=True, scopes=parse("components=cicd-master.deploy"))
WORKER = Principal("w", agent=True, scopes=parse("components=worker", worker=True))
NOT_WORKER = Principal("w2", agent=True, scopes=parse("components=*"))


@pytest.mark.parametrize(
    ("who", "component", "action", "refused"),
    [
        (DEPLOYER, "cicd-master", "deploy", None),
        (DEPLOYER, "cicd-master", "rollback", "components: cicd-master.deploy"),
        (DEPLOYER, "kubernetes", "scale", "components"),
        (BOT, "cicd-master", "deploy", "components: none"),
        (WORKER, "worker", "execute", None),
        (NOT_WORKER, "worker", "execute", "not a worker token"),
        (NOT_WORKER, "kubernetes", "scale", None),
        (PERSON, "worker", "execute", None),
        (READER, "cicd-master", "deploy", "read-only"),
    ],
)
def test_integrations_within_the_scopes(
    who: Principal, component: str, action: str, refused: str | None
) -> None:
    if refused is None:
        agents.require_integration(who, component, action)
        return
    with pytest.raises(Forbidden) as info:
        agents.require_integration(who, component, action)
    assert refused in str(info.value)


POLICY = Policy()  # AGENT_HUMAN_APPROVAL_LEVEL medium


@pytest.mark.parametrize(
    ("origin", "cap", "level", "needs"),
    [
        ("human", None, Level.CRITICAL, False),
        ("agent", None, Level.LOW, False),
        ("agent", None, Level.MEDIUM, True),
        ("agent", None, Level.HIGH, True),
        ("agent", Level.LOW, Level.LOW, False),
        ("agent", Level.LOW, Level.MEDIUM, True),
    ],
)
def test_when_an_agents_change_needs_a_person(
    origin: str, cap: Level | None, level: Level, needs: bool
) -> None:
    assert (agents.needs_person(change(origin, cap), level, POLICY) is not None) is needs


def test_the_level_is_configurable_and_the_token_cap_is_stricter() -> None:
    strict = Policy(agent_human_approval_level="low")
    assert agents.needs_person(change("agent"), Level.LOW, strict) is not None
    lax = Policy(agent_human_approval_level="critical")
    assert agents.needs_person(change("agent"), Level.HIGH, lax) is None
    assert agents.needs_person(change("agent", Level.MEDIUM), Level.HIGH, lax) is not None


@pytest.mark.parametrize(
    ("origin", "type_", "route", "level", "halted", "expected", "human"),
    [
        # nothing asks for a person: the route stands
        ("human", ChangeType.NORMAL, Route.AUTO_APPROVED, Level.LOW, None, Route.AUTO_APPROVED, False),
        ("agent", ChangeType.NORMAL, Route.AUTO_APPROVED, Level.LOW, None, Route.AUTO_APPROVED, False),
        # an agent at medium: a standard pre-approval goes to a person
        ("agent", ChangeType.STANDARD, Route.PRE_APPROVED, Level.MEDIUM, None, Route.TECHNICAL_LEAD, True),
        # a route that already has a person keeps its rank
        ("agent", ChangeType.NORMAL, Route.CAB, Level.HIGH, None, Route.CAB, False),
        # an agent's emergency: an ECAB member, not the emergency auto-approval
        ("agent", ChangeType.EMERGENCY, Route.EMERGENCY_CAB, Level.HIGH, None, Route.EMERGENCY_CAB, True),
        # the kill switch: nobody's change approves itself
        ("human", ChangeType.NORMAL, Route.AUTO_APPROVED, Level.LOW, "INC-7", Route.TECHNICAL_LEAD, True),
        ("human", ChangeType.STANDARD, Route.PRE_APPROVED, Level.LOW, "INC-7", Route.TECHNICAL_LEAD, True),
        ("human", ChangeType.EMERGENCY, Route.EMERGENCY_CAB, Level.LOW, "INC-7", Route.EMERGENCY_CAB, True),
    ],
)
def test_in_the_loop(
    origin: str,
    type_: ChangeType,
    route: Route,
    level: Level,
    halted: str | None,
    expected: Route,
    human: bool,
) -> None:
    c = change(origin, type=type_)
    got, why, person = agents.in_the_loop(c, route, "base", False, level, POLICY, halted)
    assert (got, person) == (expected, human)
    if halted:
        assert f"automation halted (freeze on: {halted})" in why
    if expected is not route:
        assert "a person approves" in why


@pytest.mark.parametrize(
    ("origin", "decider_agent", "components", "services", "refused"),
    [
        ("human", False, (), ["api"], None),
        ("agent", False, (), ["api"], None),  # a person decides an agent's change
        ("agent", True, (), ["api"], "agents never approve agents' changes"),
        ("human", True, (), ["api"], None),  # an agent holding the role, on a person's change
        ("human", True, ("api",), ["api"], "which reviewer-bot works on itself"),
        ("human", True, ("cicd-master.deploy",), ["cicd-master"], "works on itself"),
    ],
)
def test_who_may_decide(
    origin: str, decider_agent: bool, components: tuple[str, ...], services: list[str], refused: str | None
) -> None:
    c = change(origin, affected_services=services)
    if refused is None:
        agents.check_decider(c, "reviewer-bot", decider_agent, components, "approve")
        return
    with pytest.raises(ApprovalRefused) as info:
        agents.check_decider(c, "reviewer-bot", decider_agent, components, "approve")
    assert refused in str(info.value)
    assert "reviewer-bot may not approve RFC-1" in str(info.value)
