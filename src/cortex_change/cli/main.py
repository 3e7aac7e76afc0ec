"""`cortex-change`: the seed's verbs with the seed's positional arguments."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..domain.errors import Conflict, CortexError, NotFound, Refused, ValidationError
from ..services.context import Context, open_context
from . import render

EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_STORE = 0, 1, 2, 3, 4, 5
EXIT_CODES = """exit codes:
  0  ok
  1  refused by a rule (state, role, segregation of duties, documentation)
  2  bad input (unknown type, category, state; empty or over-long fields; bad JSON)
  3  not found (unknown change id)
  4  conflict (another writer changed the change first; nothing was written)
  5  the database or the output could not be used (I/O error)"""


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _json_arg(field: str, value: str) -> Any:
    """Inline JSON, `@file`, or the path of a JSON file."""
    text = value
    path = value[1:] if value.startswith("@") else value
    if value.startswith("@") or (not value.lstrip().startswith(("{", "[")) and Path(path).is_file()):
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(field, f"cannot read {path!r}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            field, f"malformed JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    # The seed's Best Practices wrap a plan in its own name: {"rollback_plan": {...}}.
    if isinstance(data, dict) and list(data) == [field]:
        data = data[field]
    return data


DETAIL_KEYS = {
    "implementation_plan",
    "rollback_plan",
    "test_plan",
    "affected_services",
    "affected_cis",
    "dependencies",
    "environment",
    "tested_in_staging",
    "impact",
    "urgency",
}


def _details(value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    data = _json_arg("details", value)
    if not isinstance(data, dict):
        raise ValidationError("details", "must be a JSON object")
    unknown = sorted(set(data) - DETAIL_KEYS)
    if unknown:
        raise ValidationError(
            "details", f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(DETAIL_KEYS))}"
        )
    return data


def _params(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; numbers become numbers so range conditions can compare them."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError("param", f"{pair!r} is not KEY=VALUE")
        number: Any = value
        for kind in (int, float):
            try:
                number = kind(value)
                break
            except ValueError:
                continue
        out[key] = number
    return out


def _who(args: argparse.Namespace, named: str | None, field: str, default_os: bool) -> str:
    """The identity rules are checked against: positional, --as, CORTEX_CHANGE_USER, OS user."""
    flag = getattr(args, "as_", None)
    if named and flag and named != flag:
        raise ValidationError(field, f"named twice, as {named!r} and --as {flag!r}")
    who = named or flag or os.environ.get("CORTEX_CHANGE_USER")
    if not who and default_os:
        who = getpass.getuser()
    if not who:
        raise ValidationError(field, f"name the {field} (argument, --as or CORTEX_CHANGE_USER)")
    return who


def _person_and_text(args: argparse.Namespace, field: str, n: int) -> tuple[str, list[str]]:
    """Split `[PERSON] TEXT...` where the person may come from --as instead."""
    rest: list[str] = args.rest
    if len(rest) == n + 1:
        return _who(args, rest[0], field, False), rest[1:]
    if len(rest) == n:
        return _who(args, None, field, False), rest
    raise ValidationError(field, f"expected {field.upper()} and {n} more argument(s), got {len(rest)}")


# --- commands -------------------------------------------------------------------------------


def cmd_create(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import create_change

    details = _details(a.details)
    requester = _who(a, a.requester_pos or a.requester, "requested_by", True)
    plans = {
        k: _json_arg(k, v)
        for k, v in (
            ("implementation_plan", a.implementation_plan),
            ("rollback_plan", a.rollback_plan),
            ("test_plan", a.test_plan),
        )
        if v is not None
    }
    fields = {**details, **plans}
    for key, value in (
        ("impact", a.impact_pos or a.impact),
        ("urgency", a.urgency_pos or a.urgency),
        ("environment", a.environment),
        ("tested_in_staging", a.tested_in_staging),
    ):
        if value is not None:
            fields[key] = value
    for key, values in (
        ("affected_services", a.service),
        ("affected_cis", a.ci),
        ("dependencies", a.dependency),
    ):
        if values:
            fields[key] = [*fields.get(key, []), *values]
    fields.setdefault("impact", "medium")
    fields.setdefault("urgency", "medium")
    if a.model:
        fields["standard_model"] = a.model
    if a.param:
        fields["parameters"] = _params(a.param)
    change = create_change(
        ctx,
        type=a.type,
        category=a.category,
        title=a.title,
        description=a.description or "",
        requested_by=requester,
        **fields,
    )
    print(
        f"created {change.change_id}: {change.type.value} {change.category}, "
        f"requested by {change.requested_by}; state {change.state.value}",
        file=sys.stderr,
    )
    print(change.change_id)
    return EXIT_OK


def cmd_update(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import update_change

    fields = _details(a.details)
    for key in ("title", "description", "impact", "urgency", "environment", "tested_in_staging"):
        if getattr(a, key) is not None:
            fields[key] = getattr(a, key)
    for key, opt in (
        ("implementation_plan", a.implementation_plan),
        ("rollback_plan", a.rollback_plan),
        ("test_plan", a.test_plan),
    ):
        if opt is not None:
            fields[key] = _json_arg(key, opt)
    for key, values in (
        ("affected_services", a.service),
        ("affected_cis", a.ci),
        ("dependencies", a.dependency),
    ):
        if values is not None:
            fields[key] = values
    if not fields:
        raise ValidationError("update", "name at least one field to change (see update --help)")
    change = update_change(ctx, change_id=a.change_id, actor=_who(a, None, "actor", True), fields=fields)
    print(f"{change.change_id} updated; state {change.state.value}")
    if change.assessment and change.timeline.assessed_at:
        print(render.assessment(change, ctx.policy))
    return EXIT_OK


def cmd_assess(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import assess_change

    change = assess_change(ctx, change_id=a.change_id, reassess=a.reassess)
    print(render.assessment(change, ctx.policy))
    return EXIT_OK


def cmd_approve(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import approve_change

    approver, (reason,) = _person_and_text(a, "approver", 1)
    change, warnings = approve_change(
        ctx, change_id=a.change_id, approver=approver, reason=reason, role=a.role
    )
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(render.vote(change, approver, ctx.policy))
    return EXIT_OK


def cmd_reject(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import reject_change

    rejector, (reason,) = _person_and_text(a, "rejector", 1)
    change = reject_change(ctx, change_id=a.change_id, rejector=rejector, reason=reason)
    print(render.vote(change, rejector, ctx.policy))
    return EXIT_OK


def cmd_implement(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import implement_change

    change = implement_change(ctx, change_id=a.change_id, actor=_who(a, None, "actor", True))
    steps = (change.implementation_plan or {}).get("steps", [])
    print(
        f"{change.change_id} implementation recorded ({len(steps)} plan step(s)); "
        f"state {change.state.value}; report the outcome with: close {change.change_id} STATUS NOTES"
    )
    return EXIT_OK


def cmd_close(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import close_change

    change = close_change(
        ctx, change_id=a.change_id, status=a.status, notes=a.notes or "", actor=_who(a, None, "actor", True)
    )
    print(f"{change.change_id} closed {change.closure_status.value if change.closure_status else ''}")
    return EXIT_OK


def cmd_cancel(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import cancel_change

    change = cancel_change(
        ctx, change_id=a.change_id, actor=_who(a, None, "actor", True), reason=a.reason or ""
    )
    print(f"{change.change_id} cancelled")
    return EXIT_OK


def cmd_review(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import review_change

    reviewer, (outcome, notes) = _person_and_text(a, "reviewer", 2)
    change = review_change(ctx, change_id=a.change_id, reviewer=reviewer, outcome=outcome, notes=notes)
    r = change.review
    assert r is not None and r.outcome is not None
    late = " (after the due time)" if r.reviewed_at and r.reviewed_at > r.due_at else ""
    print(f"{change.change_id} review recorded: {r.outcome.value} by {reviewer}{late}")
    return EXIT_OK


def cmd_show(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import get_change

    print(render.as_json(get_change(ctx, change_id=a.change_id)))
    return EXIT_OK


def cmd_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.changes import list_changes

    rows = list_changes(ctx, state=a.state, limit=a.limit, before=a.before)
    if a.json:
        print(render.as_json(rows))
    else:
        print(render.table(rows))
    return EXIT_OK


def cmd_metrics(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.reports import metrics_report

    report = metrics_report(ctx, period_text=a.period)
    print(render.as_json(report) if a.json else render.metrics(report))
    return EXIT_OK


def cmd_audit_verify(ctx: Context | None, a: argparse.Namespace) -> int:
    from ..services import audit

    if a.export:
        verdict = audit.verify_export(a.export)
    else:
        assert ctx is not None
        verdict = audit.verify(ctx)
    if verdict.ok:
        print(f"audit chain intact: {verdict.checked} events verified; head {verdict.head_hash}")
        return EXIT_OK
    print(f"audit chain BROKEN after {verdict.checked} good events: {verdict.problem}", file=sys.stderr)
    return EXIT_REFUSED


def cmd_audit_log(ctx: Context, a: argparse.Namespace) -> int:
    from ..services import audit

    for text in audit.log(ctx, day=a.date or audit.today(ctx)):
        print(text)
    return EXIT_OK


def cmd_audit_export(ctx: Context, a: argparse.Namespace) -> int:
    from ..services import audit

    result = audit.export(ctx, directory=a.dir, all_events=a.all)
    print(f"exported {result['events']} events over {len(result['days'])} day(s) to {result['directory']}")
    return EXIT_OK


def cmd_config_show(ctx: Context, a: argparse.Namespace) -> int:
    from ..config import describe

    rows = describe(ctx.settings)
    print(render.as_json(rows) if a.json else render.config_rows(rows))
    return EXIT_OK


def cmd_integrate(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.integrations import integrate

    outcome = integrate(ctx, component=a.component, action=a.action, args=a.rest, actor=a.as_)
    for step in outcome.steps:
        print(step, file=sys.stderr)
    print(outcome.change_id)
    return EXIT_OK


def cmd_integrations(ctx: Context, a: argparse.Namespace) -> int:
    from ..catalog.loader import load_catalog

    catalog = load_catalog(ctx.settings)
    rows = [
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
    if a.json:
        print(render.as_json(rows))
    else:
        for r in rows:
            kind = (
                f"acts on a change ({r['operation']})" if r["operation"] else f"{r['type']} {r['category']}"
            )
            model = f", model {r['model']}" if r["model"] else ""
            print(f"{r['component']:<20}{r['action']:<22}{kind}{model}: {r['summary']}")
    return EXIT_OK


def cmd_models_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..catalog.loader import load_catalog

    models = load_catalog(ctx.settings).models
    rows = [render.model(m) for _, m in sorted(models.items())]
    if a.json:
        print(render.as_json(rows))
    else:
        for r in rows:
            state = "enabled " if r["enabled"] else "disabled"
            print(f"{r['name']:<16}{state}  {r['rule']}  (otherwise: {r['otherwise']})")
    return EXIT_OK


def cmd_models_show(ctx: Context, a: argparse.Namespace) -> int:
    from ..catalog.loader import load_catalog

    models = load_catalog(ctx.settings).models
    if a.name not in models:
        raise NotFound(f"no standard model {a.name!r}; known: {', '.join(sorted(models))}")
    print(render.as_json(render.model(models[a.name])))
    return EXIT_OK


# --- parser ---------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--as",
        dest="as_",
        metavar="NAME",
        help="the identity acting (default: CORTEX_CHANGE_USER, else the OS user)",
    )


def _fields(p: argparse.ArgumentParser, update: bool) -> None:
    if update:
        p.add_argument("--title")
        p.add_argument("--description")
    levels = ["low", "medium", "high", "critical"]
    p.add_argument("--impact", metavar="|".join(levels))
    p.add_argument("--urgency", metavar="|".join(levels))
    p.add_argument("--service", action="append", metavar="NAME", help="affected service (repeat)")
    p.add_argument("--ci", action="append", metavar="NAME", help="affected configuration item (repeat)")
    p.add_argument("--dependency", action="append", metavar="NAME", help="dependency (repeat)")
    p.add_argument("--implementation-plan", metavar="JSON|@FILE")
    p.add_argument("--rollback-plan", metavar="JSON|@FILE")
    p.add_argument("--test-plan", metavar="JSON|@FILE")
    p.add_argument("--environment", metavar="NAME", help="e.g. staging, production")
    p.add_argument("--tested-in-staging", metavar="CHANGE_ID")
    p.add_argument(
        "--details",
        metavar="JSON|@FILE",
        help="several fields at once, e.g. the seed's Best Practices document",
    )


Handler = Callable[[Any, argparse.Namespace], int]


Adder = Callable[[str, Handler, str], argparse.ArgumentParser]


def build_parser() -> Parser:
    root = Parser(
        prog="cortex-change",
        description="ITIL 4 change management.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument(
        "--db",
        metavar="PATH",
        help="database file (default: CORTEX_CHANGE_DB, else ~/.local/share/cortex-change/cortex-change.db)",
    )
    sub = root.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=handler)
        return p

    _lifecycle_commands(add)
    _query_commands(add)
    _integration_commands(add)
    _admin_commands(add)
    return root


def _lifecycle_commands(add: Adder) -> None:
    p = add("create", cmd_create, "file a request for change; prints its id as the last line")
    p.add_argument("type", metavar="TYPE", help="standard | normal | emergency")
    p.add_argument("category", metavar="CATEGORY", help="deployment, security, infrastructure, ...")
    p.add_argument("title", metavar="TITLE")
    p.add_argument("description", metavar="DESCRIPTION", nargs="?")
    p.add_argument("requester_pos", metavar="REQUESTER", nargs="?")
    p.add_argument("impact_pos", metavar="IMPACT", nargs="?")
    p.add_argument("urgency_pos", metavar="URGENCY", nargs="?")
    p.add_argument("--requester", metavar="NAME")
    p.add_argument("--model", metavar="NAME", help="the standard change model a standard change follows")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a model parameter (repeat)")
    _fields(p, update=False)
    _common(p)

    p = add("update", cmd_update, "change descriptive fields before approval (re-assesses)")
    p.add_argument("change_id", metavar="ID")
    _fields(p, update=True)
    _common(p)

    p = add("assess", cmd_assess, "score the change's risk and route it for approval")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("--reassess", action="store_true", help="assess again (keeps the old one in the trail)")

    for name, handler, person in (("approve", cmd_approve, "APPROVER"), ("reject", cmd_reject, "REJECTOR")):
        p = add(name, handler, f"{name} a change: {name} ID {person} REASON")
        p.add_argument("change_id", metavar="ID")
        p.add_argument("rest", metavar=f"[{person}] REASON", nargs="+")
        if name == "approve":
            p.add_argument("--role", help="count this approval under one role (cab, ciso, cto, ...)")
        _common(p)

    p = add("implement", cmd_implement, "record the implementation of an approved change")
    p.add_argument("change_id", metavar="ID")
    _common(p)

    p = add("close", cmd_close, "close an implemented change: successful | failed | rolled_back")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("status", metavar="STATUS")
    p.add_argument("notes", metavar="NOTES", nargs="?")
    _common(p)

    p = add("cancel", cmd_cancel, "cancel a change that is not yet implementing")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("reason", metavar="REASON", nargs="?")
    _common(p)

    p = add(
        "review",
        cmd_review,
        "record an emergency change's retrospective review: review ID REVIEWER accepted|concerns NOTES",
    )
    p.add_argument("change_id", metavar="ID")
    p.add_argument("rest", metavar="[REVIEWER] OUTCOME NOTES", nargs="+")
    _common(p)


def _query_commands(add: Adder) -> None:
    p = add("show", cmd_show, "print a change as JSON (with audit trail and compliance)")
    p.add_argument("change_id", metavar="ID")

    p = add("list", cmd_list, "list changes, newest first")
    p.add_argument(
        "state",
        metavar="STATE",
        nargs="?",
        help="a state or a group: pending, approved, rejected, implemented, closed",
    )
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--before", metavar="ID", help="the page after this change id")
    p.add_argument("--json", action="store_true")

    p = add("metrics", cmd_metrics, "KPIs beside their targets for a period")
    p.add_argument(
        "period",
        metavar="PERIOD",
        nargs="?",
        default="today",
        help="today | week | month | 'YYYY-MM-DD to YYYY-MM-DD'",
    )
    p.add_argument("--json", action="store_true")


def _integration_commands(add: Adder) -> None:
    p = add(
        "integrate",
        cmd_integrate,
        "create a change from the integration catalog: integrate COMPONENT ACTION DETAILS "
        "(or act on one: integrate worker WORKER_ID ACTION ID); prints the change id last",
    )
    p.add_argument("component", metavar="COMPONENT")
    p.add_argument("action", metavar="ACTION")
    p.add_argument("rest", metavar="DETAILS", nargs="*", help="free text or a JSON object")
    _common(p)

    p = add("integrations", cmd_integrations, "list the integration catalog (components and actions)")
    p.add_argument("--json", action="store_true")

    models = add("models", _missing_sub, "list or show the standard change models")
    models_sub = models.add_subparsers(
        dest="models_command", metavar="ACTION", required=True, parser_class=Parser
    )
    p = models_sub.add_parser("list", help="every model: enabled or not, its condition")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models_list)
    p = models_sub.add_parser("show", help="one model in full, as JSON")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=cmd_models_show)


def _admin_commands(add: Adder) -> None:
    audit = add("audit", _missing_sub, "verify, print or export the audit trail")
    audit_sub = audit.add_subparsers(
        dest="audit_command", metavar="ACTION", required=True, parser_class=Parser
    )
    p = audit_sub.add_parser("verify", help="re-walk the hash chain; exit 1 naming the first broken event")
    p.add_argument("--export", metavar="DIR", help="verify an exported chain without the database")
    p.set_defaults(handler=cmd_audit_verify)
    p = audit_sub.add_parser("log", help="one day's events: TIMESTAMP | CHANGE_ID | ACTION | ACTOR | DETAILS")
    p.add_argument("date", metavar="DATE", nargs="?", help="YYYY-MM-DD (default today)")
    p.set_defaults(handler=cmd_audit_log)
    p = audit_sub.add_parser("export", help="write audit/YYYY-MM-DD.log files and a verifiable chain")
    p.add_argument("--dir", required=True)
    p.add_argument("--all", action="store_true", help="every event, not only AUDIT_RETENTION_DAYS")
    p.set_defaults(handler=cmd_audit_export)

    cfg = add("config", _missing_sub, "show the effective configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True, parser_class=Parser)
    p = cfg_sub.add_parser("show", help="every key: value, where it came from, in effect or not")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_config_show)


def _missing_sub(ctx: Context, a: argparse.Namespace) -> int:  # pragma: no cover
    raise ValidationError("command", "an action is required")


def _exit_code(exc: CortexError) -> int:
    from ..store.db import StoreError

    for kind, code in (
        (ValidationError, EXIT_BAD_INPUT),
        (NotFound, EXIT_NOT_FOUND),
        (Conflict, EXIT_CONFLICT),
        (Refused, EXIT_REFUSED),
        (StoreError, EXIT_STORE),
    ):
        if isinstance(exc, kind):
            return code
    return EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error is one line on stderr and an exit code."""
    args = build_parser().parse_args(argv)
    env = dict(os.environ)
    if args.db:
        env["CORTEX_CHANGE_DB"] = args.db
    ctx: Context | None = None
    try:
        if not (args.handler is cmd_audit_verify and args.export):
            ctx = open_context(env)
        code: int = args.handler(ctx, args)
        return code
    except CortexError as exc:
        message = " ".join(str(exc).split("\n"))
        print(f"cortex-change: {message}", file=sys.stderr)
        return _exit_code(exc)
    except BrokenPipeError:  # e.g. `list | head`
        sys.stderr.close()  # nothing more can be written; keep Python from complaining at exit
        return EXIT_OK
    except OSError as exc:  # e.g. stdout is a full disk
        print(f"cortex-change: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_STORE
    finally:
        if ctx is not None:
            ctx.close()


if __name__ == "__main__":
    sys.exit(main())
