"""`cortex-change mcp` (docs/mcp.md): the real console script driven over stdio by the MCP SDK's own
client, on both backends. Tokens are made in-process on the same store; a person's steps (approve,
implement) go through the CLI. Covered: the tools and what they say needs a person, filing and
reading back as an agent, scopes and read-only tokens refused with nothing written, a revoked token
stopped at once, waiting for approval (timing out, and a person approving meanwhile), assessing,
the gate and reporting the outcome, bad arguments and malformed protocol messages."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from cortex_change.domain.fields import FIELDS
from cortex_change.services.context import Context, open_context
from cortex_change.services.tokens import create_token, list_tokens, revoke_token
from support import TEST_IMPLEMENTERS

if TYPE_CHECKING:
    from conftest import Cli

T = TypeVar("T")
ORDER = [
    "file_change",
    "assess_change",
    "gate",
    "wait_for_approval",
    "start_implementation",
    "report_outcome",
    "get_change",
]
TOOLS = set(ORDER)
API_FIELDS = [f.name for f in FIELDS.values() if f.api]  # what file_change takes
CHANGE = {
    "type": "normal",
    "category": "deployment",
    "title": "Deploy web 2.4",
    "description": "release 2.4 of web",
    "affected_services": ["web"],
    "impact": "low",
    "urgency": "low",
}


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """An in-process context on the test's store (the real clock, as the server's)."""
    monkeypatch.chdir(tmp_path)  # no stray cortex-change.toml
    ctx = open_context(env={"CORTEX_CHANGE_DB": store_url, "IMPLEMENTERS": TEST_IMPLEMENTERS})
    yield ctx
    ctx.close()


def token(ctx: Context, name: str = "deploy-bot", **options: Any) -> str:
    """An agent's token limited to deployment changes (unless `scopes` says otherwise)."""
    options.setdefault("scopes", ["categories=deployment"])
    return create_token(ctx, name=name, agent=True, **options)[1]


class Server:
    """`cortex-change mcp` for one token: each `run` starts it, initializes a client session,
    runs the body and stops it; the server's stderr is kept."""

    def __init__(self, cli: Cli, secret: str) -> None:
        self.cli = cli
        self.env = cli.environment({"CORTEX_CHANGE_TOKEN": secret})
        self.stderr = cli.cwd / "mcp-stderr.txt"

    def run(self, body: Callable[[ClientSession], Awaitable[T]]) -> T:
        params = StdioServerParameters(
            command=self.cli.path, args=["mcp"], env=self.env, cwd=str(self.cli.cwd)
        )

        async def session() -> T:
            with self.stderr.open("a") as errlog:
                async with (
                    stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as client,
                ):
                    await client.initialize()
                    with anyio.fail_after(60):
                        return await body(client)

        # A thread of its own: an event loop another test left in this thread (Playwright's sync
        # API keeps one running for the session) would refuse anyio.run.
        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(anyio.run, session).result()
        assert "Traceback" not in self.stderr.read_text(), self.stderr.read_text()
        return result

    def call(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        async def body(client: ClientSession) -> CallToolResult:
            return await client.call_tool(name, arguments)

        return self.run(body)


def text(result: CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert block.type == "text"
    return block.text


def ok(result: CallToolResult) -> Any:
    """A tool's JSON answer (the structured content says the same); the call must have succeeded."""
    assert not result.is_error, text(result)
    answer = json.loads(text(result))
    assert result.structured_content == answer
    return answer


def refused(result: CallToolResult) -> str:
    """A tool error's message: one line, no traceback."""
    assert result.is_error, text(result)
    message = text(result)
    assert "\n" not in message and "Traceback" not in message
    return message


# ---- the tools ------------------------------------------------------------------------------


def test_the_tools_and_what_needs_a_person(cli: Cli, store: Context) -> None:
    server = Server(cli, token(store))

    async def body(client: ClientSession) -> Any:
        return (await client.list_tools()).tools

    listed = {t.name: t for t in server.run(body)}
    assert set(listed) == TOOLS
    for name in ("file_change", "assess_change", "gate", "wait_for_approval"):
        description = listed[name].description or ""
        assert "person's approval" in description, name
        assert "AGENT_HUMAN_APPROVAL_LEVEL" in description and "medium risk or above" in description
        assert "an agent never approves" in description
    schema = listed["file_change"].input_schema
    assert {"type", "category", "title"} <= set(schema["required"])
    assert "requested_by" not in schema["properties"]  # the token's identity files
    assert schema["properties"]["category"]["enum"] == store.policy.categories
    assert listed["wait_for_approval"].input_schema["properties"]["timeout_seconds"]["maximum"] == 600


def test_filed_by_an_agent_and_read_back(cli: Cli, store: Context) -> None:
    server = Server(cli, token(store))
    filed = ok(server.call("file_change", CHANGE))
    assert filed["state"] == "pending_assessment"
    assert filed["origin"] == "agent"
    assert filed["requested_by"] == "deploy-bot"
    assert filed["affected_services"] == ["web"]

    shown = ok(server.call("get_change", {"change_id": filed["change_id"]}))
    assert shown["change_id"] == filed["change_id"]
    assert shown["origin"] == "agent"
    assert [e["action"] for e in shown["audit_trail"]] == ["created"]
    assert shown["audit_trail"][0]["actor"] == "deploy-bot"
    assert cli.show(filed["change_id"])["origin"] == "agent"  # the store's record, as the CLI reads it


def test_a_filing_outside_the_tokens_scopes_is_refused_and_writes_nothing(cli: Cli, store: Context) -> None:
    server = Server(cli, token(store))
    before = cli.counts()
    message = refused(server.call("file_change", {**CHANGE, "category": "security"}))
    assert "deploy-bot may not file security changes" in message
    assert "outside its token's scopes (categories: deployment)" in message
    assert cli.counts() == before


def test_a_read_only_token_reads_but_never_files(cli: Cli, store: Context) -> None:
    change_id = cli.create("normal", "deployment", "Filed by a person", "d")
    server = Server(cli, token(store, "reader-bot", read_only=True, scopes=[]))
    before = cli.counts()
    message = refused(server.call("file_change", CHANGE))
    assert "reader-bot may not file changes: outside its token's scopes (read-only)" in message
    assert "read-only" in refused(server.call("assess_change", {"change_id": change_id}))
    assert cli.counts() == before
    assert ok(server.call("get_change", {"change_id": change_id}))["title"] == "Filed by a person"


def test_a_revoked_token_stops_working_at_once(cli: Cli, store: Context) -> None:
    secret = token(store)
    token_id = next(t["token_id"] for t in list_tokens(store) if t["name"] == "deploy-bot")
    server = Server(cli, secret)

    async def body(client: ClientSession) -> tuple[CallToolResult, CallToolResult]:
        first = await client.call_tool("file_change", CHANGE)
        await anyio.to_thread.run_sync(lambda: cli.ok("token", "revoke", token_id))
        return first, await client.call_tool("file_change", CHANGE)

    before = cli.counts()[0]
    first, second = server.run(body)
    ok(first)
    assert refused(second) == "invalid or revoked token"
    assert cli.counts()[0] == before + 1  # the first only


def test_without_a_working_token_the_server_does_not_start(cli: Cli, store: Context) -> None:
    missing = cli("mcp")
    assert missing.code == 2
    assert missing.out == ""
    assert missing.err.startswith("cortex-change: CORTEX_CHANGE_TOKEN: is not set")
    assert missing.err.count("\n") == 1

    secret = token(store)
    revoke_token(store, token_id=secret.split("_")[1])
    revoked = cli("mcp", env={"CORTEX_CHANGE_TOKEN": secret})
    assert (revoked.code, revoked.out, revoked.err) == (1, "", "cortex-change: invalid or revoked token\n")


def test_waiting_for_approval_times_out_with_the_state(cli: Cli, store: Context) -> None:
    server = Server(cli, token(store))
    change_id = ok(server.call("file_change", CHANGE))["change_id"]
    assessed = ok(server.call("assess_change", {"change_id": change_id}))
    assert assessed["state"] == "pending_approval"  # an agent's change at medium risk: a person decides
    assert "AGENT_HUMAN_APPROVAL_LEVEL=medium" in json.dumps(assessed["assessment"])

    began = time.monotonic()
    waited = ok(server.call("wait_for_approval", {"change_id": change_id, "timeout_seconds": 1.5}))
    assert time.monotonic() - began < 30
    assert waited == {
        "change_id": change_id,
        "state": "pending_approval",
        "approved": False,
        "timed_out": True,
        "waited_seconds": waited["waited_seconds"],
    }
    assert 1.5 <= waited["waited_seconds"] < 10
    assert "0..600" in refused(
        server.call("wait_for_approval", {"change_id": change_id, "timeout_seconds": 601})
    )


def test_waiting_ends_when_a_person_approves(cli: Cli, store: Context) -> None:
    server = Server(cli, token(store))
    change_id = ok(server.call("file_change", CHANGE))["change_id"]
    ok(server.call("assess_change", {"change_id": change_id}))

    async def body(client: ClientSession) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def wait() -> None:
            args = {"change_id": change_id, "timeout_seconds": 60}
            seen["wait"] = await client.call_tool("wait_for_approval", args)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(1.5)
            began = time.monotonic()
            seen["read"] = await client.call_tool("get_change", {"change_id": change_id})
            seen["read_seconds"] = time.monotonic() - began
            seen["still_waiting"] = "wait" not in seen
            await anyio.to_thread.run_sync(lambda: cli.ok("approve", change_id, "tech-lead", "looks right"))
        return seen

    seen = server.run(body)
    assert seen["still_waiting"]  # another call meanwhile: the wait holds up nothing
    assert ok(seen["read"])["state"] == "pending_approval" and seen["read_seconds"] < 5
    waited = ok(seen["wait"])
    assert waited["state"] == "approved" and waited["approved"] is True and waited["timed_out"] is False
    assert 1.5 <= waited["waited_seconds"] < 30


def test_assess_gate_and_report_the_outcome(cli: Cli, store: Context) -> None:
    server = Server(cli, token(store))
    change_id = ok(server.call("file_change", {**CHANGE, "environment": "production"}))["change_id"]
    ok(server.call("assess_change", {"change_id": change_id}))
    closed_too_soon = refused(
        server.call("report_outcome", {"change_id": change_id, "success": True, "notes": "done"})
    )
    assert closed_too_soon.startswith(f"cannot close {change_id}: it is pending_approval")
    shut = ok(server.call("gate", {"service": "web", "environment": "production", "change_id": change_id}))
    assert shut["allowed"] is False and f"{change_id} is pending_approval, not approved" in shut["reasons"]

    cli.ok("approve", change_id, "tech-lead", "looks right")  # a person
    gate = ok(server.call("gate", {"service": "web", "environment": "production"}))
    assert gate["allowed"] is True and gate["change_id"] == change_id and gate["reasons"] == []
    started = ok(server.call("start_implementation", {"change_id": change_id}))  # steps for people
    assert (started["state"], started["queued_for_workers"]) == ("implemented", False)
    again = refused(server.call("start_implementation", {"change_id": change_id}))
    assert again.startswith(f"cannot implement {change_id}: it is implemented")

    closed = ok(
        server.call("report_outcome", {"change_id": change_id, "success": True, "notes": "2.4 is live"})
    )
    assert closed["state"] == "closed"
    assert closed["closure_status"] == "successful"
    assert closed["closure_notes"] == "2.4 is live"
    assert closed["audit_trail"][-1]["action"] == "closed"
    assert closed["audit_trail"][-1]["actor"] == "deploy-bot"


def test_a_failure_reported_takes_the_failure_path(cli: Cli, store: Context) -> None:
    server = Server(cli, token(store))
    change_id = ok(server.call("file_change", CHANGE))["change_id"]
    ok(server.call("assess_change", {"change_id": change_id}))
    cli.ok("approve", change_id, "tech-lead", "looks right")
    cli.ok("implement", change_id, "--as", "deploy-bot")

    empty = refused(server.call("report_outcome", {"change_id": change_id, "success": False, "notes": " "}))
    assert empty.startswith("reason: ")
    failed = ok(
        server.call(
            "report_outcome", {"change_id": change_id, "success": False, "notes": "error rate doubled"}
        )
    )
    assert failed["state"] == "closed"
    assert failed["closure_status"] in ("rolled_back", "failed")
    actions = [e["action"] for e in failed["audit_trail"]]
    assert "rollback_started" in actions or "rollback_skipped" in actions
    assert "error rate doubled" in json.dumps(failed["audit_trail"])


def test_only_the_requester_or_the_implementers_report(cli: Cli, store: Context) -> None:
    change_id = cli.create("normal", "deployment", "A person's change", "d", "--service", "web")
    cli.ok("assess", change_id)
    cli.ok("approve", change_id, "tech-lead", "ok")
    cli.ok("implement", change_id, "--as", "alice")
    server = Server(cli, token(store, "other-bot"))
    message = refused(server.call("report_outcome", {"change_id": change_id, "success": True, "notes": "x"}))
    assert message.startswith(f"other-bot may not close {change_id}: allowed to ")
    assert cli.show(change_id)["state"] == "implemented"


# ---- bad input ------------------------------------------------------------------------------


def test_bad_arguments_are_tool_errors(cli: Cli, store: Context) -> None:
    server = Server(cli, token(store))

    async def body(client: ClientSession) -> list[str]:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_change", {"change_id": "RFC-1"}),
            ("get_change", {"change_id": 7}),
            ("get_change", {}),
            ("get_change", {"change_id": "RFC-20260101000000-abcdef", "extra": 1}),
            ("get_change", {"change_id": "RFC-20260101000000-abcdef"}),
            ("file_change", {**CHANGE, "requested_by": "someone-else"}),
            ("file_change", {**CHANGE, "affected_services": "web"}),
            ("file_change", {**CHANGE, "impact": "enormous"}),
            ("report_outcome", {"change_id": "RFC-20260101000000-abcdef", "success": "yes", "notes": "x"}),
            ("no_such_tool", {}),
        ]
        return [refused(await client.call_tool(name, args)) for name, args in calls]

    before = cli.counts()
    assert server.run(body) == [
        "change_id: 'RFC-1' is not a change id (RFC-YYYYMMDDHHMMSS-xxxxxx)",
        "change_id: must be a JSON string",
        "change_id: is required",
        "extra: is not an argument of get_change; arguments: change_id",
        "no change 'RFC-20260101000000-abcdef'",
        "requested_by: is not an argument of file_change; arguments: " + ", ".join(API_FIELDS),
        "affected_services: must be a JSON array of strings",
        "impact: 'enormous' is not allowed; allowed: low, medium, high, critical",
        "success: must be a JSON boolean",
        "name: no tool 'no_such_tool'; tools: " + ", ".join(ORDER),
    ]
    assert cli.counts() == before


def test_malformed_protocol_messages_get_protocol_errors(cli: Cli, store: Context) -> None:
    """Below the SDK's client: raw JSON-RPC lines. Each malformed request gets the SDK's protocol
    error, a line that is not JSON none, and the server serves on."""
    env = cli.environment({"CORTEX_CHANGE_TOKEN": token(store)})
    proc = subprocess.Popen(
        [cli.path, "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cli.cwd,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    def send(message: dict[str, Any] | str, answer: bool = True) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        proc.stdin.flush()
        reply: dict[str, Any] = json.loads(proc.stdout.readline()) if answer else {}
        return reply

    try:
        hello = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        }
        assert "result" in send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        send({"jsonrpc": "2.0", "method": "notifications/initialized"}, answer=False)
        bad_name = send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": 5}})
        assert bad_name["id"] == 2 and bad_name["error"]["code"] == -32602  # invalid params
        unknown = send({"jsonrpc": "2.0", "id": 3, "method": "no/such/method", "params": {}})
        assert unknown["id"] == 3 and unknown["error"]["code"] == -32601  # method not found
        send("this is not JSON", answer=False)
        args = {"name": "get_change", "arguments": "RFC-20260101000000-abcdef"}
        not_an_object = send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": args})
        assert not_an_object["id"] == 4 and not_an_object["error"]["code"] == -32602
        listed = send({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}})
        assert {t["name"] for t in listed["result"]["tools"]} == TOOLS
    finally:
        proc.stdin.close()
        code = proc.wait(timeout=30)
        errors = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0, errors
    assert "Traceback" not in errors


def test_the_cli_imports_the_sdk_only_for_mcp(cli: Cli) -> None:
    """The command's module is named, not imported, by the CLI; the SDK comes with `mcp` alone."""
    probe = (
        "import sys; from cortex_change.cli.main import main; main(['config', 'show']); "
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'mcp' or 'cortex_change.mcp' in m))"
    )
    python = Path(cli.path).parent / "python"
    proc = subprocess.run(
        [python, "-c", probe], env=cli.environment(), cwd=cli.cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_without_the_sdk_the_command_names_the_extra(cli: Cli, store: Context) -> None:
    """As `serve` does without uvicorn: exit 5, naming the pip install line (the SDK hidden here)."""
    probe = (
        "import sys; sys.modules['mcp'] = None; "
        "from cortex_change.cli.main import main; sys.exit(main(['mcp']))"
    )
    env = cli.environment({"CORTEX_CHANGE_TOKEN": token(store)})
    proc = subprocess.run(
        [Path(cli.path).parent / "python", "-c", probe],
        env=env,
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (5, "")
    assert proc.stderr == "cortex-change: mcp needs the mcp package: pip install 'cortex-change[agents]'\n"
