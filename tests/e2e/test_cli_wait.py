"""`wait ID --for STATE`: a pipeline's filed change, waited for by a real subprocess."""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli


def _assessed(cli: Cli) -> str:
    change_id = cli.create(
        "normal", "deployment", "Deploy web", "d", "--rollback-plan", '{"steps": ["undo"]}'
    )
    cli.ok("assess", change_id)  # medium risk: a technical lead approves
    return change_id


def test_wait_returns_when_the_change_is_approved(cli: Cli) -> None:
    change_id = _assessed(cli)
    waiting = subprocess.Popen(
        cli.command("wait", change_id, "--for", "approved", "--timeout", "30s", "--interval", "200ms"),
        env=cli.environment(),
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    assert waiting.poll() is None  # still waiting: the change is pending approval
    cli.ok("approve", change_id, "tech-lead", "ok")
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert out == f"{change_id} is approved\n"


def test_wait_gives_up_on_a_rejected_change_and_at_its_timeout(cli: Cli) -> None:
    change_id = _assessed(cli)
    res = cli("wait", change_id, "--for", "approved", "--timeout", "1s", "--interval", "200ms")
    assert (res.code, res.out) == (
        1,
        f"{change_id} is still pending_approval after 1s: timed out waiting for approved\n",
    )
    cli.ok("reject", change_id, "tech-lead", "not now")
    res = cli("wait", change_id, "--for", "closed", "--timeout", "10s")
    assert (res.code, res.out) == (1, f"{change_id} is rejected: it will not be closed\n")
    bad = cli("wait", change_id, "--for", "approved", "--timeout", "forever")
    assert bad.code == 2 and "--timeout: 'forever' is not a duration" in bad.err
    missing = cli("wait", "RFC-20260101000000-abcdef", "--for", "approved")
    assert missing.code == 3
