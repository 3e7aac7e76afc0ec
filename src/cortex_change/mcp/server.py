"""The MCP door (docs/mcp.md): the Model Context Protocol on stdio, for AI agents.

Thin, like the API's routes: each tool call authenticates CORTEX_CHANGE_TOKEN again (a revoked
or expired token stops working at once), acts as its principal (`Context.acting`), checks a
read-only token before a write, calls one service and answers with JSON text of what it returns.
A domain error is a tool error (`isError`) carrying its one-line message; malformed protocol
messages are the SDK's to answer.

The store is used from one thread of its own (an SQLite connection stays in the thread that
opened it); the event loop only waits, so `wait_for_approval` never holds up other calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, TypeVar

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
)
from mcp.types import Tool as McpTool

from .. import __version__
from ..domain import agents
from ..domain import validation as v
from ..domain.agents import Principal
from ..domain.errors import CortexError, ValidationError
from ..domain.fields import FIELDS, ChangeRequest, Field, Kind
from ..domain.lifecycle import State
from ..redaction import redact
from ..services import changes as svc
from ..services import queries
from ..services.context import Context, open_context
from ..services.gate import gate
from ..services.tokens import principal
from ..services.workers import rollback_change

log = logging.getLogger("cortex_change.mcp")
T = TypeVar("T")

WAIT_MAX = 600  # seconds wait_for_approval may wait at most
WAIT_DEFAULT = 300
POLL_SECONDS = 1.0
# wait_for_approval ends on these: approved (or further along the way), or never to be.
APPROVED = frozenset(
    s.value for s in (State.APPROVED, State.IMPLEMENTING, State.IMPLEMENTED, State.ROLLING_BACK, State.CLOSED)
)
UNAPPROVED = frozenset({State.REJECTED.value, State.CANCELLED.value})

Args = dict[str, Any]
Run = Callable[[Context, Principal, Args], Any]


class Tool(NamedTuple):
    """One tool: what it is called and says, its arguments (a JSON Schema object), what a
    read-only token may not do through it (None: it only reads) and what it runs."""

    name: str
    description: str
    schema: dict[str, Any]
    writes: str | None
    run: Run | None  # None: wait_for_approval, which the door runs itself (it waits)


# ---- what each tool runs: the services the REST API calls --------------------------------------


def _file_change(ctx: Context, who: Principal, args: Args) -> dict[str, Any]:
    checked = ChangeRequest.of({**args, "requested_by": who.name}, svc.limits(ctx.settings))
    return queries.written(ctx, svc.create_change(ctx, checked))


def _assess_change(ctx: Context, who: Principal, args: Args) -> dict[str, Any]:
    return queries.written(ctx, svc.assess_change(ctx, change_id=args["change_id"]))


def _gate(ctx: Context, who: Principal, args: Args) -> dict[str, Any]:
    return gate(
        ctx, service=args["service"], environment=args.get("environment"), change_id=args.get("change_id")
    )


def _start_implementation(ctx: Context, who: Principal, args: Args) -> dict[str, Any]:
    """As the API's implement: a plan with executable steps is queued for the workers, a plan of
    text steps is recorded as carried out by this identity (then report_outcome)."""
    from ..services.dispatch import implement_or_queue

    change, queued = implement_or_queue(ctx, change_id=args["change_id"], actor=who.name)
    return {**queries.written(ctx, change), "queued_for_workers": queued}


def _report_outcome(ctx: Context, who: Principal, args: Args) -> dict[str, Any]:
    """Success closes the change successful; a failure takes the failure path as `rollback` does
    (allowed to whoever may roll it back; a rollback when AUTO_ROLLBACK_ENABLED, else closed failed;
    its reason `rolled back by NAME: NOTES`)."""
    change_id, notes = args["change_id"], args["notes"]
    if args["success"]:
        change = svc.close_change(ctx, change_id=change_id, status="successful", notes=notes, actor=who.name)
    else:
        change = rollback_change(ctx, change_id=change_id, actor=who.name, reason=notes)
    return queries.written(ctx, change)


def _get_change(ctx: Context, who: Principal, args: Args) -> dict[str, Any]:
    return queries.get_change(ctx, change_id=args["change_id"])


# ---- the tools' declarations ------------------------------------------------------------------


def _string(description: str, **more: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **more}


CHANGE_ID = _string("the change's id, e.g. RFC-20260115090000-a1b2c3")


def _field_schema(field: Field, categories: list[str]) -> dict[str, Any]:
    """A change field's argument, from the field table (as the API's request body is)."""
    if field.kind == Kind.NAMES:
        schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    elif field.kind in (Kind.PLAN, Kind.DOCUMENT, Kind.PARAMETERS):
        schema = {"type": "object"}
    else:
        schema = {"type": "string"}
    schema["description"] = field.doc
    choices = list(field.choices) or (categories if field.kind == Kind.CATEGORY else [])
    if choices:
        schema["enum"] = choices
    if field.max_len is not None:
        schema["maxLength"] = field.max_len
    if field.min_len:
        schema["minLength"] = field.min_len
    return schema


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def tools(ctx: Context) -> dict[str, Tool]:
    """The tools, their descriptions naming what needs a person under this configuration."""
    level = ctx.policy.agent_human_approval_level.value
    person = (
        f"A change an agent files at {level} risk or above (AGENT_HUMAN_APPROVAL_LEVEL), or above its "
        "token's max-level, waits for a person's approval; an agent never approves, rejects or reviews "
        "a change an agent filed."
    )
    offered = [f for f in FIELDS.values() if f.api]
    fields = _object(
        {f.name: _field_schema(f, ctx.policy.categories) for f in offered},
        [f.name for f in offered if f.required],
    )
    declared = [
        Tool(
            "file_change",
            "File a request for change (RFC) as this token's identity; the change records origin "
            "'agent'. The token's scopes limit the categories and types it may file. Returns the change "
            "document (state pending_assessment): assess it next with assess_change. " + person,
            fields,
            "file changes",
            _file_change,
        ),
        Tool(
            "assess_change",
            "Score the change's risk and route it for approval (SPEC §3). The returned document's "
            "assessment names the route: an automatic route approves at once (state approved); any "
            "other waits for people (pending_approval or pending_cab): use wait_for_approval. " + person,
            _object({"change_id": CHANGE_ID}, ["change_id"]),
            "assess changes",
            _assess_change,
        ),
        Tool(
            "gate",
            "May a deploy of a service go ahead now? Allowed when a change naming the service is "
            "approved (or being carried out), for that environment, within its planned window, and no "
            'freeze is in force. Returns {"allowed", "change_id", "reasons", "at"}: deploy only when '
            "allowed is true. Only approved changes open the gate: " + person,
            _object(
                {
                    "service": _string("the service deployed"),
                    "environment": _string("the environment deployed to, e.g. production"),
                    "change_id": {**CHANGE_ID, "description": "ask about this change only"},
                },
                ["service"],
            ),
            None,
            _gate,
        ),
        Tool(
            "wait_for_approval",
            "Wait until a change is approved (or further along), rejected or cancelled, looking about "
            f"every second, for at most timeout_seconds (≤ {WAIT_MAX}). Returns "
            '{"change_id", "state", "approved", "timed_out", "waited_seconds"}; call again to keep '
            "waiting. Approval is a person's decision: " + person,
            _object(
                {
                    "change_id": CHANGE_ID,
                    "timeout_seconds": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": WAIT_MAX,
                        "description": f"how long to wait at most (default {WAIT_DEFAULT})",
                    },
                },
                ["change_id"],
            ),
            None,
            None,
        ),
        Tool(
            "start_implementation",
            "Carry out an approved change: a plan with executable steps (run, http, runbook) is queued "
            "for the workers, who run it and verify it (queued_for_workers true; follow it with "
            "get_change); a plan of steps for people is recorded as implemented by you at once — do them, "
            "then report_outcome. Allowed to the requester, IMPLEMENTERS and CHANGE_MANAGERS, within "
            "the change's planned window, never during a freeze; while automation is halted (the kill "
            "switch) agents start nothing.",
            _object({"change_id": CHANGE_ID}, ["change_id"]),
            "implement changes",
            _start_implementation,
        ),
        Tool(
            "report_outcome",
            "Report how carrying out a change went (it must be implementing or implemented). success "
            "true closes it successful; false starts its rollback (AUTO_ROLLBACK_ENABLED), else closes "
            "it failed, with notes as the reason. Allowed to the requester, IMPLEMENTERS, the worker "
            "holding the lease and CHANGE_MANAGERS. No person needs to approve a report.",
            _object(
                {
                    "change_id": CHANGE_ID,
                    "success": {"type": "boolean", "description": "whether the change succeeded"},
                    "notes": _string(
                        "what happened; on failure the reason the rollback rests on (not empty)",
                        maxLength=v.DESCRIPTION_MAX,
                    ),
                },
                ["change_id", "success", "notes"],
            ),
            "report the outcome of changes",
            _report_outcome,
        ),
        Tool(
            "get_change",
            "One change as SPEC §1's document: state, risk assessment and route, approvals (who "
            "decided), timeline, audit trail and compliance.",
            _object({"change_id": CHANGE_ID}, ["change_id"]),
            None,
            _get_change,
        ),
    ]
    return {t.name: t for t in declared}


# ---- arguments --------------------------------------------------------------------------------

JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
    "array": lambda x: isinstance(x, list),
    "object": lambda x: isinstance(x, dict),
}


def arguments(tool: Tool, given: Mapping[str, Any]) -> Args:
    """The call's arguments checked against the tool's schema: no unknown ones, the required
    present, each of its JSON type (the services check the values, in the CLI's wording). A null
    optional argument is as if not given."""
    properties: dict[str, Any] = tool.schema["properties"]
    unknown = [name for name in given if name not in properties]
    if unknown:
        raise ValidationError(
            unknown[0], f"is not an argument of {tool.name}; arguments: {', '.join(properties)}"
        )
    out: Args = {}
    for name, spec in properties.items():
        value = given.get(name)
        if value is None:
            if name in tool.schema["required"]:
                raise ValidationError(name, "is required")
            continue
        kind = spec["type"]
        items = spec.get("items", {}).get("type")
        if not JSON_TYPES[kind](value) or (items and not all(JSON_TYPES[items](x) for x in value)):
            raise ValidationError(name, f"must be a JSON {kind}" + (f" of {items}s" if items else ""))
        out[name] = value
    return out


def _timeout(args: Args) -> float:
    seconds = float(args.get("timeout_seconds", WAIT_DEFAULT))
    if not 0 <= seconds <= WAIT_MAX:
        raise ValidationError("timeout_seconds", f"{seconds:g} is not within 0..{WAIT_MAX} seconds")
    return seconds


# ---- the door ---------------------------------------------------------------------------------


class Door:
    """The server's state: the token, the store (in its own thread) and the tools."""

    def __init__(self, env: Mapping[str, str], token: str) -> None:
        self.token = token
        self.location = env.get("CORTEX_CHANGE_DB", "")
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cortex-change-store")
        try:
            self.ctx = self.pool.submit(open_context, env).result()  # opened in the thread that uses it
        except BaseException:
            self.pool.shutdown()
            raise
        self.tools: dict[str, Tool] = {}

    def close(self) -> None:
        self.pool.submit(self.ctx.close).result()
        self.pool.shutdown()

    # -- in the store's thread

    def principal(self) -> Principal:
        """Who the token is, now: asked again on every call."""
        return principal(self.ctx, f"Bearer {self.token}")

    def start(self) -> str:
        """At start: the token works, and the tools' descriptions under this configuration."""
        who = self.principal()
        self.tools = tools(self.ctx)
        return who.name

    def run(self, tool: Tool, args: Args) -> Any:
        who = self.principal()
        if tool.writes is not None:
            agents.require_write(who, tool.writes)
        assert tool.run is not None
        return tool.run(self.ctx.acting(who), who, args)

    def state(self, change_id: str) -> str:
        who = self.principal()
        state: str = _get_change(self.ctx.acting(who), who, {"change_id": change_id})["state"]
        return state

    # -- on the event loop

    async def store(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def wait(self, args: Args) -> dict[str, Any]:
        change_id, timeout = v.change_id(args["change_id"]), _timeout(args)
        began = time.monotonic()
        while True:
            state = await self.store(self.state, change_id)
            waited = time.monotonic() - began
            ended = state in APPROVED or state in UNAPPROVED
            if ended or waited >= timeout:
                return {
                    "change_id": change_id,
                    "state": state,
                    "approved": state in APPROVED,
                    "timed_out": not ended,
                    "waited_seconds": round(waited, 1),
                }
            await anyio.sleep(min(POLL_SECONDS, timeout - waited))

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        listed = [
            McpTool(name=t.name, description=t.description, input_schema=t.schema)
            for t in self.tools.values()
        ]
        return ListToolsResult(tools=listed)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult:
        try:
            tool = self.tools.get(params.name)
            if tool is None:
                raise ValidationError("name", f"no tool {params.name!r}; tools: {', '.join(self.tools)}")
            args = arguments(tool, params.arguments or {})
            value = await (self.wait(args) if tool.run is None else self.store(self.run, tool, args))
        except CortexError as exc:
            return self.error(" ".join(str(exc).split()))
        except Exception:  # a bug: its traceback goes to the log (stderr), never to the client
            log.exception("tool %s failed", params.name)
            return self.error(f"{params.name} failed: internal error (see the server's log)")
        text = json.dumps(value, ensure_ascii=False)
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=value if isinstance(value, dict) else None,
        )

    def error(self, message: str) -> CallToolResult:
        text = redact(message, self.location)  # no password of the store's URL
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


INSTRUCTIONS = (
    "cortex-change: ITIL change management. File a change (file_change), assess it (assess_change), "
    "wait for its approval (wait_for_approval), ask the gate before deploying (gate), then report the "
    "outcome (report_outcome). You act as your token's identity within its scopes; people approve what "
    "an agent may not, and an agent never approves."
)


async def _serve(door: Door) -> None:
    server: Server[Any] = Server(
        "cortex-change",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=door.list_tools,
        on_call_tool=door.call_tool,
    )
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def serve(env: Mapping[str, str], token: str) -> int:
    """Serve MCP on stdin/stdout until the client goes away."""
    door = Door(env, token)
    try:
        door.pool.submit(door.start).result()  # a token that does not work stops here, with its reason
        anyio.run(_serve, door)
    finally:
        door.close()
    return 0
