"""Where a command's work is done: the local services on a store, or the server over HTTP.

`main.py` picks one per run (`CORTEX_CHANGE_URL` and `CORTEX_CHANGE_TOKEN`: the server); both
answer with the same values (a `Change`, SPEC §1 documents, rows), so the handlers render
exactly the same text either way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence

from ..domain.errors import NotFound, ValidationError
from . import inputs

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Protocol

    from ..config import Settings
    from ..domain.model import Change
    from ..domain.policy import Policy
    from ..services.context import Context
    from ..services.implementation import Progress
    from .remote import Client

URL_VAR, TOKEN_VAR = "CORTEX_CHANGE_URL", "CORTEX_CHANGE_TOKEN"
POLL_SECONDS = 1.0  # `implement --wait` in client mode reads the change this often
PICK_UP_SLACK = 30.0  # beyond WORKER_POLL_INTERVAL, for a worker to claim a queued change


class Verdict:
    """`audit verify`'s answer, locally or from the server."""

    __slots__ = ("checked", "head_hash", "ok", "problem")

    def __init__(self, ok: bool, checked: int, head_hash: str, problem: str = "") -> None:
        self.ok, self.checked, self.head_hash, self.problem = ok, checked, head_hash, problem


class Integrated:
    """`integrate`'s answer: the change it created or moved, and what was done, a line a step."""

    __slots__ = ("change_id", "steps")

    def __init__(self, change_id: str, steps: list[str] | None = None) -> None:
        self.change_id, self.steps = change_id, [] if steps is None else steps


if TYPE_CHECKING:  # annotations only: no typing.Protocol at run time

    class Gateway(Protocol):
        """The operations the CLI's lifecycle and query commands need."""

        @property
        def policy(self) -> Policy: ...

        def who(self, flag: str | None, named: str | None, field: str, default_os: bool) -> str | None:
            """The identity acting (`flag`: --as, `named`: a positional name); None means "the token's"."""
            ...

        def create(self, requested_by: str | None, fields: dict[str, Any]) -> Change: ...
        def update(self, change_id: str, actor: str | None, fields: dict[str, Any]) -> Change: ...
        def assess(
            self, change_id: str, reassess: bool, actor: str | None = None, reason: str | None = None
        ) -> Change: ...
        def approve(
            self, change_id: str, approver: str | None, reason: str, role: str | None
        ) -> tuple[Change, list[str]]: ...
        def reject(self, change_id: str, rejector: str | None, reason: str) -> Change: ...
        def implement(
            self, change_id: str, actor: str | None, wait: bool, resume: bool, progress: Progress | None
        ) -> Change: ...
        def close(self, change_id: str, status: str, notes: str, actor: str | None) -> Change: ...
        def cancel(self, change_id: str, actor: str | None, reason: str) -> Change: ...
        def review(self, change_id: str, reviewer: str | None, outcome: str, notes: str) -> Change: ...
        def show(self, change_id: str) -> dict[str, Any]: ...
        def listing(self, state: str | None, limit: int, before: str | None) -> list[dict[str, Any]]: ...
        def metrics(self, period: str) -> dict[str, Any]: ...
        def compliance_report(self, framework: str, period: str) -> dict[str, Any]: ...
        def integrate(
            self, component: str, action: str, args: Sequence[str], actor: str | None
        ) -> Integrated: ...
        def integrations(self) -> list[dict[str, Any]]: ...
        def models(self) -> dict[str, dict[str, Any]]: ...
        def audit_verify(self) -> Verdict: ...
        def overdue_reviews(self) -> list[dict[str, Any]]: ...
        def schedule(self, change_id: str, actor: str | None, start: str, end: str) -> Change: ...
        def gate(self, service: str, environment: str | None, change_id: str | None) -> dict[str, Any]: ...
        def whoami(self, flag: str | None) -> dict[str, Any]: ...
        def calendar(
            self, start: str | None, end: str | None, service: str | None, environment: str | None
        ) -> dict[str, Any]: ...


def _need(actor: str | None) -> str:
    assert actor is not None  # Local.who never answers None
    return actor


def catalog_rows(settings: Any) -> list[dict[str, Any]]:
    """The integration catalog as `integrations` lists it."""
    from ..catalog.loader import load_catalog

    catalog = load_catalog(settings)
    return [
        {
            "component": c,
            "action": name,
            "summary": t.summary,
            "type": t.type if not t.operation else None,
            "category": t.category if not t.operation else None,
            "model": t.model,
            "operation": t.operation,
        }
        for c, actions in sorted(catalog.templates.items())
        for name, t in sorted(actions.items())
    ]


class Local:
    """The services on the local store (the CLI's behaviour without a server)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def policy(self) -> Policy:
        return self.ctx.policy

    def who(self, flag: str | None, named: str | None, field: str, default_os: bool) -> str:
        return inputs.who(flag, named, field, default_os)

    def create(self, requested_by: str | None, fields: dict[str, Any]) -> Change:
        from ..domain.fields import ChangeRequest
        from ..services.changes import create_change, limits

        checked = ChangeRequest.of({**fields, "requested_by": _need(requested_by)}, limits(self.ctx.settings))
        return create_change(self.ctx, checked)

    def update(self, change_id: str, actor: str | None, fields: dict[str, Any]) -> Change:
        from ..services.changes import update_change

        return update_change(self.ctx, change_id=change_id, actor=_need(actor), fields=fields)

    def assess(
        self, change_id: str, reassess: bool, actor: str | None = None, reason: str | None = None
    ) -> Change:
        from ..services.changes import assess_change

        return assess_change(
            self.ctx, change_id=change_id, reassess=reassess, actor=actor, lower_reason=reason
        )

    def approve(
        self, change_id: str, approver: str | None, reason: str, role: str | None
    ) -> tuple[Change, list[str]]:
        from ..services.changes import approve_change

        return approve_change(
            self.ctx, change_id=change_id, approver=_need(approver), reason=reason, role=role
        )

    def reject(self, change_id: str, rejector: str | None, reason: str) -> Change:
        from ..services.changes import reject_change

        return reject_change(self.ctx, change_id=change_id, rejector=_need(rejector), reason=reason)

    def implement(
        self, change_id: str, actor: str | None, wait: bool, resume: bool, progress: Progress | None
    ) -> Change:
        from ..services.implementation import implement_change

        return implement_change(
            self.ctx, change_id=change_id, actor=_need(actor), wait=wait, resume=resume, progress=progress
        )

    def close(self, change_id: str, status: str, notes: str, actor: str | None) -> Change:
        from ..services.changes import close_change

        return close_change(self.ctx, change_id=change_id, status=status, notes=notes, actor=_need(actor))

    def cancel(self, change_id: str, actor: str | None, reason: str) -> Change:
        from ..services.changes import cancel_change

        return cancel_change(self.ctx, change_id=change_id, actor=_need(actor), reason=reason)

    def review(self, change_id: str, reviewer: str | None, outcome: str, notes: str) -> Change:
        from ..services.changes import review_change

        return review_change(
            self.ctx, change_id=change_id, reviewer=_need(reviewer), outcome=outcome, notes=notes
        )

    def show(self, change_id: str) -> dict[str, Any]:
        from ..services.queries import get_change

        return get_change(self.ctx, change_id=change_id)

    def listing(self, state: str | None, limit: int, before: str | None) -> list[dict[str, Any]]:
        from ..services.queries import list_changes

        return list_changes(self.ctx, state=state, limit=limit, before=before)

    def metrics(self, period: str) -> dict[str, Any]:
        from ..services.reports import metrics_report

        return metrics_report(self.ctx, period_text=period)

    def compliance_report(self, framework: str, period: str) -> dict[str, Any]:
        from ..services.compliance import compliance_report

        return compliance_report(self.ctx, framework=framework, period_text=period)

    def integrate(self, component: str, action: str, args: Sequence[str], actor: str | None) -> Integrated:
        from ..services.integrations import integrate

        outcome = integrate(self.ctx, component=component, action=action, args=args, actor=actor)
        return Integrated(outcome.change_id, outcome.steps)

    def integrations(self) -> list[dict[str, Any]]:
        return catalog_rows(self.ctx.settings)

    def models(self) -> dict[str, dict[str, Any]]:
        from ..catalog.loader import load_catalog

        return {name: m.document() for name, m in load_catalog(self.ctx.settings).models.items()}

    def audit_verify(self) -> Verdict:
        from ..services import audit

        v = audit.verify(self.ctx)
        return Verdict(v.ok, v.checked, v.head_hash, v.problem)

    def overdue_reviews(self) -> list[dict[str, Any]]:
        from ..services.reviews import overdue_reviews

        return overdue_reviews(self.ctx)

    def schedule(self, change_id: str, actor: str | None, start: str, end: str) -> Change:
        from ..services.changes import schedule_change

        return schedule_change(self.ctx, change_id=change_id, actor=_need(actor), start=start, end=end)

    def gate(self, service: str, environment: str | None, change_id: str | None) -> dict[str, Any]:
        from ..services.gate import gate

        return gate(self.ctx, service=service, environment=environment, change_id=change_id)

    def whoami(self, flag: str | None) -> dict[str, Any]:
        """The declared name, its kind by its tokens, unrestricted (the README's trust note)."""
        name = inputs.who(flag, None, "identity", True)
        assert name is not None
        with self.ctx.db.read() as tx:
            me = self.ctx.who(tx, name)
        return {"name": me.name, "agent": me.agent, "scopes": me.scopes.document()}

    def calendar(
        self, start: str | None, end: str | None, service: str | None, environment: str | None
    ) -> dict[str, Any]:
        from ..services.calendar import calendar_view

        return calendar_view(self.ctx, start=start, end=end, service=service, environment=environment)


class Remote:
    """The server's REST API, as the token's identity (`CORTEX_CHANGE_URL`, `CORTEX_CHANGE_TOKEN`)."""

    def __init__(self, client: Client, env: Mapping[str, str]) -> None:
        self.client = client
        self.env = env
        self._identity: str | None = None
        self.clock: Callable[[], float] = time.monotonic  # `implement --wait`'s polling (tests: fakes)
        self.sleep: Callable[[float], None] = time.sleep

    @property
    def policy(self) -> Policy:
        """The local configuration's policy: only `needs` lines read it (the CAB quorum)."""
        from ..config import load

        return load(self.env).policy()

    def identity(self) -> str:
        """The token's identity, asked of the server once (only when a name must be checked)."""
        from .remote import MissingRoute

        if self._identity is None:
            try:
                self._identity = str(self.client.get("/whoami")["name"])
            except (MissingRoute, NotFound):  # no path parameter: a 404 means an API without it
                self._identity = ""
        return self._identity

    def who(self, flag: str | None, named: str | None, field: str, default_os: bool) -> str | None:
        """A name given on the command line (positional or --as) must be the token's identity.

        CORTEX_CHANGE_USER and the OS user are not consulted: the server acts as the token's
        identity whatever they say.
        """
        inputs.given_empty(named, flag, field)
        if named and flag and named != flag:
            raise ValidationError(field, f"named twice, as {named!r} and --as {flag!r}")
        claimed = named or flag
        if not claimed:
            return None
        identity = self.identity()
        if not identity:
            raise ValidationError(
                field,
                f"cannot check {claimed!r} against the token's identity (the server at {self.client.url} "
                "has no /api/v1/whoami); the server acts as the token's identity: leave the name out",
            )
        if claimed != identity:
            raise ValidationError(
                field,
                f"{claimed!r} is not the identity of CORTEX_CHANGE_TOKEN ({identity!r}): the server at "
                f"{self.client.url} acts as the token's identity; name {identity!r} or leave the name out",
            )
        return claimed

    def _change(self, doc: Any) -> Change:
        from ..domain.codec import from_document

        change: Change = from_document(doc)
        return change

    def _transition(self, change_id: str, verb: str, body: dict[str, Any] | None = None) -> Change:
        from .remote import segment

        return self._change(self.client.post(f"/changes/{segment(change_id)}/{verb}", body))

    def create(self, requested_by: str | None, fields: dict[str, Any]) -> Change:
        return self._change(self.client.post("/changes", fields))

    def update(self, change_id: str, actor: str | None, fields: dict[str, Any]) -> Change:
        from .remote import segment

        doc, _ = self.client.call("PATCH", f"/changes/{segment(change_id)}", body=fields)
        return self._change(doc)

    def assess(
        self, change_id: str, reassess: bool, actor: str | None = None, reason: str | None = None
    ) -> Change:
        body: dict[str, Any] = {"reassess": reassess}
        if reason is not None:
            body["reason"] = reason
        return self._transition(change_id, "assess", body)

    def approve(
        self, change_id: str, approver: str | None, reason: str, role: str | None
    ) -> tuple[Change, list[str]]:
        from ..domain.workflow import documentation_warnings

        change = self._transition(change_id, "approve", {"reason": reason, "role": role})
        return change, documentation_warnings(change)

    def reject(self, change_id: str, rejector: str | None, reason: str) -> Change:
        return self._transition(change_id, "reject", {"reason": reason})

    def implement(
        self, change_id: str, actor: str | None, wait: bool, resume: bool, progress: Progress | None
    ) -> Change:
        """The server queues an executable plan for its workers (202) and records a text plan (200).

        `wait` then reads the change until it is closed or waits for people (`_follow`).
        """
        if resume:
            raise ValidationError(
                "implement", "--resume takes over a lease on the database: unset CORTEX_CHANGE_URL"
            )
        change = self._transition(change_id, "implement")
        return self._follow(change) if wait else change

    def _follow(self, change: Change) -> Change:
        """Poll GET /changes/ID, printing nothing, until it settles or `wait_bound` runs out."""
        from ..config import load
        from .remote import WaitExpired

        bound = wait_bound(change, load(self.env))
        deadline = self.clock() + bound
        while not settled(change):
            if self.clock() >= deadline:
                raise WaitExpired(
                    f"{change.change_id}: still {change.state.value} after waiting {bound:.0f}s (worker "
                    "pick-up, step timeouts, validation period, ROLLBACK_TIMEOUT): is a worker running "
                    f"(worker run)? Follow it with: show {change.change_id}"
                )
            self.sleep(POLL_SECONDS)
            change = self._change(self.show(change.change_id))
        return change

    def close(self, change_id: str, status: str, notes: str, actor: str | None) -> Change:
        return self._transition(change_id, "close", {"status": status, "notes": notes})

    def cancel(self, change_id: str, actor: str | None, reason: str) -> Change:
        return self._transition(change_id, "cancel", {"reason": reason})

    def review(self, change_id: str, reviewer: str | None, outcome: str, notes: str) -> Change:
        return self._transition(change_id, "review", {"outcome": outcome, "notes": notes})

    def show(self, change_id: str) -> dict[str, Any]:
        from .remote import segment

        doc: dict[str, Any] = self.client.get(f"/changes/{segment(change_id)}")
        return doc

    def listing(self, state: str | None, limit: int, before: str | None) -> list[dict[str, Any]]:
        if not 1 <= limit <= 1000:  # the local wording; the server's would name the query parameter
            raise ValidationError("limit", f"{limit} is out of range (1–1000)")
        page: list[dict[str, Any]] = self.client.get("/changes", state=state, limit=limit, before=before)[
            "items"
        ]
        return page

    def metrics(self, period: str) -> dict[str, Any]:
        report: dict[str, Any] = self.client.get("/metrics/report", period=period)
        return report

    def compliance_report(self, framework: str, period: str) -> dict[str, Any]:
        report: dict[str, Any] = self.client.get("/compliance/report", framework=framework, period=period)
        return report

    def integrate(self, component: str, action: str, args: Sequence[str], actor: str | None) -> Integrated:
        from .remote import segment

        path = f"/integrations/{segment(component)}/{segment(action)}"
        doc, headers = self.client.call("POST", path, body={"args": list(args)})
        return Integrated(doc["change_id"], _steps(self._change(doc), headers))

    def integrations(self) -> list[dict[str, Any]]:
        """The API has no catalog listing: the local configuration's catalog (see the README)."""
        from ..config import load

        return catalog_rows(load(self.env))

    def models(self) -> dict[str, dict[str, Any]]:
        return {m["name"]: m for m in self.client.get("/models")}

    def audit_verify(self) -> Verdict:
        v = self.client.get("/audit/verify")
        return Verdict(
            bool(v["ok"]), int(v["checked"]), str(v.get("head_hash") or ""), str(v.get("problem") or "")
        )

    def overdue_reviews(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.client.get("/reviews/overdue")
        return rows

    def schedule(self, change_id: str, actor: str | None, start: str, end: str) -> Change:
        return self._transition(change_id, "schedule", {"planned_start": start, "planned_end": end})

    def gate(self, service: str, environment: str | None, change_id: str | None) -> dict[str, Any]:
        given = {"service": service, "environment": environment, "change": change_id}
        verdict: dict[str, Any] = self.client.get("/gate", **{k: v for k, v in given.items() if v})
        return verdict

    def whoami(self, flag: str | None) -> dict[str, Any]:
        """The token's identity, kind and scopes, as the server sees them (`--as` must agree)."""
        self.who(flag, None, "identity", False)
        answer: dict[str, Any] = self.client.get("/whoami")
        return answer

    def calendar(
        self, start: str | None, end: str | None, service: str | None, environment: str | None
    ) -> dict[str, Any]:
        given = {"from": start, "to": end, "service": service, "environment": environment}
        view: dict[str, Any] = self.client.get(
            "/calendar", **{k: v for k, v in given.items() if v is not None}
        )
        return view


def settled(change: Change) -> bool:
    """Nothing left for `implement --wait` to wait for: ended, or implemented with steps for people."""
    from ..domain import plan
    from ..domain.lifecycle import TERMINAL, State

    if change.state in TERMINAL:
        return True
    automated = plan.is_automated(plan.steps("implementation_plan", change.implementation_plan))
    return change.state is State.IMPLEMENTED and not automated


def wait_bound(change: Change, settings: Settings) -> float:
    """Seconds a queued change may take: pick-up, its steps' timeouts, validation, rollback."""
    from ..domain import plan

    most = float(settings["STEP_TIMEOUT_MAX"])  # a runbook's timeout is in the server's catalog
    steps = plan.steps("implementation_plan", change.implementation_plan)
    running = sum(
        s.timeout if isinstance(s, (plan.RunStep, plan.HttpStep)) else most
        for s in steps
        if not isinstance(s, plan.TextStep)
    )
    defaults = plan.Defaults(
        period=float(settings["VALIDATION_PERIOD"]), interval=float(settings["HEALTH_CHECK_INTERVAL"])
    )
    spec = plan.validation_spec(change.validation, defaults)
    pick_up = float(settings["WORKER_POLL_INTERVAL"]) + PICK_UP_SLACK
    return pick_up + running + spec.period + spec.interval + float(settings["ROLLBACK_TIMEOUT"])


def _steps(change: Change, headers: Mapping[str, str]) -> list[str]:
    """What the server did: its lines in X-Cortex-Steps (a JSON list, ASCII-escaped)."""
    raw = next((v for k, v in headers.items() if k.lower() == "x-cortex-steps"), "")
    try:
        lines = json.loads(raw)
    except ValueError:
        lines = None
    if not isinstance(lines, list) or not lines:
        return [f"{change.change_id}: state {change.state.value}"]
    return [str(line) for line in lines]


def from_environment(env: Mapping[str, str]) -> Remote | None:
    """The server named by CORTEX_CHANGE_URL (with CORTEX_CHANGE_TOKEN), or None: work locally."""
    url = env.get(URL_VAR, "").strip()
    if not url:
        return None
    token = env.get(TOKEN_VAR, "").strip()
    if not token:
        raise ValidationError(
            TOKEN_VAR,
            f"not set; {URL_VAR} names a server, which needs a token (cortex-change token create NAME, "
            "run where the server's store is)",
        )
    if not all("!" <= ch <= "~" for ch in token):  # it goes into a header: never echo it
        raise ValidationError(
            TOKEN_VAR,
            "is not a token: printable ASCII only, without spaces or line breaks (its value is not shown)",
        )
    from .remote import Client

    return Remote(Client(url, token), env)


def model_document(models: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    if name not in models:
        raise NotFound(f"no standard model {name!r}; known: {', '.join(sorted(models))}")
    return models[name]
