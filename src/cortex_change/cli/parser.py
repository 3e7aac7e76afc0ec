"""The command line's grammar: the seed's verbs with the seed's positional arguments."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ..domain.errors import ValidationError
from .exits import EXIT_BAD_INPUT, EXIT_CODES
from .registry import (
    automation,
    backup,
    calendar,
    checkpoints,
    cmdb,
    commands,
    k8s,
    mcp,
    moving,
    observations,
    operations,
    pir,
    policy,
    portability,
    risk,
    windows,
)
from .render import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2, and no `shutil` at start-up."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {escape(message)} (see {self.prog} --help)\n")

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse's formatter asks `shutil.get_terminal_size` for the width, and `add_argument`
        # builds one for every argument: `import shutil` (with zlib, bz2, lzma) costs ~2 ms of each
        # command's start-up. The same rule without it: COLUMNS, else the terminal, else 80.
        make: Callable[..., argparse.HelpFormatter] = self.formatter_class  # typeshed omits `width`
        return make(prog=self.prog, width=_terminal_width() - 2)


def _terminal_width() -> int:
    """What `shutil.get_terminal_size().columns` answers, without importing shutil."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _common(p: Declared) -> None:
    p.add_argument(
        "--as",
        dest="as_",
        metavar="NAME",
        help="the identity acting (default: CORTEX_CHANGE_USER, else the OS user)",
    )


def _fields(p: Declared, command: str) -> None:
    """create's or update's fields, from the field table (domain/fields.py): create's positional
    arguments (the seed's grammar), then the options of the fields only create takes, then those
    of the fields update may change."""
    if isinstance(p, _Unused):  # another command runs: spare the import below
        return
    from ..domain.fields import FIELDS

    if command == "create":
        for f in FIELDS.values():
            if f.cli.positional is not None:
                optional = not f.required or (f.cli.option is not None and command in f.cli.commands)
                p.add_argument(
                    f"{f.name}_pos",
                    metavar=f.cli.positional,
                    help=f.cli.positional_help,
                    nargs="?" if optional else None,
                )
    offered = [f for f in FIELDS.values() if command in f.cli.commands]
    for f in sorted(offered, key=lambda f: f.updatable):  # stable: table order within each group
        if f.cli.option is None:
            continue
        if f.cli.repeat:
            p.add_argument(f.cli.option, dest=f.name, metavar=f.cli.metavar, help=f.cli.help, action="append")
        else:
            p.add_argument(f.cli.option, dest=f.name, metavar=f.cli.metavar, help=f.cli.help)
    p.add_argument(
        "--details",
        metavar="JSON|@FILE",
        help="several fields at once, e.g. the seed's Best Practices document",
    )


class _Unused:
    """Stands in for the parsers of commands not being run: whatever is declared on it is dropped."""

    def __getattr__(self, name: str) -> Callable[..., _Unused]:
        return lambda *args, **kwargs: self


if TYPE_CHECKING:
    Handler = Callable[[Any, argparse.Namespace], int]
    # What declares a command's arguments: its parser, or the stand-in when another command runs.
    Declared = argparse.ArgumentParser | _Unused
    Adder = Callable[[str, Handler, str], Declared]


COMMANDS = (
    "create",
    "update",
    "assess",
    "approve",
    "reject",
    "implement",
    "rollback",
    "close",
    "cancel",
    "schedule",
    "gate",
    "wait",
    "whoami",
    "review",
    "show",
    "list",
    "metrics",
    "compliance",
    "integrate",
    "integrations",
    "models",
    "audit",
    "config",
    "token",
    "serve",
    "mcp",
    "worker",
    "incidents",
    "outbox",
    "cab",
    "cmdb",
    "windows",
    "freeze",
    "risk",
    "policy",
    "observe",
    "observations",
    "k8s",
    "calendar",
    "backup",
    "restore",
    "export",
    "migrate-store",
    "import",
    "pir",
)


def command_word(argv: Sequence[str]) -> str | None:
    """The command a command line runs, when it names a known one (`--db PATH` may come first)."""
    args = list(argv)
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option == "--db" and args:
            args.pop(0)
        elif not option.startswith("--db="):
            return None
    return args[0] if args and args[0] in COMMANDS else None


def build_parser(only: str | None = None) -> Parser:
    """The whole grammar, or with `only`, just that command's (each parser costs start-up time)."""
    root = Parser(
        prog="cortex-change",
        description="ITIL 4 change management.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument(
        "--db",
        type=_nonempty,
        metavar="PATH",
        help="database file (default: CORTEX_CHANGE_DB, else ~/.local/share/cortex-change/cortex-change.db)",
    )
    sub = root.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)

    def add(name: str, handler: Handler, help_text: str) -> Declared:
        if only is not None and name != only:
            return _Unused()
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
    _compliance_commands(add)
    _integration_commands(add)
    _admin_commands(add)
    _operations_commands(add)
    _cmdb_commands(add)
    _windows_commands(add)
    _freeze_commands(add)
    _risk_commands(add)
    _policy_commands(add)
    _calendar_commands(add)
    _k8s_commands(add)
    _backup_commands(add)
    _portability_commands(add)
    _moving_commands(add)
    _pir_commands(add)
    return root


def _lifecycle_commands(add: Adder) -> None:
    p = add("create", commands.cmd_create, "file a request for change; prints its id as the last line")
    _fields(p, "create")
    _common(p)

    p = add("update", commands.cmd_update, "change descriptive fields before approval (re-assesses)")
    p.add_argument("change_id", metavar="ID")
    _fields(p, "update")
    _common(p)

    p = add("assess", commands.cmd_assess, "score the change's risk and route it for approval")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("--reassess", action="store_true", help="assess again (keeps the old one in the trail)")
    p.add_argument(
        "--reason",
        metavar="TEXT",
        help="with --reassess: a CHANGE_MANAGERS member lets the route fall below the highest reached",
    )
    _common(p)

    for name, handler, person in (
        ("approve", commands.cmd_approve, "APPROVER"),
        ("reject", commands.cmd_reject, "REJECTOR"),
    ):
        p = add(name, handler, f"{name} a change: {name} ID {person} REASON")
        p.add_argument("change_id", metavar="ID")
        p.add_argument("rest", metavar=f"[{person}] REASON", nargs="+")
        if name == "approve":
            p.add_argument("--role", help="count this approval under one role (cab, ciso, cto, ...)")
        _common(p)

    p = add(
        "implement",
        commands.cmd_implement,
        "carry out an approved change's plan: executable steps run, text steps wait for people",
    )
    p.add_argument("change_id", metavar="ID")
    p.add_argument(
        "--wait",
        action="store_true",
        help="validate in the foreground too (client mode: follow the server's workers); "
        "exit 0 only if it closed successful",
    )
    p.add_argument(
        "--resume", action="store_true", help="take over an implementing change whose lease expired"
    )
    _common(p)

    p = add("rollback", operations.cmd_rollback, "roll back an implementing or implemented change now")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("reason", metavar="REASON")
    _common(p)

    p = add("close", commands.cmd_close, "close an implemented change: successful | failed | rolled_back")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("status", metavar="STATUS")
    p.add_argument("notes", metavar="NOTES", nargs="?")
    _common(p)

    p = add("cancel", commands.cmd_cancel, "cancel a change that is not yet implementing: cancel ID REASON")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("reason", metavar="REASON")
    _common(p)

    _pipeline_commands(add)
    _review_command(add)


def _pipeline_commands(add: Adder) -> None:
    """schedule, gate, wait: what a pipeline uses (docs/pipelines.md)."""
    p = add(
        "schedule",
        commands.cmd_schedule,
        "plan the window a change may be carried out in: schedule ID START END (ISO 8601); an approved "
        "change is approved again for the new window",
    )
    p.add_argument("change_id", metavar="ID")
    p.add_argument("start", metavar="START", help="e.g. 2026-12-01T22:00:00+01:00")
    p.add_argument("end", metavar="END")
    _common(p)

    p = add(
        "gate",
        commands.cmd_gate,
        "may a deploy go ahead now? exit 0 naming the change that allows it, 1 with each reason, "
        "5 when the store or server cannot be reached (docs/pipelines.md)",
    )
    p.add_argument("--service", required=True, type=_nonempty)
    p.add_argument("--env", dest="environment", metavar="ENVIRONMENT", help="the environment deployed to")
    p.add_argument("--change", metavar="ID", help="ask about this change only")
    p.add_argument("--json", action="store_true")

    p = add(
        "whoami",
        commands.cmd_whoami,
        "who the rules take you for: the token's identity, kind and scopes (client mode), or the "
        "declared name (--as, CORTEX_CHANGE_USER) and its kind",
    )
    p.add_argument("--json", action="store_true")
    _common(p)

    p = add(
        "wait",
        commands.cmd_wait,
        "wait until a change is approved, implemented or closed: exit 0 when it is, 1 when it "
        "cannot be any more (rejected, cancelled) or the timeout passes",
    )
    p.add_argument("change_id", metavar="ID")
    p.add_argument("--for", dest="for_", required=True, choices=["approved", "implemented", "closed"])
    p.add_argument("--timeout", default="30m", help="e.g. 30s, 10m, 1h (default 30m)")
    p.add_argument("--interval", default="5s", help="how often to look (default 5s)")


def _review_command(add: Adder) -> None:
    """`review ID [REVIEWER] OUTCOME NOTES` records one; `review overdue` lists those past due."""
    p = add(
        "review",
        commands.cmd_review,
        "record an emergency change's retrospective review: review ID REVIEWER accepted|concerns NOTES; "
        "or list the reviews past due: review overdue [--json]",
    )
    # A change id is RFC-…, never the word `overdue`: the first argument tells the two apart.
    p.add_argument("change_id", metavar="ID|overdue")
    p.add_argument("rest", metavar="[REVIEWER] OUTCOME NOTES", nargs="*")
    p.add_argument("--json", action="store_true", help="with overdue: the list as JSON")
    _common(p)


def _query_commands(add: Adder) -> None:
    p = add("show", commands.cmd_show, "print a change as JSON (with audit trail and compliance)")
    p.add_argument("change_id", metavar="ID")

    p = add("list", commands.cmd_list, "list changes, newest first")
    p.add_argument(
        "state",
        metavar="STATE",
        nargs="?",
        help="a state or a group: pending, approved, rejected, implemented, closed",
    )
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--before", metavar="ID", help="the page after this change id")
    p.add_argument("--json", action="store_true")

    p = add(
        "metrics",
        commands.cmd_metrics,
        "KPIs beside their targets for a period; `metrics push` sends them to the Pushgateway",
    )
    p.add_argument(
        "period",
        metavar="PERIOD",
        nargs="?",
        default="today",
        help="today | week | month | 'YYYY-MM-DD to YYYY-MM-DD'; or push (PROMETHEUS_PUSHGATEWAY)",
    )
    p.add_argument("--json", action="store_true")


def _integration_commands(add: Adder) -> None:
    p = add(
        "integrate",
        commands.cmd_integrate,
        "create a change from the integration catalog: integrate COMPONENT ACTION DETAILS "
        "(or act on one: integrate worker WORKER_ID ACTION ID); prints the change id last",
    )
    p.add_argument("component", metavar="COMPONENT")
    p.add_argument("action", metavar="ACTION")
    p.add_argument("rest", metavar="DETAILS", nargs="*", help="free text or a JSON object")
    _common(p)

    p = add(
        "integrations", commands.cmd_integrations, "list the integration catalog (components and actions)"
    )
    p.add_argument("--json", action="store_true")

    models = add("models", _missing_sub, "list or show the standard change models")
    models_sub = _actions(models, "models_command")
    p = models_sub.add_parser("list", help="every model: enabled or not, its condition")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=commands.cmd_models_list)
    p = models_sub.add_parser("show", help="one model in full, as JSON")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=commands.cmd_models_show)


def _admin_commands(add: Adder) -> None:
    audit = add("audit", _missing_sub, "verify, print or export the audit trail")
    audit_sub = _actions(audit, "audit_command")
    p = audit_sub.add_parser("verify", help="re-walk the hash chain; exit 1 naming the first broken event")
    p.add_argument("--export", metavar="DIR", help="verify an exported chain without the database")
    p.add_argument(
        "--checkpoints",
        action="append",
        metavar="FILE|DIR",
        help="prove the chain extends these signed checkpoints: a witness file, a folder of them, "
        "or an export (repeatable; docs/checkpoints.md)",
    )
    p.add_argument(
        "--key", action="append", metavar="PUBFILE", help="trust only this public key (repeatable)"
    )
    p.set_defaults(handler=commands.cmd_audit_verify)
    p = audit_sub.add_parser("log", help="one day's events: TIMESTAMP | CHANGE_ID | ACTION | ACTOR | DETAILS")
    p.add_argument("date", metavar="DATE", nargs="?", help="YYYY-MM-DD (default today)")
    p.set_defaults(handler=commands.cmd_audit_log)
    p = audit_sub.add_parser("export", help="write audit/YYYY-MM-DD.log files and a verifiable chain")
    p.add_argument("--dir", required=True)
    p.add_argument("--all", action="store_true", help="every event, not only AUDIT_RETENTION_DAYS")
    p.set_defaults(handler=commands.cmd_audit_export)
    _checkpoint_commands(audit_sub)

    token = add("token", _missing_sub, "API tokens: create NAME (printed once), list, rotate ID, revoke ID")
    token_sub = _actions(token, "token_command")
    p = token_sub.add_parser("create", help="a new token for identity NAME; only its hash is stored")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--agent", action="store_true", help="NAME is an autonomous agent (docs/agents.md)")
    p.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help="limit the token: components=C[.ACTION],…  categories=…  types=…  max-level=LEVEL  rate=N",
    )
    p.add_argument("--read-only", action="store_true", help="reads only")
    p.add_argument("--worker", action="store_true", help="may carry out changes (the worker protocol)")
    p.add_argument("--expires", metavar="DURATION", help="e.g. 30d, 12h, 2w (default: never)")
    p.set_defaults(handler=commands.cmd_token_create)
    p = token_sub.add_parser("rotate", help="a new secret for a token; the old one works for --grace")
    p.add_argument("token_id", metavar="ID")
    p.add_argument("--grace", default="1h", metavar="DURATION", help="default 1h; 0 ends it at once")
    p.set_defaults(handler=commands.cmd_token_rotate)
    p = token_sub.add_parser("list", help="tokens with their identity and state (never the secret)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=commands.cmd_token_list)
    p = token_sub.add_parser("revoke", help="revoke a token by its id")
    p.add_argument("token_id", metavar="ID")
    p.set_defaults(handler=commands.cmd_token_revoke)

    s = add("serve", commands.cmd_serve, "run the REST API (FastAPI under uvicorn) on CORTEX_CHANGE_DB")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=1, help="processes (use PostgreSQL for more than one host)")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    s.add_argument("--no-access-log", dest="access_log", action="store_false")

    add(
        "mcp",
        mcp.cmd_mcp,
        "serve the Model Context Protocol on stdio for AI agents, as CORTEX_CHANGE_TOKEN's identity "
        "and scopes, on CORTEX_CHANGE_DB (docs/mcp.md)",
    )

    cfg = add("config", _missing_sub, "show the effective configuration")
    cfg_sub = _actions(cfg, "config_command")
    p = cfg_sub.add_parser("show", help="every key: value, where it came from, in effect or not")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=commands.cmd_config_show)


def _nonempty(text: str) -> str:
    """A value given on the command line must say something: empty is not "the default"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _time(text: str) -> str:
    """A date or ISO 8601 time, checked before any store is opened (bad input writes nothing)."""
    from ..domain.schedule import instant

    try:
        instant("DATE", text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{exc.field}: ")) from None
    return text


def _period(text: str) -> str:
    """A reporting period, checked before any store is opened (bad input writes nothing)."""
    from datetime import UTC, datetime

    from ..domain.period import parse

    try:
        parse(text, datetime.now(UTC))
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{exc.field}: ")) from None
    return text


def _compliance_commands(add: Adder) -> None:
    compliance = add("compliance", _missing_sub, "compliance reports: every control with its evidence")
    if isinstance(compliance, _Unused):  # another command runs: spare the import below
        return
    from ..domain.compliance_report import FRAMEWORKS

    compliance_sub = _actions(compliance, "compliance_command")
    about = (
        "a framework's controls over the changes created in a period, with audit evidence; "
        "exit 0 whenever the report is produced, even when controls fail or the audit chain is "
        "broken (the report says so first); see docs/compliance.md"
    )
    p = compliance_sub.add_parser("report", help=about, description=about)
    p.add_argument("--framework", required=True, choices=list(FRAMEWORKS))
    p.add_argument(
        "--period", required=True, type=_period, help="today | week | month | 'YYYY-MM-DD to YYYY-MM-DD'"
    )
    p.add_argument("--format", default="text", choices=["text", "json", "csv"])
    p.set_defaults(handler=commands.cmd_compliance_report)


def _operations_commands(add: Adder) -> None:
    w = add("worker", _missing_sub, "the worker: run it, or speak the seed's worker protocol")
    sub = _actions(w, "worker_command")
    p = sub.add_parser(
        "run", help="fire timers, deliver notifications, implement and validate; until stopped"
    )
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--name", metavar="NAME", help="this worker's name (default host:pid)")
    p.set_defaults(handler=operations.cmd_worker_run)
    p = sub.add_parser("execute", help="take the lease on an approved change; print its plan as JSON")
    p.add_argument("worker", metavar="WORKER")
    p.add_argument("change_id", metavar="ID")
    p.set_defaults(handler=operations.cmd_worker_execute)
    p = sub.add_parser("heartbeat", help="renew WORKER's lease on ID")
    p.add_argument("worker", metavar="WORKER")
    p.add_argument("change_id", metavar="ID")
    p.set_defaults(handler=operations.cmd_worker_heartbeat)
    for verb in ("report_success", "report_failure"):
        p = sub.add_parser(verb, help=f"{verb.replace('_', ' ')}: WORKER ID NOTES")
        p.add_argument("worker", metavar="WORKER")
        p.add_argument("change_id", metavar="ID")
        p.add_argument("notes", metavar="REASON" if verb == "report_failure" else "NOTES", nargs="?")
        p.set_defaults(handler=operations.cmd_worker_report, success=verb == "report_success")
    p = sub.add_parser("leases", help="who carries out which change, until when")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=operations.cmd_worker_leases)

    inc = add(
        "incidents", operations.cmd_incidents_list, "incidents opened by failed rollbacks: list | show ID"
    )
    sub = inc.add_subparsers(dest="incidents_command", metavar="ACTION", parser_class=Parser)
    p = sub.add_parser("list", help="newest first")
    p.add_argument("--change", metavar="ID", help="only this change's")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=operations.cmd_incidents_list)
    p = sub.add_parser("show", help="one incident as JSON")
    p.add_argument("incident_id", metavar="ID")
    p.set_defaults(handler=operations.cmd_incidents_show)
    inc.set_defaults(change=None, json=False)

    out = add("outbox", _missing_sub, "notifications waiting, delivered or dead-lettered")
    sub = _actions(out, "outbox_command")
    p = sub.add_parser("list", help="newest first")
    p.add_argument("--failed", action="store_true", help="only the dead letters")
    p.add_argument("--state", choices=["pending", "delivered", "dead"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=operations.cmd_outbox_list)
    p = sub.add_parser("retry", help="queue a dead letter again")
    p.add_argument("message_id", metavar="ID")
    p.set_defaults(handler=operations.cmd_outbox_retry)

    cab = add("cab", _missing_sub, "the CAB's next meeting and agenda")
    sub = _actions(cab, "cab_command")
    p = sub.add_parser("agenda", help="changes waiting for the CAB, highest risk first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=operations.cmd_cab_agenda)


def _cmdb_commands(add: Adder) -> None:
    c = add("cmdb", _missing_sub, "the CMDB: configuration items, relationships, blast radius (docs/cmdb.md)")
    sub = _actions(c, "cmdb_command")
    p = sub.add_parser("import", help="make the CMDB what FILE says (JSON, YAML, or kubectl get -o json)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.add_argument("--prune", action="store_true", help="remove the CIs FILE no longer has")
    p.add_argument("--format", choices=["json", "yaml", "kubernetes"], help="default: from the file")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(handler=cmdb.cmd_cmdb_import)
    p = sub.add_parser("export", help="the CMDB as an import file (JSON), to stdout")
    p.set_defaults(handler=cmdb.cmd_cmdb_export)
    p = sub.add_parser("show", help="a CI with what it relies on and what relies on it")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmdb.cmd_cmdb_show)
    p = sub.add_parser("list", help="CIs by name, filtered")
    p.add_argument("--type")
    p.add_argument("--tier", type=int)
    p.add_argument("--owner")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmdb.cmd_cmdb_list)
    p = sub.add_parser("impact", help="the blast radius: every CI relying on NAME..., with the path")
    p.add_argument("names", metavar="NAME", nargs="+")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmdb.cmd_cmdb_impact)
    p = sub.add_parser("graph", help="a CI's neighbourhood as Graphviz dot or Mermaid")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--format", choices=["dot", "mermaid"], default="dot")
    p.set_defaults(handler=cmdb.cmd_cmdb_graph)


def _risk_commands(add: Adder) -> None:
    r = add(
        "risk", _missing_sub, "the learned risk model: train, status, explain, backtest (docs/risk-model.md)"
    )
    sub = _actions(r, "risk_command")
    p = sub.add_parser("train", help="learn P(failure) from closed changes (needs the `ml` extra)")
    p.add_argument("--days", type=int, metavar="N", help="only changes filed in the last N days")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=risk.cmd_risk_train)
    p = sub.add_parser("status", help="the model card, or why the rules alone assess")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=risk.cmd_risk_status)
    p = sub.add_parser("explain", help="a change's recorded features and each one's contribution")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("--top", type=int, default=10, help="how many contributions (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=risk.cmd_risk_explain)
    p = sub.add_parser("backtest", help="train before --from, judge on changes filed in [--from, --to)")
    p.add_argument("--from", dest="from_", required=True, metavar="DATE", help="ISO 8601, e.g. 2026-07-01")
    p.add_argument("--to", required=True, metavar="DATE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=risk.cmd_risk_backtest)


def _policy_commands(add: Adder) -> None:
    r = add("policy", _missing_sub, "what another configuration would do (docs/simulation.md)")
    sub = _actions(r, "policy_command")
    p = sub.add_parser(
        "simulate",
        help="replay a period's changes under a candidate TOML beside the running one; writes nothing",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="the candidate configuration (TOML)")
    p.add_argument("--period", required=True, help="e.g. 2026-Q3, 2026-07, month, '2026-07-01 to 2026-07-31'")
    p.add_argument(
        "--minutes",
        action="append",
        default=[],
        metavar="ROLE=N",
        help="minutes one approval takes, per role (technical-lead 15, cab 30, ciso 20, cto 20, ecab 15)",
    )
    p.add_argument("--list", type=int, default=10, metavar="N", help="changes named per finding (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=policy.cmd_policy_simulate)


def _freeze_commands(add: Adder) -> None:
    f = add("freeze", _missing_sub, "the kill switch: stop all automation at once (docs/agents.md)")
    sub = _actions(f, "freeze_command")
    p = sub.add_parser("on", help="no auto-approval, no automated implementation (CHANGE_MANAGERS)")
    p.add_argument("--reason", required=True, type=_nonempty)
    _common(p)
    p.set_defaults(handler=automation.cmd_freeze_on)
    p = sub.add_parser("off", help="automation resumes; paused implementations continue")
    _common(p)
    p.set_defaults(handler=automation.cmd_freeze_off)
    p = sub.add_parser("status", help="whether automation is halted, why, by whom, since when")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=automation.cmd_freeze_status)


def _windows_commands(add: Adder) -> None:
    w = add("windows", _missing_sub, "freeze and maintenance windows (docs/schedule.md)")
    sub = _actions(w, "windows_command")
    p = sub.add_parser("add", help="a freeze (no changes but emergencies) or a maintenance window")
    p.add_argument("kind", metavar="KIND", help="freeze | maintenance")
    p.add_argument("start", metavar="START", nargs="?", help="ISO 8601, e.g. 2026-12-20T00:00:00+01:00")
    p.add_argument("end", metavar="END", nargs="?", help="(with --cron: default START + 360 days)")
    p.add_argument("--scope", default="all", help="all (default), environment:NAME, service:NAME or tier:N")
    p.add_argument("--cron", metavar="EXPR", help="recurring: at these times (UTC), e.g. '0 22 * * 6'")
    p.add_argument("--duration", metavar="D", help="each occurrence's length, e.g. 4h (with --cron)")
    p.add_argument(
        "--policy", choices=["refuse", "cab"], help="a freeze's own policy (default FREEZE_POLICY)"
    )
    p.add_argument("--reason", required=True, type=_nonempty)
    _common(p)
    p.set_defaults(handler=windows.cmd_windows_add)
    p = sub.add_parser("list", help="windows not yet over, soonest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=windows.cmd_windows_list)
    p = sub.add_parser("remove", help="remove a window by its id")
    p.add_argument("window_id", metavar="ID")
    _common(p)
    p.set_defaults(handler=windows.cmd_windows_remove)

    p = add(
        "observe",
        observations.cmd_observe,
        "record what really changed (a rollout, a deploy); exit 1 when no change covers it: an "
        "unauthorized change, audited and notified",
    )
    p.add_argument("--service", required=True, type=_nonempty)
    p.add_argument("--env", dest="environment", metavar="ENVIRONMENT")
    p.add_argument("--at", metavar="TIME", help="when it changed, ISO 8601 (default now)")
    p.add_argument("--source", required=True, type=_nonempty, help="who saw it: argocd, github, a watcher")
    p.add_argument("--reference", required=True, type=_nonempty, help="a revision, a run URL, an id")
    p.add_argument("--json", action="store_true")
    _common(p)
    o = add("observations", _missing_sub, "observed changes: list [--unmatched]")
    sub = _actions(o, "observations_command")
    p = sub.add_parser("list", help="observed changes, newest first; --unmatched: the unauthorized ones")
    p.add_argument("--unmatched", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=observations.cmd_observations_list)


def _k8s_commands(add: Adder) -> None:
    k = add("k8s", _missing_sub, "Kubernetes events: watch (docs/self-healing.md)")
    sub = _actions(k, "k8s_command")
    p = sub.add_parser(
        "watch",
        help="kubectl get events -A -w: rollouts, scalings, restarts observed; a crash-looping "
        "Deployment's pods propose the worker-restart change; until Ctrl-C or the stream ends",
    )
    p.add_argument("--kubectl", default="kubectl", type=_nonempty, metavar="PATH", help="default: kubectl")
    p.add_argument("--context", type=_nonempty, metavar="C", help="the kubeconfig context to watch")
    p.add_argument(
        "--since", metavar="D", help="also take events up to D old (e.g. 10m; default: from now on)"
    )
    _common(p)
    p.set_defaults(handler=k8s.cmd_k8s_watch)


def _calendar_commands(add: Adder) -> None:
    c = add(
        "calendar",
        calendar.cmd_calendar,
        "planned changes (every state) and freeze/maintenance windows over a span, times UTC; "
        "calendar feed create|list|revoke: iCalendar subscriptions (docs/schedule.md)",
    )
    c.add_argument(
        "--from",
        dest="from_",
        metavar="DATE",
        type=_time,
        help="a date or ISO 8601 time (default: today, UTC)",
    )
    c.add_argument(
        "--to", metavar="DATE", type=_time, help="a date (included) or ISO 8601 time (default: 14 days on)"
    )
    c.add_argument("--service", type=_nonempty, help="changes touching this service only")
    c.add_argument("--env", dest="environment", metavar="ENVIRONMENT", type=_nonempty)
    c.add_argument("--json", action="store_true")
    sub = c.add_subparsers(dest="calendar_command", metavar="feed", parser_class=Parser)
    f = sub.add_parser("feed", help="iCalendar feeds: create NAME (its path printed once), list, revoke ID")
    feed = _actions(f, "feed_command")
    p = feed.add_parser("create", help="a new feed; prints /api/v1/calendar/<secret>.ics once")
    p.add_argument("name", metavar="NAME", help="who or what subscribes")
    _common(p)
    p.set_defaults(handler=calendar.cmd_calendar_feed_create)
    p = feed.add_parser("list", help="feeds with their state (never the secret)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=calendar.cmd_calendar_feed_list)
    p = feed.add_parser("revoke", help="revoke a feed by its id: its URL answers 404 from then on")
    p.add_argument("feed_id", metavar="ID")
    _common(p)
    p.set_defaults(handler=calendar.cmd_calendar_feed_revoke)


def _backup_commands(add: Adder) -> None:
    p = add(
        "backup",
        backup.cmd_backup,
        "copy the embedded SQLite store to FILE (a new file) while it is in use, then verify the "
        "copy's audit chain; PostgreSQL: pg_dump (docs/backup.md)",
    )
    p.add_argument("file", metavar="FILE", type=_nonempty)
    p = add(
        "restore",
        backup.cmd_restore,
        "restore a backup FILE as the store (--db, CORTEX_CHANGE_DB), only where none exists yet; "
        "checks FILE and verifies the audit chain first (docs/backup.md)",
    )
    p.add_argument("file", metavar="FILE", type=_nonempty)


def _portability_commands(add: Adder) -> None:
    """Moving a store (docs/portability.md); `import --jsonl FILE` is under `import`."""
    p = add(
        "export",
        portability.cmd_export,
        "write the whole store as JSON lines (changes, audit chain with its hashes, CMDB, windows, "
        "token hashes, ...) for `import --jsonl` into an empty store (docs/portability.md)",
    )
    p.add_argument("--jsonl", required=True, metavar="FILE", type=_nonempty)
    p.add_argument(
        "--without-credentials",
        action="store_true",
        help="leave out API tokens and calendar feeds (their secrets' hashes): make them again after import",
    )
    p = add(
        "migrate-store",
        portability.cmd_migrate_store,
        "copy this store into an empty PostgreSQL database, verify counts and the audit chain there, "
        "and print the CORTEX_CHANGE_DB line to switch (docs/portability.md)",
    )
    p.add_argument("--to", required=True, metavar="URL", type=_nonempty, help="postgresql://...")


def _moving_commands(add: Adder) -> None:
    """`import shell-tool DIR` (docs/moving.md); `import --jsonl FILE` joins it."""
    p = add(
        "import",
        moving.cmd_import,
        "bring changes in: import shell-tool DIR reads the seed's shell tool's changes/ and audit/ "
        "(ids, times, states, approvals, closure, its audit lines); a second run imports nothing new "
        "(docs/moving.md)",
    )
    p.add_argument("source", metavar="shell-tool", nargs="?", choices=["shell-tool"], help="what to import")
    p.add_argument("dir", metavar="DIR", nargs="?", help="the tool's folder, holding changes/ and audit/")
    p.add_argument("--dry-run", action="store_true", help="print the report; write nothing")
    p.add_argument(
        "--salvage",
        action="store_true",
        help="import records that are not valid JSON when a tolerant parse proves their content "
        "(flagged as salvaged)",
    )
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.add_argument(
        "--jsonl",
        metavar="FILE",
        type=_nonempty,
        help="an `export --jsonl` file, into an empty store; its audit chain verified (docs/portability.md)",
    )
    _common(p)


def _pir_commands(add: Adder) -> None:
    """Post-implementation reviews (docs/pir.md), on the local store."""
    r = add(
        "pir",
        _missing_sub,
        "post-implementation reviews of failed, rolled-back and incident-linked changes: list, show, "
        "findings, action add|done, complete (docs/pir.md)",
    )
    sub = _actions(r, "pir_command")
    p = sub.add_parser("list", help="open reviews, soonest due first")
    p.add_argument("--overdue", action="store_true", help="only those past due, longest overdue first")
    p.add_argument("--all", action="store_true", help="completed ones too, newest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=pir.cmd_pir_list)
    p = sub.add_parser("show", help="a change's review as JSON: findings, action items")
    p.add_argument("change_id", metavar="ID")
    p.set_defaults(handler=pir.cmd_pir_show)
    p = sub.add_parser("findings", help="write (or rewrite) the findings: findings ID TEXT")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("text", metavar="TEXT")
    _common(p)
    p.set_defaults(handler=pir.cmd_pir_findings)
    p = sub.add_parser("complete", help="sign the review off (CHANGE_MANAGERS; needs findings)")
    p.add_argument("change_id", metavar="ID")
    _common(p)
    p.set_defaults(handler=pir.cmd_pir_complete)
    a = sub.add_parser(
        "action", help="action items: add ID TITLE --owner NAME --due DATE | done ID ACTION_ID"
    )
    actions = a.add_subparsers(dest="pir_action", metavar="ACTION", required=True, parser_class=Parser)
    p = actions.add_parser("add", help="add an action item with its owner and due date (YYYY-MM-DD)")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("title", metavar="TITLE")
    p.add_argument("--owner", required=True, metavar="NAME")
    p.add_argument("--due", required=True, metavar="DATE", help="YYYY-MM-DD (UTC), today or later")
    _common(p)
    p.set_defaults(handler=pir.cmd_pir_action_add)
    p = actions.add_parser("done", help="mark an action item done (its owner, CHANGE_MANAGERS)")
    p.add_argument("change_id", metavar="ID")
    p.add_argument("action_id", metavar="ACTION_ID")
    _common(p)
    p.set_defaults(handler=pir.cmd_pir_action_done)


def _checkpoint_commands(audit_sub: Any) -> None:
    """`audit keygen`, `audit keys`, `audit checkpoint` (docs/checkpoints.md)."""
    p = audit_sub.add_parser("keygen", help="write a new Ed25519 signing key to FILE (0600) and FILE.pub")
    p.add_argument("file", metavar="FILE", type=_nonempty)
    p.set_defaults(handler=checkpoints.cmd_audit_keygen)
    parent = audit_sub.add_parser("keys", help="the checkpoints' public keys: list, add, retire")
    keys = _actions(parent, "keys_command")
    p = keys.add_parser("list", help="every public key with its validity period")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=checkpoints.cmd_audit_keys_list)
    p = keys.add_parser("add", help="register a public key (rotation): its checkpoints verify from --from")
    p.add_argument("public_file", metavar="PUBFILE", type=_nonempty)
    p.add_argument("--from", dest="valid_from", metavar="TIME", help="ISO 8601 UTC (default now)")
    p.add_argument("--to", dest="valid_to", metavar="TIME", help="ISO 8601 UTC (default: until retired)")
    p.set_defaults(handler=checkpoints.cmd_audit_keys_add)
    p = keys.add_parser("retire", help="end a key's validity (default now); older checkpoints still verify")
    p.add_argument("key_id", metavar="ID")
    p.add_argument("--at", metavar="TIME", help="ISO 8601 UTC (default now)")
    p.set_defaults(handler=checkpoints.cmd_audit_keys_retire)
    p = audit_sub.add_parser("checkpoint", help="sign the chain's head now (AUDIT_SIGNING_KEY) and publish")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=checkpoints.cmd_audit_checkpoint)


def _actions(p: Declared, dest: str) -> Any:
    """The ACTION sub-commands of a command such as `audit` or `worker` (one is required)."""
    return p.add_subparsers(dest=dest, metavar="ACTION", required=True, parser_class=Parser)


def _missing_sub(ctx: Any, a: argparse.Namespace) -> int:  # pragma: no cover
    raise ValidationError("command", "an action is required")
