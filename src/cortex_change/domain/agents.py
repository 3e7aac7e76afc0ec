"""Autonomous agents as agents (docs/agents.md): who acts (`Principal`), what a token allows
(`Scopes`), and the human-in-the-loop rules. Pure: the services read tokens and the kill switch
from the store and ask these functions."""

from __future__ import annotations

from . import validation
from .errors import ApprovalRefused, Forbidden, ValidationError
from .model import LEVELS, Change, ChangeType, Level, Route
from .policy import Policy
from .routing import RANK
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping
    from typing import Any, Final

HUMAN = "human"
AGENT = "agent"
ANY = "*"
WORKER_COMPONENT = "worker"  # `integrate worker …`: the worker protocol, for `worker` tokens only
RATE_MAX = 1_000_000


class Scopes(Frozen):
    """What a token allows. A list of None allows anything; an empty one allows nothing.

    `components`: the integrations it may use (`COMPONENT` or `COMPONENT.ACTION`, `*` for all);
    `categories`, `types`: what it may file; `max_level`: the highest risk level it may file
    without a person co-signing (None: AGENT_HUMAN_APPROVAL_LEVEL alone decides); `read_only`:
    reads only; `worker`: may carry out changes through the worker protocol; `rate`: requests a
    minute (None: RATE_LIMIT_PER_MINUTE)."""

    __slots__ = ("categories", "components", "max_level", "rate", "read_only", "types", "worker")

    def __init__(
        self,
        components: frozenset[str] | None = None,
        categories: frozenset[str] | None = None,
        types: frozenset[ChangeType] | None = None,
        max_level: Level | None = None,
        read_only: bool = False,
        worker: bool = False,
        rate: int | None = None,
    ) -> None:
        self.components: Final = components
        self.categories: Final = categories
        self.types: Final = types
        self.max_level: Final = max_level
        self.read_only: Final = read_only
        self.worker: Final = worker
        self.rate: Final = rate

    def document(self) -> dict[str, Any]:
        """As stored and shown (`whoami`, `token list`): lists sorted, absent keys allow anything."""
        out: dict[str, Any] = {}
        for key in ("categories", "components", "types"):  # the order the store keeps (sorted)
            value = getattr(self, key)
            if value is not None:
                out[key] = sorted(str(v) for v in value)
        if self.max_level is not None:
            out["max_level"] = self.max_level.value
        if self.rate is not None:
            out["rate"] = self.rate
        out["read_only"] = self.read_only
        out["worker"] = self.worker
        return out

    @classmethod
    def of_document(cls, doc: Mapping[str, Any]) -> Scopes:
        def listed(key: str) -> frozenset[str] | None:
            return None if key not in doc else frozenset(doc[key])

        types = listed("types")
        level = doc.get("max_level")
        return cls(
            components=listed("components"),
            categories=listed("categories"),
            types=None if types is None else frozenset(ChangeType(t) for t in types),
            max_level=None if level is None else Level(level),
            read_only=bool(doc.get("read_only", False)),
            worker=bool(doc.get("worker", False)),
            rate=doc.get("rate"),
        )


def describe(doc: Mapping[str, Any]) -> str:
    """A scopes document in one line, as `token list`, `whoami` and the portal show it:
    `categories=deployment components=none max-level=low worker` (absent keys: any)."""
    flags = ("read_only", "worker")
    parts = [
        f"{k.replace('_', '-')}={(','.join(v) or 'none') if isinstance(v, list) else v}"
        for k, v in doc.items()
        if k not in flags
    ]
    parts += [k.replace("_", "-") for k in flags if doc.get(k)]
    return " ".join(parts) or "unrestricted"


UNRESTRICTED = Scopes()
AGENT_DEFAULT = Scopes(components=frozenset())  # an agent integrates nothing it was not given


class Principal(Frozen):
    """Who acts: the identity's name, whether it is an agent, and the scopes of the token used
    (unrestricted for the local CLI on the store's host: the README's trust note)."""

    __slots__ = ("agent", "name", "scopes", "token_id")

    def __init__(
        self, name: str, agent: bool = False, scopes: Scopes = UNRESTRICTED, token_id: str | None = None
    ) -> None:
        self.name: Final = name
        self.agent: Final = agent
        self.scopes: Final = scopes
        self.token_id: Final = token_id

    @property
    def origin(self) -> str:
        return AGENT if self.agent else HUMAN


SCOPE_KEYS = ("components", "categories", "types", "max-level", "rate")


def parse_scopes(
    specs: Iterable[str],
    *,
    agent: bool,
    read_only: bool,
    worker: bool,
    components: Mapping[str, Collection[str]],
    categories: Collection[str],
) -> Scopes:
    """`KEY=VALUE[,VALUE…]` specs (`--scope`) into scopes, each value checked against what exists:
    `components` maps every integration component to its actions, `categories` the policy's."""
    given: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        key = key.strip()
        if not sep or key not in SCOPE_KEYS:
            raise ValidationError(
                "scope",
                f"{spec!r} is not a scope like categories=deployment,security; "
                f"scopes: {', '.join(SCOPE_KEYS)}",
            )
        if key in given:
            raise ValidationError("scope", f"{key} given twice; list its values once, comma-separated")
        values = [v.strip() for v in value.split(",") if v.strip()]
        if not values:
            raise ValidationError("scope", f"{key}= names nothing; list at least one value")
        given[key] = values
    base = AGENT_DEFAULT if agent else UNRESTRICTED
    comps = base.components
    if "components" in given:
        comps = frozenset(_component(c, components) for c in given["components"])
    cats = None
    if "categories" in given:
        cats = frozenset(_known("category", c, categories) for c in given["categories"])
    types = None
    if "types" in given:
        types = frozenset(validation.choice("scope types", t, ChangeType) for t in given["types"])
    level = None
    if "max-level" in given:
        if len(given["max-level"]) != 1:
            raise ValidationError("scope", "max-level takes one level: low, medium, high or critical")
        level = validation.choice("scope max-level", given["max-level"][0], Level)
    rate = None
    if "rate" in given:
        text = given["rate"][0]
        if len(given["rate"]) != 1 or not text.isdigit() or not 1 <= int(text) <= RATE_MAX:
            raise ValidationError("scope", f"rate= takes one number of requests a minute, 1..{RATE_MAX}")
        rate = int(text)
    return Scopes(comps, cats, types, level, read_only, worker, rate)


def _known(what: str, value: str, allowed: Collection[str]) -> str:
    if value not in allowed:
        raise ValidationError("scope", f"unknown {what} {value!r}; known: {', '.join(sorted(allowed))}")
    return value


def _component(value: str, components: Mapping[str, Collection[str]]) -> str:
    if value == ANY:
        return value
    name, dot, action = value.partition(".")
    if name not in components:
        raise ValidationError(
            "scope", f"unknown component {name!r}; known: {', '.join(sorted(components))} (or *)"
        )
    if dot and action not in components[name]:
        known = ", ".join(sorted(components[name]))
        raise ValidationError("scope", f"{name} has no action {action!r}; known: {known}")
    return value


# ---- what a token may do ------------------------------------------------------------------------


def _refuse(who: Principal, what: str, scope: str) -> Forbidden:
    return Forbidden(f"{who.name} may not {what}: outside its token's scopes ({scope})")


def require_write(who: Principal, what: str) -> None:
    """A read-only token reads, nothing else."""
    if who.scopes.read_only:
        raise _refuse(who, what, "read-only")


def require_filing(who: Principal, category: str, type: ChangeType) -> None:
    """May `who` file a change of this category and type?"""
    require_write(who, "file changes")
    s = who.scopes
    if s.categories is not None and category not in s.categories:
        allowed = ", ".join(sorted(s.categories)) or "none"
        raise _refuse(who, f"file {category} changes", f"categories: {allowed}")
    if s.types is not None and type not in s.types:
        allowed = ", ".join(sorted(t.value for t in s.types)) or "none"
        raise _refuse(who, f"file {type.value} changes", f"types: {allowed}")


def require_integration(who: Principal, component: str, action: str) -> None:
    """May `who` use `integrate COMPONENT ACTION`? The worker protocol needs the worker scope."""
    require_write(who, f"integrate {component} {action}")
    s = who.scopes
    if component == WORKER_COMPONENT and who.agent and not s.worker:
        raise _refuse(who, f"integrate {component} {action}", "not a worker token: --worker")
    if s.components is None or ANY in s.components:
        return
    if component in s.components or f"{component}.{action}" in s.components:
        return
    allowed = ", ".join(sorted(s.components)) or "none"
    raise _refuse(who, f"integrate {component} {action}", f"components: {allowed}")


# ---- human in the loop --------------------------------------------------------------------------


def needs_person(change: Change, level: Level, policy: Policy) -> str | None:
    """Why an agent's change at `level` needs a person's approval, or None."""
    if change.origin != AGENT:
        return None
    floor = policy.agent_human_approval_level
    if LEVELS.index(level) >= LEVELS.index(floor):
        return f"filed by an agent at {level.value} risk (AGENT_HUMAN_APPROVAL_LEVEL={floor.value})"
    cap = change.agent_max_level
    if cap is not None and LEVELS.index(level) > LEVELS.index(cap):
        return f"filed by an agent at {level.value} risk, above its token's max-level {cap.value}"
    return None


def in_the_loop(
    change: Change, route: Route, why: str, human: bool, level: Level, policy: Policy, halted: str | None
) -> tuple[Route, str, bool]:
    """Raise a route no person decides when change management is disabled (CHANGE_MGMT_ENABLED),
    the kill switch is on (`halted`: its reason) or an agent filed the change at a level that needs
    a person. An emergency keeps its route and needs an ECAB member; any other route of no person
    becomes technical-lead."""
    reasons = []
    if not policy.change_management:
        reasons.append("change management disabled (CHANGE_MGMT_ENABLED=false): nothing approves by itself")
    if halted is not None:
        reasons.append(f"automation halted (freeze on: {halted})")
    person = needs_person(change, level, policy)
    if person is not None:
        reasons.append(person)
    if not reasons:
        return route, why, human
    because = "; ".join(reasons)
    if change.type is ChangeType.EMERGENCY:
        return route, f"{why}; {because}: an ECAB member approves", True
    if RANK[route] == 0:
        return Route.TECHNICAL_LEAD, f"{why}; {because}: a person approves (technical lead)", True
    return route, f"{why}; {because}", human


def check_decider(change: Change, person: str, agent: bool, components: Collection[str], verb: str) -> None:
    """An agent never approves, rejects or reviews an agent's change, nor one touching the
    components it works on itself (its token's components scope)."""
    if not agent:
        return
    if change.origin == AGENT:
        raise ApprovalRefused(
            f"{person} may not {verb} {change.change_id}: {person} is an agent and the change was filed "
            f"by an agent ({change.requested_by}); a person decides (agents never approve agents' changes)"
        )
    mine = {c.partition(".")[0] for c in components}
    own = sorted(mine & {*change.affected_services, *change.affected_cis, change.requested_by})
    if own:
        raise ApprovalRefused(
            f"{person} may not {verb} {change.change_id}: it touches {', '.join(own)}, "
            f"which {person} works on itself (its token's components scope)"
        )
