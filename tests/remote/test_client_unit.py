"""The client's pieces without a server: problem → exception, identity checks, the lean path."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from cortex_change.cli.exits import for_error
from cortex_change.cli.gateway import Remote, from_environment
from cortex_change.cli.remote import Client, display_url, error_for
from cortex_change.domain.errors import (
    ApprovalRefused,
    Conflict,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    Refused,
    ValidationError,
)

if TYPE_CHECKING:
    from remote_support import Server

URL = "http://127.0.0.1:9"


def _problem(status: int, slug: str, detail: str) -> dict[str, Any]:
    return {"type": f"https://cortex-change.dev/problems/{slug}", "status": status, "detail": detail}


@pytest.mark.parametrize(
    ("status", "slug", "kind", "code"),
    [
        (401, "unauthenticated", Refused, 1),
        (403, "forbidden", ApprovalRefused, 1),
        (403, "refused", Refused, 1),
        (404, "not-found", NotFound, 3),
        (409, "invalid-transition", InvalidTransition, 1),
        (409, "conflict", Conflict, 4),
        (412, "precondition-failed", PreconditionFailed, 4),
        (422, "invalid-input", ValidationError, 2),
        (503, "store-unavailable", Exception, 5),
        (500, "internal", Exception, 5),
    ],
)
def test_problems_become_the_services_exceptions(status: int, slug: str, kind: type, code: int) -> None:
    exc = error_for(status, _problem(status, slug, "title: must not be empty"), URL)
    assert isinstance(exc, kind)
    assert for_error(exc) == code
    if status < 500 and status != 401:
        assert str(exc) == "title: must not be empty"  # the server's detail, as the local error reads
    else:
        assert URL in str(exc)


def test_a_response_that_is_not_a_problem_is_a_server_failure() -> None:
    assert for_error(error_for(502, None, URL)) == 5
    assert for_error(error_for(404, None, URL)) == 5


def test_the_url_shown_never_carries_credentials() -> None:
    assert display_url("https://bob:hunter2@example.org:8443/base/") == "https://example.org:8443/base/"
    with pytest.raises(ValidationError, match="CORTEX_CHANGE_URL"):
        Client("example.org", "t")


def test_no_url_means_local() -> None:
    assert from_environment({}) is None
    with pytest.raises(ValidationError, match="CORTEX_CHANGE_TOKEN"):
        from_environment({"CORTEX_CHANGE_URL": URL})


class FakeClient:
    url = URL

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.calls = 0

    def get(self, path: str, **query: Any) -> Any:
        assert path == "/whoami"
        self.calls += 1
        if self.name is None:
            raise NotFound("Not Found")
        return {"name": self.name}


def test_a_name_is_checked_against_the_tokens_identity() -> None:
    fake = FakeClient("tech-lead")
    gw = Remote(fake, {})  # type: ignore[arg-type]
    assert gw.who(None, None, "approver", False) is None  # nothing named: the server decides
    assert fake.calls == 0  # ... and nothing asked
    assert gw.who(None, "tech-lead", "approver", False) == "tech-lead"
    assert gw.who("tech-lead", None, "actor", True) == "tech-lead"
    with pytest.raises(ValidationError, match="acts as the token's identity") as info:
        gw.who(None, "alice", "approver", False)
    assert str(info.value).startswith("approver: 'alice' is not the identity of CORTEX_CHANGE_TOKEN")
    with pytest.raises(ValidationError, match="named twice"):
        gw.who("bob", "alice", "approver", False)
    assert fake.calls == 1  # asked once per run


def test_without_whoami_a_name_cannot_be_checked_and_is_refused() -> None:
    gw = Remote(FakeClient(None), {})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="acts as the token's identity: leave the name out"):
        gw.who(None, "tech-lead", "approver", False)


HEAVY = ("fastapi", "pydantic", "starlette", "uvicorn", "httpx", "psycopg", "sqlite3", "anyio")
PROBE = """
import json, sys
from cortex_change.cli.main import main
code = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(os_heavy)))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def test_the_client_path_imports_only_the_standard_library(server: Server) -> None:
    change_id = server.client("dev", "create", "normal", "deployment", "Lean").out.strip()
    env = server.env(
        CORTEX_CHANGE_URL=server.url,
        CORTEX_CHANGE_TOKEN=server.token("dev"),
        CORTEX_CHANGE_DB=str(server.nowhere),
    )
    for args in (("show", change_id), ("assess", change_id), ("list",), ("metrics", "--json")):
        script = f"os_heavy = {json.dumps(json.dumps(HEAVY))}\n{PROBE}"
        proc = subprocess.run(
            [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, check=False
        )
        report = json.loads(proc.stderr.strip().splitlines()[-1])
        assert report == {"code": 0, "heavy": []}, (args, proc.stderr)
