"""The seed's quick start, once on a local store and once through the server: same output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from remote_support import same_ids

if TYPE_CHECKING:
    from remote_support import Run, Server

# (who acts, command): locally `who` is CORTEX_CHANGE_USER, remotely it is whose token is used.
QUICK_START: list[tuple[str, tuple[str, ...]]] = [
    ("dev", ("create", "normal", "deployment", "Deploy new feature X", "Detailed description")),
    ("dev", ("assess", "{id}")),
    ("tech-lead", ("approve", "{id}", "Approved for deployment")),
    ("dev", ("implement", "{id}")),
    ("dev", ("close", "{id}", "successful", "Change deployed successfully")),
    ("dev", ("list", "pending")),
    ("dev", ("list", "closed")),
    ("dev", ("integrate", "kubernetes", "restart_pod", "worker-001")),
    ("dev", ("models", "show", "worker-restart")),
    ("dev", ("audit", "verify")),
]

PLANS = ("--implementation-plan", '{"steps": ["switch"]}', "--rollback-plan", '{"steps": ["back"]}')
# The other verbs: a CAB vote that leaves the change pending, rejection, cancellation, and the
# retrospective review of an emergency change. `{id}` is the last change created.
OTHER_VERBS: list[tuple[str, tuple[str, ...]]] = [
    ("dev", ("create", "normal", "infrastructure", "Big one", "--impact", "high", "--service", "a", *PLANS)),
    ("dev", ("assess", "{id}")),
    ("ops-lead", ("approve", "{id}", "fine by me")),
    ("security-lead", ("reject", "{id}", "not this week")),
    ("dev", ("create", "normal", "deployment", "Never mind")),
    ("dev", ("cancel", "{id}", "not needed")),
    ("dev", ("create", "emergency", "security", "Hotfix", "--rollback-plan", '{"steps": ["revert"]}')),
    ("dev", ("assess", "{id}")),
    ("dev", ("implement", "{id}")),
    ("dev", ("close", "{id}", "successful", "patched")),
    ("tech-lead", ("review", "{id}", "accepted", "justified")),
    ("dev", ("show", "{id}", "--json")),  # bad input on both sides: show has no --json
    ("dev", ("metrics", "today")),
]


def _replay(run: object, steps: list[tuple[str, tuple[str, ...]]]) -> list[tuple[int, str, str]]:
    ids: dict[str, str] = {}
    outputs = []
    change_id = ""
    for who, args in steps:
        res: Run = run(who, *(a.replace("{id}", change_id) for a in args))  # type: ignore[operator]
        if args[0] == "create":
            assert res.code == 0, res.err
            change_id = res.out.strip()
        outputs.append((res.code, same_ids(res.out, ids), same_ids(res.err, ids)))
    return outputs


def test_quick_start_prints_the_same_locally_and_through_the_server(server: Server) -> None:
    local_db = server.root / "local" / "store.db"

    def local(who: str, *args: str) -> Run:
        return server.local(*args, user=who, db=local_db)

    def remote(who: str, *args: str) -> Run:
        return server.client(who, *args)

    here, there = _replay(local, QUICK_START), _replay(remote, QUICK_START)
    for step, mine, got in zip(QUICK_START, here, there, strict=True):
        theirs = got
        assert mine[0] == 0, (step, mine)
        # `audit verify` counts token events too: the server's store holds the tokens
        if step[1][:2] == ("audit", "verify"):
            assert theirs[1].startswith("audit chain intact: "), theirs
            continue
        if step[1][0] == "integrate":  # the API files it as the token's identity, not the template's
            theirs = (theirs[0], theirs[1], theirs[2].replace("requested by dev", "requested by kubernetes"))
        assert theirs == mine, step
    create = there[0]
    assert create[1] == "<id0>\n"  # only the id on stdout
    assert "approved by tech-lead (technical-lead); state approved" in there[2][1]


def test_reads_through_the_server_equal_local_reads_of_its_store(server: Server) -> None:
    change_id = server.client("dev", "create", "normal", "deployment", "Read me").out.strip()
    assert server.client("dev", "assess", change_id).code == 0
    assert server.client("tech-lead", "approve", change_id, "ok").code == 0
    for args in (
        ("show", change_id),
        ("list",),
        ("list", "approved", "--json"),
        ("list", "--limit", "1", "--before", change_id),
        ("metrics", "today", "--json"),
        ("metrics", "week"),
        ("models", "list", "--json"),
        ("integrations",),
    ):
        remote, local = server.client("dev", *args), server.local(*args)
        assert remote == local, args
    doc = json.loads(server.client("dev", "show", change_id).out)
    assert (doc["state"], doc["requested_by"]) == ("approved", "dev")
    assert [a["approver"] for a in doc["approvals"]] == ["tech-lead"]


def test_local_only_commands_stay_local_in_client_mode(server: Server) -> None:
    env = {"CORTEX_CHANGE_DB": str(server.db)}
    for args in (("token", "list"), ("config", "show"), ("audit", "log")):
        remote = server.client("dev", *args, **env)
        assert remote == server.local(*args), args
        assert remote.code == 0
    export = server.root / "export"
    assert server.client("dev", "audit", "export", "--dir", str(export), "--all", **env).code == 0
    res = server.client("dev", "audit", "verify", "--export", str(export))  # offline, no store at all
    assert res.code == 0 and res.out.startswith("audit chain intact"), res


def test_the_client_never_opens_a_local_store(server: Server) -> None:
    assert server.client("dev", "list").code == 0
    assert not Path(server.nowhere).parent.exists()


def test_the_other_verbs_print_the_same_locally_and_through_the_server(server: Server) -> None:
    local_db = server.root / "local-other" / "store.db"
    here = _replay(lambda who, *args: server.local(*args, user=who, db=local_db), OTHER_VERBS)
    there = _replay(server.client, OTHER_VERBS)
    for step, mine, theirs in zip(OTHER_VERBS, here, there, strict=True):
        if step[1][0] == "metrics":  # the server's store also holds the other tests' changes
            assert theirs[0] == mine[0] == 0
            continue
        assert theirs == mine, step
    assert "still needs cab 1/2" in there[2][1], there[2]
    assert [code for code, _, _ in there] == [0] * 11 + [2, 0]


def test_db_on_the_command_line_means_the_local_store(server: Server) -> None:
    args = ("list", "--json")
    remote = server.client("dev", "--db", str(server.db), *args, CORTEX_CHANGE_TOKEN="")
    assert remote == server.local(*args) and remote.code == 0
    # tokens are made where the store is, before any token exists: no CORTEX_CHANGE_TOKEN needed
    res = server.client(
        "dev", "token", "create", "newcomer", CORTEX_CHANGE_TOKEN="", CORTEX_CHANGE_DB=str(server.db)
    )
    assert res.code == 0 and res.out.startswith("cc_"), res


def test_whoami_says_who_the_rules_take_you_for(server: Server) -> None:
    """Locally the declared name and its kind; through the server the token's identity, kind and
    scopes (an agent's, made with scopes, shows them)."""
    made = server.local("token", "create", "scan-bot", "--agent", "--scope", "categories=security")
    assert made.code == 0, made.err
    server.tokens["scan-bot"] = made.out.strip()
    remote = server.client("scan-bot", "whoami")
    assert remote.code == 0, remote.err
    assert remote.out.strip() == "scan-bot (an agent); scopes: categories=security components=none"
    doc = json.loads(server.client("scan-bot", "whoami", "--json").out)
    assert (doc["agent"], doc["scopes"]["categories"]) == (True, ["security"])
    assert server.client("scan-bot", "whoami", "--as", "alice").code == 2  # not the token's identity
    local = server.local("whoami", "--as", "scan-bot")
    assert local.out.strip() == "scan-bot (an agent); scopes: unrestricted"
    assert server.local("whoami", user="alice").out.strip() == "alice (a person); scopes: unrestricted"
