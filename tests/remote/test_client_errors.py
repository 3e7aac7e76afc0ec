"""Errors through the server: the local exit codes and one-line messages, nothing written."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

import pytest
from remote_support import has_whoami

from support import free_port

if TYPE_CHECKING:
    from remote_support import Run, Server


@pytest.fixture(autouse=True)
def _tokens(server: Server) -> None:
    """Tokens made up front: making one writes an audit event."""
    for who in ("dev", "tech-lead", "ops-lead"):
        server.token(who)


def _events(server: Server) -> int:
    conn = sqlite3.connect(server.db)
    try:
        return int(conn.execute("SELECT count(*) FROM audit_events").fetchone()[0])
    finally:
        conn.close()


def _one_line(res: Run, code: int) -> str:
    assert res.code == code, res
    assert res.out == ""
    assert len(res.err.splitlines()) == 1 and res.err.startswith("cortex-change: "), res.err
    return res.err


def _pending(server: Server, requester: str = "dev") -> str:
    res = server.client(requester, "create", "normal", "deployment", "Needs approval")
    assert res.code == 0, res.err
    change_id = res.out.strip()
    assert server.client(requester, "assess", change_id).code == 0
    return change_id


@pytest.mark.parametrize(
    "args",
    [
        ("create", "bogus", "deployment", "x"),
        ("create", "normal", "deployment", ""),
        ("create", "normal", "deployment", "x", "--impact", "huge"),
        ("show", "RFC-x"),
        ("list", "nonsense"),
        ("list", "--limit", "0"),
        ("metrics", "yesterday-ish"),
        ("integrate", "kubernetes", "teleport", "x"),
    ],
)
def test_bad_input_exits_2_with_the_local_message(server: Server, args: tuple[str, ...]) -> None:
    before = _events(server)
    remote = server.client("dev", *args)
    assert _one_line(remote, 2) == _one_line(server.local(*args, user="dev"), 2)
    assert _events(server) == before


def test_a_bad_closure_status_reads_as_locally(server: Server) -> None:
    change_id = _pending(server)
    args = ("close", change_id, "sort-of", "notes")
    assert _one_line(server.client("dev", *args), 2) == _one_line(server.local(*args, user="dev"), 2)


@pytest.mark.parametrize(
    "args",
    [
        ("show", "RFC-20250101000000-abcdef"),
        ("assess", "RFC-20250101000000-abcdef"),
        ("approve", "RFC-20250101000000-abcdef", "ok"),
        ("list", "--before", "RFC-20250101000000-abcdef"),
        ("models", "show", "no-such-model"),
    ],
)
def test_unknown_ids_exit_3_with_the_local_message(server: Server, args: tuple[str, ...]) -> None:
    remote = server.client("tech-lead", *args)
    assert _one_line(remote, 3) == _one_line(server.local(*args, user="tech-lead"), 3)


def test_self_approval_is_refused_exit_1_as_locally(server: Server) -> None:
    change_id = _pending(server, requester="tech-lead")
    before = _events(server)
    remote = _one_line(server.client("tech-lead", "approve", change_id, "trust me"), 1)
    assert "SEGREGATION_OF_DUTIES" in remote
    assert _events(server) == before + 1  # the refusal is audited, once
    local = _one_line(server.local("approve", change_id, "tech-lead", "trust me"), 1)
    assert remote == local
    remote = _one_line(server.client("tech-lead", "reject", change_id, "nope"), 1)
    assert remote == _one_line(server.local("reject", change_id, "tech-lead", "nope"), 1)


def test_approving_without_the_role_is_refused_as_locally(server: Server) -> None:
    change_id = _pending(server)
    remote = _one_line(server.client("ops-lead", "approve", change_id, "ok"), 1)
    assert remote == _one_line(server.local("approve", change_id, "ops-lead", "ok"), 1)
    assert "TECH_LEADS" in remote


def test_an_invalid_transition_exits_1_as_locally(server: Server) -> None:
    change_id = _pending(server)
    remote = _one_line(server.client("dev", "implement", change_id), 1)
    assert remote == _one_line(server.local("implement", change_id, user="dev"), 1)
    assert f"cannot implement {change_id}: it is pending_approval" in remote
    remote = _one_line(server.client("dev", "review", change_id, "accepted", "fine"), 1)
    assert remote == _one_line(server.local("review", change_id, "dev", "accepted", "fine"), 1)


def test_a_revoked_token_is_refused_exit_1(server: Server) -> None:
    token = server.token("mallory")
    assert server.client("mallory", "list").code == 0
    token_id = token.split("_")[1]
    assert server.local("token", "revoke", token_id).code == 0
    err = _one_line(server.client("mallory", "list"), 1)
    assert "refused the token" in err and "invalid or revoked token" in err
    assert server.url in err
    assert token not in err


def test_a_malformed_token_is_refused_exit_1(server: Server) -> None:
    err = _one_line(server.client("dev", "show", "RFC-20250101000000-abcdef", CORTEX_CHANGE_TOKEN="x"), 1)
    assert "refused the token" in err


def test_server_down_exits_5_naming_the_url_not_the_token(server: Server) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = _one_line(server.client("dev", "list", url=url), 5)
    assert f"cannot reach the server at {url}" in err
    assert server.token("dev") not in err
    err = _one_line(server.client("dev", "list", url=f"http://someone:s3cret@127.0.0.1:{free_port()}"), 5)
    assert "s3cret" not in err and "someone" not in err


def test_a_url_without_a_token_is_bad_input(server: Server) -> None:
    err = _one_line(server.client("dev", "list", CORTEX_CHANGE_TOKEN=""), 2)
    assert "CORTEX_CHANGE_TOKEN" in err
    err = _one_line(server.client("dev", "list", url="ftp://example.org"), 2)
    assert "CORTEX_CHANGE_URL" in err


@pytest.mark.parametrize(
    "args",
    [
        ("approve", "{id}", "alice", "looks fine"),
        ("approve", "{id}", "looks fine", "--as", "alice"),
        ("reject", "{id}", "alice", "no"),
        ("review", "{id}", "alice", "accepted", "fine"),
        ("implement", "{id}", "--as", "alice"),
        ("create", "normal", "deployment", "Mine", "desc", "alice"),
        ("create", "normal", "deployment", "Mine", "--requester", "alice"),
        ("integrate", "coordinator-master", "approve", "{id}", "--as", "alice"),
    ],
)
def test_a_name_other_than_the_tokens_is_refused_exit_2(server: Server, args: tuple[str, ...]) -> None:
    change_id = _pending(server)
    before = _events(server)
    argv = tuple(a.format(id=change_id) for a in args)
    err = _one_line(server.client("tech-lead", *argv), 2)
    assert "acts as the token's identity" in err and "'alice'" in err
    assert _events(server) == before  # nothing reached the store
    assert server.local("show", change_id).out == server.client("dev", "show", change_id).out


def test_the_tokens_own_name_is_accepted(server: Server) -> None:
    change_id = _pending(server)
    assert has_whoami(server)
    res = server.client("tech-lead", "approve", change_id, "tech-lead", "Approved for deployment")
    assert res.code == 0, res.err
    assert "approved by tech-lead (technical-lead); state approved" in res.out


def test_update_goes_through_the_server_and_reassesses(server: Server) -> None:
    change_id = _pending(server)
    res = server.client("dev", "update", change_id, "--title", "New title", "--impact", "high")
    assert res.code == 0, res.err
    assert f"{change_id} updated; state pending_approval" in res.out
    doc = json.loads(server.local("show", change_id).out)
    assert (doc["title"], doc["impact"]) == ("New title", "high")
    updated = [e for e in doc["audit_trail"] if e["action"] == "updated"]
    assert updated[-1]["details"]["changes"]["title"]["new"] == "New title"
    bad = _one_line(server.client("dev", "update", change_id, "--impact", "enormous"), 2)
    assert bad.startswith("cortex-change: impact: 'enormous' is not allowed")
