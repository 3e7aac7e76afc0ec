"""One handler per command: read the arguments, call a service, render the result."""

from __future__ import annotations

import argparse
import os
import sys

from ..domain.errors import MissingPackage, ValidationError
from . import inputs, render
from .exits import EXIT_OK, EXIT_REFUSED
from .gateway import Verdict, model_document
from .registry import OVERDUE

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from ..domain.model import Change
    from ..services.context import Context
    from .gateway import Gateway


def _json_max(a: argparse.Namespace) -> int:
    """PLAN_JSON_MAX, read from the configuration only when the command has a JSON argument."""
    given = (a.details, a.implementation_plan, a.rollback_plan, a.test_plan, a.validation)
    return inputs.json_max(a.env) if any(v is not None for v in given) else inputs.PLAN_JSON_MAX


def cmd_create(gw: Gateway, a: argparse.Namespace) -> int:
    most = _json_max(a)
    details = inputs.details(a.details, most)
    requester = gw.who(a.as_, _given(a.requested_by_pos, a.requested_by), "requested_by", True)
    change = gw.create(requester, inputs.fields_given(a, most, details, append=True))
    print(
        render.escape(
            f"created {change.change_id}: {change.type.value} {change.category}, "
            f"requested by {change.requested_by}; state {change.state.value}"
        ),
        file=sys.stderr,
    )
    print(change.change_id)
    return EXIT_OK


def _given(positional: str | None, option: str | None) -> str | None:
    """The positional value, else the option's: a value given empty stays empty (and is refused)."""
    return positional if positional is not None else option


def cmd_update(gw: Gateway, a: argparse.Namespace) -> int:
    most = _json_max(a)
    fields = inputs.fields_given(a, most, inputs.details(a.details, most), append=False)
    if not fields:
        raise ValidationError("update", "name at least one field to change (see update --help)")
    change = gw.update(a.change_id, gw.who(a.as_, None, "actor", True), fields)
    print(f"{change.change_id} updated; state {change.state.value}")
    if change.assessment and change.timeline.assessed_at:
        print(render.assessment(change, gw.policy))
    return EXIT_OK


def cmd_assess(gw: Gateway, a: argparse.Namespace) -> int:
    actor = gw.who(a.as_, None, "actor", True) if a.reason is not None else None
    change = gw.assess(a.change_id, a.reassess, actor, a.reason)
    print(render.assessment(change, gw.policy))
    return EXIT_OK


def cmd_approve(gw: Gateway, a: argparse.Namespace) -> int:
    approver, (reason,) = inputs.person_and_text(a.rest, a.as_, "approver", 1, gw.who)
    change, warnings = gw.approve(a.change_id, approver, reason, a.role)
    for warning in warnings:
        print(f"warning: {render.escape(warning)}", file=sys.stderr)
    print(render.vote(change, approver or change.approvals[-1].approver, gw.policy))
    return EXIT_OK


def cmd_reject(gw: Gateway, a: argparse.Namespace) -> int:
    rejector, (reason,) = inputs.person_and_text(a.rest, a.as_, "rejector", 1, gw.who)
    change = gw.reject(a.change_id, rejector, reason)
    print(render.vote(change, rejector or change.approvals[-1].approver, gw.policy))
    return EXIT_OK


def cmd_implement(gw: Gateway, a: argparse.Namespace) -> int:
    progress = _progress if sys.stderr.isatty() else None
    change = gw.implement(a.change_id, gw.who(a.as_, None, "actor", True), a.wait, a.resume, progress)
    print(f"{change.change_id}: {implement_outcome(change)}")
    from ..domain.model import ClosureStatus

    failed = change.closure_status in (ClosureStatus.FAILED, ClosureStatus.ROLLED_BACK)
    if failed or (a.wait and change.closure_status is not ClosureStatus.SUCCESSFUL):
        return EXIT_REFUSED
    return EXIT_OK


def _progress(n: int, total: int, what: str, elapsed: float) -> None:
    shown = render.escape(" ".join(what.split())[:100])
    print(f"[{n}/{total} +{elapsed:.1f}s] {shown}", file=sys.stderr, flush=True)


def implement_outcome(change: Change) -> str:
    """One line on where the implementation left the change and what is asked next."""
    from ..domain.lifecycle import State

    if change.state is State.CLOSED and change.closure_status is not None:
        return f"closed {change.closure_status.value}: {render.escape(change.closure_notes)}"
    if change.state is State.IMPLEMENTED:
        return f"implemented; {_next_step(change)}"
    if change.state is State.APPROVED:  # the server queued it (202): its workers run the plan
        return "queued for the workers (worker run carries it out)"
    return f"state {change.state.value}"


def _next_step(change: Change) -> str:
    from ..domain import plan

    if plan.is_automated(plan.steps("implementation_plan", change.implementation_plan)):
        return "validation runs in the worker (worker run), or use implement --wait"
    return f"report the outcome with: close {change.change_id} STATUS NOTES"


def cmd_close(gw: Gateway, a: argparse.Namespace) -> int:
    change = gw.close(a.change_id, a.status, a.notes or "", gw.who(a.as_, None, "actor", True))
    print(f"{change.change_id} closed {change.closure_status.value if change.closure_status else ''}")
    return EXIT_OK


def cmd_cancel(gw: Gateway, a: argparse.Namespace) -> int:
    change = gw.cancel(a.change_id, gw.who(a.as_, None, "actor", True), a.reason)
    print(f"{change.change_id} cancelled")
    return EXIT_OK


def cmd_schedule(gw: Gateway, a: argparse.Namespace) -> int:
    change = gw.schedule(a.change_id, gw.who(a.as_, None, "actor", True), a.start, a.end)
    start, end = (change.planned_start, change.planned_end)
    window = f"{start:%Y-%m-%dT%H:%M:%SZ} to {end:%Y-%m-%dT%H:%M:%SZ}" if start and end else "no window"
    print(f"{change.change_id} planned for {window}; state {change.state.value}")
    return EXIT_OK


def cmd_whoami(gw: Gateway, a: argparse.Namespace) -> int:
    """Who the rules take you for: the token's identity (client mode) or the declared name."""
    me = gw.whoami(a.as_)
    if a.json:
        print(render.as_json(me))
        return EXIT_OK
    kind = "an agent" if me["agent"] else "a person"
    from ..domain.agents import describe

    print(render.escape(f"{me['name']} ({kind}); scopes: {describe(me['scopes'])}"))
    return EXIT_OK


def cmd_gate(gw: Gateway, a: argparse.Namespace) -> int:
    """Exit 0 when a deploy may go ahead now (naming the change), 1 when not (each reason)."""
    verdict = gw.gate(a.service, a.environment, a.change)
    if a.json:
        print(render.as_json(verdict))
    elif verdict["allowed"]:
        why = "; ".join(verdict["reasons"])  # CHANGE_MGMT_ENABLED=false: allowed, and why
        print(render.escape(f"deploy allowed: {verdict['change_id'] or why} ({verdict['at']})"))
        if verdict["change_id"] and why:
            print(render.escape(f"deploy allowed: {why}"))
    else:
        for reason in verdict["reasons"]:
            print(render.escape(f"deploy refused: {reason}"))
    return EXIT_OK if verdict["allowed"] else EXIT_REFUSED


# What `wait --for` waits for, and the states from which it can no longer come.
WAIT_FOR = {
    "approved": ({"approved", "implementing", "implemented", "closed"}, {"rejected", "cancelled"}),
    "implemented": ({"implemented", "closed"}, {"rejected", "cancelled"}),
    "closed": ({"closed"}, {"rejected", "cancelled"}),
}


def cmd_wait(gw: Gateway, a: argparse.Namespace) -> int:
    """Poll a change until it reaches a state (exit 0), cannot any more (exit 1), or the timeout
    passes (exit 1): for a pipeline that filed a change and waits for its approval."""
    import time

    from ..domain.plan import duration

    timeout, interval = duration("--timeout", a.timeout), duration("--interval", a.interval)
    reached, dead = WAIT_FOR[a.for_]
    deadline = time.monotonic() + timeout
    while True:
        state = gw.show(a.change_id)["state"]
        if state in reached:
            print(f"{a.change_id} is {state}")
            return EXIT_OK
        if state in dead:
            print(f"{a.change_id} is {state}: it will not be {a.for_}")
            return EXIT_REFUSED
        if time.monotonic() + interval > deadline:
            print(f"{a.change_id} is still {state} after {a.timeout}: timed out waiting for {a.for_}")
            return EXIT_REFUSED
        time.sleep(interval)


def cmd_review(gw: Gateway, a: argparse.Namespace) -> int:
    if a.change_id == OVERDUE:
        return _overdue_reviews(gw, a)
    if a.json:
        raise ValidationError("--json", f"goes with `review {OVERDUE}` (a review prints one line)")
    reviewer, (outcome, notes) = inputs.person_and_text(a.rest, a.as_, "reviewer", 2, gw.who)
    change = gw.review(a.change_id, reviewer, outcome, notes)
    r = change.review
    assert r is not None and r.outcome is not None
    reviewer = reviewer or r.reviewer
    late = " (after the due time)" if r.reviewed_at and r.reviewed_at > r.due_at else ""
    print(f"{change.change_id} review recorded: {r.outcome.value} by {render.escape(reviewer)}{late}")
    return EXIT_OK


def _overdue_reviews(gw: Gateway, a: argparse.Namespace) -> int:
    """`review overdue`: emergency changes whose retrospective review is past due (SPEC §5)."""
    if a.rest or a.as_ is not None:
        raise ValidationError("review", f"`review {OVERDUE}` takes no other argument than --json")
    rows = gw.overdue_reviews()
    print(render.as_json(rows) if a.json else render.overdue_reviews(rows))
    return EXIT_OK


def cmd_show(gw: Gateway, a: argparse.Namespace) -> int:
    print(render.as_json(gw.show(a.change_id)))
    return EXIT_OK


def cmd_list(gw: Gateway, a: argparse.Namespace) -> int:
    rows = gw.listing(a.state, a.limit, a.before)
    if a.json:
        print(render.as_json(rows))
    else:
        print(render.table(rows))
    return EXIT_OK


def cmd_metrics(gw: Gateway, a: argparse.Namespace) -> int:
    if a.period == "push":
        return _metrics_push(gw)
    report = gw.metrics(a.period)
    print(render.as_json(report) if a.json else render.metrics(report))
    return EXIT_OK


def _metrics_push(gw: Gateway) -> int:
    """`metrics push`: the store's figures and today's KPIs to the Pushgateway (local store only)."""
    from .gateway import URL_VAR, Local

    if not isinstance(gw, Local):
        raise ValidationError(
            URL_VAR, "metrics push reads the store itself: run it where the store is (--db or unset it)"
        )
    try:
        from ..services import telemetry
    except ImportError as exc:
        raise MissingPackage("metrics push", exc.name or "prometheus-client", "worker") from None
    print(render.escape(telemetry.push(gw.ctx)))
    return EXIT_OK


def cmd_compliance_report(gw: Gateway, a: argparse.Namespace) -> int:
    """Exit 0 whenever the report is produced: failing controls are its content, not an error."""
    from . import render_compliance

    report = gw.compliance_report(a.framework, a.period)
    if a.format == "text":
        print(render_compliance.text(report))
        return EXIT_OK
    if not report["audit_chain"]["ok"]:
        print(f"cortex-change: warning: {render_compliance.chain_line(report)}", file=sys.stderr)
    if a.format == "json":
        print(render.as_json(report))
    else:
        sys.stdout.write(render_compliance.as_csv(report))
    return EXIT_OK


def cmd_audit_verify(gw: Gateway | None, a: argparse.Namespace) -> int:
    if a.checkpoints:  # signed checkpoints (docs/checkpoints.md)
        from . import checkpoints

        return checkpoints.verify(gw, a)
    if a.export:
        from ..services import audit

        v = audit.verify_export(a.export)
        verdict = Verdict(v.ok, v.checked, v.head_hash, v.problem)
    else:
        assert gw is not None
        verdict = gw.audit_verify()
    if verdict.ok:
        print(
            f"audit chain intact: {verdict.checked} events verified; head {render.escape(verdict.head_hash)}"
        )
        return EXIT_OK
    problem = render.escape(verdict.problem)
    print(f"audit chain BROKEN after {verdict.checked} good events: {problem}", file=sys.stderr)
    return EXIT_REFUSED


def cmd_audit_log(ctx: Context, a: argparse.Namespace) -> int:
    from ..services import audit

    for text in audit.log(ctx, day=audit.today(ctx) if a.date is None else a.date):
        print(render.escape(text))  # the details' JSON stays JSON
    return EXIT_OK


def cmd_audit_export(ctx: Context, a: argparse.Namespace) -> int:
    from ..services import audit

    result = audit.export(ctx, directory=a.dir, all_events=a.all)
    where = render.escape(result["directory"])
    print(f"exported {result['events']} events over {len(result['days'])} day(s) to {where}")
    return EXIT_OK


def cmd_config_show(ctx: Context | None, a: argparse.Namespace) -> int:
    from ..config import describe, load

    rows = describe(load(a.env))
    print(render.as_json(rows) if a.json else render.config_rows(rows))
    if not a.json:
        print(_kill_switch(a.env))
    return EXIT_OK


def _kill_switch(env: dict[str, str]) -> str:
    """The kill switch's line, read from the store if there is one (config show opens none else)."""
    from ..domain.errors import CortexError
    from ..services.automation import status
    from ..services.context import open_context
    from .automation import line

    try:
        ctx = open_context(env, create=False)
    except CortexError:
        return "automation: no store yet (kill switch off)"
    try:
        return line(status(ctx))
    finally:
        ctx.close()


def cmd_integrate(gw: Gateway, a: argparse.Namespace) -> int:
    actor = gw.who(a.as_, None, "actor", False) if a.as_ is not None else None
    outcome = gw.integrate(a.component, a.action, a.rest, actor)
    for step in outcome.steps:
        print(render.escape(step), file=sys.stderr)
    print(outcome.change_id)
    return EXIT_OK


def cmd_integrations(gw: Gateway, a: argparse.Namespace) -> int:
    rows = gw.integrations()
    if a.json:
        print(render.as_json(rows))
    else:
        for r in rows:
            kind = (
                f"acts on a change ({r['operation']})" if r["operation"] else f"{r['type']} {r['category']}"
            )
            model = f", model {r['model']}" if r["model"] else ""
            print(render.escape(f"{r['component']:<20}{r['action']:<22}{kind}{model}: {r['summary']}"))
    return EXIT_OK


def cmd_models_list(gw: Gateway, a: argparse.Namespace) -> int:
    rows = [m for _, m in sorted(gw.models().items())]
    if a.json:
        print(render.as_json(rows))
    else:
        for r in rows:
            state = "enabled " if r["enabled"] else "disabled"
            print(render.escape(f"{r['name']:<16}{state}  {r['rule']}  (otherwise: {r['otherwise']})"))
    return EXIT_OK


def cmd_models_show(gw: Gateway, a: argparse.Namespace) -> int:
    print(render.as_json(model_document(gw.models(), a.name)))
    return EXIT_OK


def cmd_token_create(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.tokens import create_token

    token_id, token = create_token(
        ctx,
        name=a.name,
        agent=a.agent,
        scopes=a.scope,
        read_only=a.read_only,
        worker=a.worker,
        expires=a.expires,
    )
    name = render.escape(a.name)
    kind = "agent " if a.agent else ""
    print(
        f"token {token_id} for {kind}{name}; shown once, store it now (only its hash is kept)",
        file=sys.stderr,
    )
    print(token)
    return EXIT_OK


def cmd_token_rotate(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.tokens import rotate_token

    new_id, token, until = rotate_token(ctx, token_id=a.token_id, grace=a.grace)
    old = render.escape(a.token_id)
    print(
        f"token {new_id} replaces {old} (which works until {until}); shown once, store it now",
        file=sys.stderr,
    )
    print(token)
    return EXIT_OK


def cmd_token_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..domain.agents import describe
    from ..services.tokens import list_tokens

    rows = list_tokens(ctx)
    if a.json:
        print(render.as_json(rows))
    else:
        for r in rows:
            state = f"revoked {r['revoked_at']}" if r["revoked_at"] else r["state"]
            if r["state"] in ("rotating", "rotated out"):
                state += f" (until {r['retires_at']})"
            elif r["expires_at"] and r["state"] == "active":
                state += f" (expires {r['expires_at']})"
            kind = "agent" if r["agent"] else "person"
            scopes = "" if r["scopes"] is None else "  " + describe(r["scopes"])
            print(
                render.escape(
                    f"{r['token_id']}  {r['name']}  {kind}  created {r['created_at']}  {state}{scopes}"
                )
            )
    return EXIT_OK


def cmd_token_revoke(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.tokens import revoke_token

    revoke_token(ctx, token_id=a.token_id)
    print(f"token {render.escape(a.token_id)} revoked")
    return EXIT_OK


def cmd_serve(ctx: Context | None, a: argparse.Namespace) -> int:
    try:
        import httptools  # noqa: F401  (the protocol that bounds request heads is built on it)
        import uvicorn
    except ImportError as exc:
        raise MissingPackage("serve", exc.name or "uvicorn", "server") from None
    from ..config import load

    load(a.env)  # fail on bad configuration before binding the port
    os.environ.update({k: v for k, v in a.env.items() if k == "CORTEX_CHANGE_DB"})
    shown = f"[{a.host}]" if ":" in a.host else a.host
    print(
        f"cortex-change portal: http://{shown}:{a.port}/ (sign in with an identity and its API token); "
        f"API: http://{shown}:{a.port}/api/v1",
        flush=True,
    )
    uvicorn.run(
        "cortex_change.api.app:create_app",
        factory=True,
        # httptools with a bound on the request head: an endless header is refused as it arrives
        http="cortex_change.api.protocol:LimitedHttpToolsProtocol",
        host=a.host,
        port=a.port,
        workers=a.workers,
        log_level=a.log_level,
        access_log=a.access_log,
    )
    return EXIT_OK
