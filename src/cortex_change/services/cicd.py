"""Git and CI webhooks (CICD_AUTO_CHANGE, docs/devops.md): a signed GitHub or GitLab event files
one change — created, then assessed — once per delivery (the delivery id is the idempotency key,
so a redelivery files nothing new); a signed event that files nothing is audited as
`webhook_ignored` (and so counted by /metrics). Unsigned or wrongly signed requests write nothing.

The filer is `PROVIDER:REPOSITORY` acting as an **agent** (docs/agents.md): a person approves its
change at or above AGENT_HUMAN_APPROVAL_LEVEL, and no agent decides it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from ..domain import gitevents as git
from ..domain import validation as v
from ..domain.agents import Principal, Scopes
from ..domain.errors import Conflict, Refused, ValidationError
from ..domain.events import Event, EventKind
from ..domain.fields import ChangeRequest
from ..domain.lifecycle import State
from ..domain.model import Change, ChangeType
from ..domain.values import Value
from ..store import audit
from . import changes as svc
from .context import Context
from .tokens import Unauthenticated

# An automated filer files and integrates nothing else: its scopes are an agent's defaults.
FILER_SCOPES = Scopes(components=frozenset())
DELIVERY_MAX = 200  # the idempotency key's bound (as the API's Idempotency-Key header's)


class Provider(Value):
    """How a provider signs and names its events: the secret's key, the signature header's name,
    the check, the event header and the delivery id headers (the first one present is used)."""

    __slots__ = ("check", "deliveries", "event_header", "key", "signature_header")

    def __init__(
        self,
        key: str,
        signature_header: str,
        check: Callable[[str, bytes, str | None], bool],
        event_header: str,
        deliveries: tuple[str, ...],
    ) -> None:
        self.key = key
        self.signature_header = signature_header
        self.check = check
        self.event_header = event_header
        self.deliveries = deliveries


PROVIDERS: dict[str, Provider] = {
    git.GITHUB: Provider(
        "GITHUB_WEBHOOK_SECRET",
        "X-Hub-Signature-256",
        git.github_signed,
        "X-GitHub-Event",
        ("X-GitHub-Delivery",),
    ),
    git.GITLAB: Provider(
        "GITLAB_WEBHOOK_TOKEN",
        "X-Gitlab-Token",
        lambda secret, body, header: git.gitlab_signed(secret, header),
        "X-Gitlab-Event",
        # Idempotency-Key stays the same across GitLab's retries (17.4+); older ones send the event's UUID.
        ("Idempotency-Key", "X-Gitlab-Event-UUID"),
    ),
}


class Answer(Value):
    """What the hook answers: its HTTP status and body."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


def receive(ctx: Context, provider: str, headers: dict[str, str], body: bytes) -> Answer:
    """One webhook request: authenticated first (401, nothing written), then read (422 when a
    known event is malformed), then filed (201; 200 for a redelivery) or ignored (202, audited).
    `headers`: the request's, names in lower case."""
    p = PROVIDERS[provider]
    _authenticate(ctx, provider, p, headers, body)
    event = headers.get(p.event_header.lower(), "")
    if not event:
        raise ValidationError(p.event_header, "is missing: which event is this?")
    delivery = _delivery(p, headers)
    if not ctx.settings["CICD_AUTO_CHANGE"]:
        return _ignored(
            ctx, provider, event, delivery, git.Ignored("CICD_AUTO_CHANGE=false: no change is filed")
        )
    known = event in git.EVENTS[provider]  # an unknown event's body is not read: it is ignored
    parsed = git.parse(provider, event, delivery, _payload(headers, body) if known else None)
    if isinstance(parsed, git.Ignored):
        return _ignored(ctx, provider, event, delivery, parsed)
    decided = git.deciding(parsed)
    if isinstance(decided, git.Ignored):
        return _ignored(ctx, provider, event, delivery, decided)
    branch, key = decided
    kind = git.classify(ctx.settings[key], ctx.policy.categories, key)
    if kind is None:
        why = git.Ignored(f"{key}=none: branch {branch!r} files no change", parsed.repository)
        return _ignored(ctx, provider, event, delivery, why)
    return _file(ctx, parsed, kind, hashlib.sha256(body).hexdigest())


def _authenticate(ctx: Context, provider: str, p: Provider, headers: dict[str, str], body: bytes) -> None:
    secret: str = ctx.settings[p.key]
    if not secret:
        raise Unauthenticated(
            f"{provider} webhooks are not configured ({p.key} is empty): nothing is accepted"
        )
    if not p.check(secret, body, headers.get(p.signature_header.lower())):
        raise Unauthenticated(
            f"{p.signature_header} is missing or does not match {p.key}: nothing was accepted"
        )


def _delivery(p: Provider, headers: dict[str, str]) -> str:
    for name in p.deliveries:
        value = headers.get(name.lower())
        if value:
            return v.name(name, value, DELIVERY_MAX)
    raise ValidationError(p.deliveries[0], "is missing: the delivery id makes a redelivery file nothing new")


def _payload(headers: dict[str, str], body: bytes) -> Any:
    """The JSON payload: the body, or GitHub's form encoding (`payload=<JSON>`)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("body", "is not UTF-8 text") from None
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        from urllib.parse import parse_qs

        values = parse_qs(text).get("payload")
        if not values:
            raise ValidationError("body", "a form-encoded delivery holds no payload field")
        text = values[0]
    return v.json_text("body", text)


def _ignored(ctx: Context, provider: str, event: str, delivery: str, why: git.Ignored) -> Answer:
    """Audited (`webhook_ignored`, no change: /metrics counts it) and answered 202."""
    actor = f"{provider}:{why.repository}" if why.repository else provider
    details = {"provider": provider, "event": event[:100], "delivery": delivery, "reason": why.reason}
    with ctx.db.transaction() as tx:
        audit.append(
            tx, None, [Event(EventKind.WEBHOOK_IGNORED, actor[: v.IDENTITY_MAX], details)], ctx.clock()
        )
    return Answer(202, {"status": "ignored", "reason": why.reason, "delivery": delivery})


def _file(ctx: Context, event: git.GitEvent, kind: tuple[ChangeType, str], body_hash: str) -> Answer:
    """Create and assess the change as the repository's agent identity; a redelivery (the same
    delivery id) answers the change the first one filed, assessing it if that was cut short."""
    services = git.services_for(event.repository, ctx.settings.extra.get("repositories", {}))
    fields = git.request(event, kind, services)
    acting = ctx.acting(Principal(event.requester, agent=True, scopes=FILER_SCOPES))
    checked = ChangeRequest.of(fields, svc.limits(ctx.settings))
    once = svc.Idempotency(event.delivery, body_hash)
    change = svc.create_change(acting, checked, idempotency=once)
    if change.state is State.PENDING_ASSESSMENT:
        try:
            change = svc.assess_change(acting, change_id=change.change_id)
        except (Conflict, Refused):  # a concurrent redelivery assessed it first
            if not once.replayed:
                raise
            from .queries import change_and_trail

            change, _ = change_and_trail(ctx, change_id=change.change_id)
    return Answer(200 if once.replayed else 201, _filed(change, once.replayed, event.delivery))


def _filed(change: Change, replayed: bool, delivery: str) -> dict[str, Any]:
    a = change.assessment
    return {
        "status": "duplicate" if replayed else "filed",
        "delivery": delivery,
        "change_id": change.change_id,
        "state": change.state.value,
        "type": change.type.value,
        "category": change.category,
        "title": change.title,
        "requested_by": change.requested_by,
        "affected_services": list(change.affected_services),
        "route": None if a is None else a.route.value,
        "route_reason": None if a is None else a.route_reason,
    }
