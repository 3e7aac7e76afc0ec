"""The kill switch with a real worker running (`cortex-change worker run` as a subprocess): `freeze
on` from the CLI while a step runs lets that step finish and stops the plan there; `freeze off`
lets the worker resume it from the next step. Both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cortex_change.domain.fields import ChangeRequest
from cortex_change.services.changes import approve_change, assess_change, create_change, limits
from cortex_change.services.context import open_context
from cortex_change.services.dispatch import queue_implementation
from support import TEST_IMPLEMENTERS

if TYPE_CHECKING:
    from conftest import Cli


@pytest.fixture
def worker(cli: Cli) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            cli.command("worker", "run", "--name", "w1"),
            env=cli.environment({"WORKER_POLL_INTERVAL": "1"}),
            cwd=cli.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)


def _queued(cli: Cli, steps: list[Any]) -> str:
    ctx = open_context(env={"CORTEX_CHANGE_DB": str(cli.db), "IMPLEMENTERS": TEST_IMPLEMENTERS})
    try:
        fields = {
            "type": "normal",
            "category": "documentation",
            "title": "Publish the docs",
            "requested_by": "alice",
            "impact": "low",
            "rollback_plan": {"steps": ["unpublish"]},
            "implementation_plan": {"steps": steps},
        }
        change = create_change(ctx, ChangeRequest.of(fields, limits(ctx.settings)))
        assess_change(ctx, change_id=change.change_id)
        approve_change(ctx, change_id=change.change_id, approver="tech-lead", reason="read the steps")
        queue_implementation(ctx, change_id=change.change_id, actor="alice")
        return str(change.change_id)
    finally:
        ctx.close()


def _until(what: Callable[[], bool], proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not what():
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _actions(cli: Cli, change_id: str) -> list[str]:
    return [e["action"] for e in json.loads(cli.ok("show", change_id))["audit_trail"]]


def test_freeze_on_stops_a_running_worker_after_its_step_and_freeze_off_resumes_it(
    cli: Cli, worker: Callable[[], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    began, one, two = tmp_path / "began", tmp_path / "one", tmp_path / "two"
    change_id = _queued(
        cli,
        [
            {"run": ["sh", "-c", f"touch {began}; sleep 2; touch {one}"], "timeout": 60},
            {"run": ["touch", str(two)]},
        ],
    )
    proc = worker()
    _until(began.exists, proc)
    halted = cli.ok("freeze", "on", "--reason", "INC-77: stop the rollouts", "--as", "change-manager")
    assert "HALTED" in halted and "INC-77" in halted
    _until(lambda: "implementation_paused" in _actions(cli, change_id), proc)
    assert one.exists() and not two.exists()  # the running step finished; the next did not start
    doc = json.loads(cli.ok("show", change_id))
    assert doc["state"] == "implementing"
    assert "automation: HALTED" in cli.ok("config", "show")
    time.sleep(2)  # the worker keeps polling: nothing moves while the switch is on
    assert not two.exists()

    cli.ok("freeze", "off", "--as", "change-manager")
    _until(two.exists, proc)
    _until(lambda: json.loads(cli.ok("show", change_id))["state"] == "closed", proc)
    actions = _actions(cli, change_id)
    assert actions.count("step_succeeded") == 2 and "implementation_resumed" in actions
    assert json.loads(cli.ok("freeze", "status", "--json"))["halted"] is False
