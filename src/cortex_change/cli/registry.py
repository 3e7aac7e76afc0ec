"""Which code runs each command, named rather than imported: a command imports only its own module.

The parser refers to handlers as `commands.cmd_show` or `operations.cmd_worker_run`; those are
`Handler` names here, and the module is imported when the command runs (start-up time: a `show`
never loads the write side, the worker or the server).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse


class Handler:
    """One command's function, `module.name` under cortex_change.cli (or a full module path, for
    a door of its own: `cortex_change.mcp`), imported on first call."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self, target: object, args: argparse.Namespace) -> int:
        from importlib import import_module

        path = self.module if "." in self.module else f"cortex_change.cli.{self.module}"
        code: int = getattr(import_module(path), self.name)(target, args)
        return code

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Handler) and (self.module, self.name) == (other.module, other.name)

    def __hash__(self) -> int:
        return hash((self.module, self.name))

    def __repr__(self) -> str:
        return f"Handler({self.module}.{self.name})"


class Module:
    """`commands.cmd_show` as a Handler, without importing the module."""

    __slots__ = ("module",)

    def __init__(self, module: str) -> None:
        self.module = module

    def __getattr__(self, name: str) -> Handler:
        return Handler(self.module, name)


commands = Module("commands")
operations = Module("operations")
cmdb = Module("cmdb")
windows = Module("windows")
observations = Module("observations")
calendar = Module("calendar")
automation = Module("automation")
risk = Module("risk")
backup = Module("backup")
policy = Module("policy")
portability = Module("portability")
moving = Module("moving")  # import shell-tool DIR (docs/moving.md)
checkpoints = Module("checkpoints")  # signed audit checkpoints (docs/checkpoints.md)
pir = Module("pir")  # post-implementation reviews (docs/pir.md)
k8s = Module("k8s")  # k8s watch: cluster events as observations (docs/self-healing.md)
mcp = Module("cortex_change.mcp")  # the MCP server: its SDK only when `cortex-change mcp` runs

# Handlers take a Gateway (the local store or the server) except these, which work on the local
# store whatever CORTEX_CHANGE_URL says (tokens, the server itself, the trail's files on this host,
# the worker), and those that need no store at all.
LOCAL_ONLY = frozenset(
    {
        commands.cmd_audit_log,
        commands.cmd_audit_export,
        checkpoints.cmd_audit_keys_list,
        checkpoints.cmd_audit_keys_add,
        checkpoints.cmd_audit_keys_retire,
        checkpoints.cmd_audit_checkpoint,
        commands.cmd_token_create,
        commands.cmd_token_list,
        commands.cmd_token_revoke,
        commands.cmd_token_rotate,
        portability.cmd_export,
        portability.cmd_migrate_store,
        risk.cmd_risk_train,
        risk.cmd_risk_status,
        risk.cmd_risk_explain,
        risk.cmd_risk_backtest,
        policy.cmd_policy_simulate,
        automation.cmd_freeze_on,
        automation.cmd_freeze_off,
        automation.cmd_freeze_status,
        operations.cmd_rollback,
        operations.cmd_worker_run,
        operations.cmd_worker_execute,
        operations.cmd_worker_heartbeat,
        operations.cmd_worker_report,
        operations.cmd_worker_leases,
        operations.cmd_incidents_list,
        operations.cmd_incidents_show,
        operations.cmd_outbox_list,
        operations.cmd_outbox_retry,
        operations.cmd_cab_agenda,
        cmdb.cmd_cmdb_import,
        cmdb.cmd_cmdb_export,
        cmdb.cmd_cmdb_show,
        cmdb.cmd_cmdb_list,
        cmdb.cmd_cmdb_impact,
        cmdb.cmd_cmdb_graph,
        moving.cmd_import,
        windows.cmd_windows_add,
        windows.cmd_windows_list,
        windows.cmd_windows_remove,
        observations.cmd_observe,
        observations.cmd_observations_list,
        k8s.cmd_k8s_watch,
        calendar.cmd_calendar_feed_create,
        calendar.cmd_calendar_feed_list,
        calendar.cmd_calendar_feed_revoke,
        pir.cmd_pir_list,
        pir.cmd_pir_show,
        pir.cmd_pir_findings,
        pir.cmd_pir_action_add,
        pir.cmd_pir_action_done,
        pir.cmd_pir_complete,
    }
)
# `serve` and `mcp` open the store themselves (the MCP server on this host: never the client mode).
# `backup` and `restore` (SQLite only) open the store themselves: `restore` must find none there.
NO_STORE = frozenset(
    {
        commands.cmd_config_show,
        commands.cmd_serve,
        mcp.cmd_mcp,
        backup.cmd_backup,
        backup.cmd_restore,
        checkpoints.cmd_audit_keygen,  # a key file only: it may be made on another host
    }
)
# Locally these only read: they open an existing store read-only (an auditor's access is enough)
# and say it does not exist rather than create one; every other command creates it on first use.
READ_ONLY = frozenset(
    {
        commands.cmd_show,
        commands.cmd_list,
        commands.cmd_metrics,
        commands.cmd_compliance_report,
        commands.cmd_audit_verify,
        commands.cmd_audit_log,
        commands.cmd_audit_export,
        checkpoints.cmd_audit_keys_list,
        commands.cmd_token_list,
        automation.cmd_freeze_status,
        risk.cmd_risk_status,
        risk.cmd_risk_explain,
        risk.cmd_risk_backtest,
        policy.cmd_policy_simulate,
        portability.cmd_export,
        portability.cmd_migrate_store,  # the source is only read; the target is its own
        commands.cmd_gate,
        commands.cmd_wait,
        commands.cmd_whoami,
        operations.cmd_worker_leases,
        operations.cmd_incidents_list,
        operations.cmd_incidents_show,
        operations.cmd_outbox_list,
        operations.cmd_cab_agenda,
        cmdb.cmd_cmdb_export,
        cmdb.cmd_cmdb_show,
        cmdb.cmd_cmdb_list,
        cmdb.cmd_cmdb_impact,
        cmdb.cmd_cmdb_graph,
        windows.cmd_windows_list,
        observations.cmd_observations_list,
        calendar.cmd_calendar,
        calendar.cmd_calendar_feed_list,
        pir.cmd_pir_list,
        pir.cmd_pir_show,
    }
)
OVERDUE = "overdue"  # `review overdue` lists; `review ID …` records (a change id is never this word)


def reads_only(a: argparse.Namespace) -> bool:
    """Whether this command line only reads the store (`review overdue` does, `review ID` writes)."""
    return a.handler in READ_ONLY or (a.handler == commands.cmd_review and a.change_id == OVERDUE)


def needs_no_store(a: argparse.Namespace) -> bool:
    """`config show`, `serve`, `mcp` (which open it themselves) and the offline `audit verify
    --export FILE` are given no store."""
    return a.handler in NO_STORE or (a.handler == commands.cmd_audit_verify and bool(a.export))
