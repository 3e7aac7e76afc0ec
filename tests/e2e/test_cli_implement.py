"""SPEC §7 through the real console script: executable plans, validation, rollback, incidents.

Changes are set up and read back in-process (that is not under test here, and it keeps the
suite fast); every command under test runs as a subprocess in the test's working directory, so
a plan's steps act on files there. HTTP steps and health checks talk to a real local server.
Each test runs on SQLite and on PostgreSQL (`store_url`).
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from cortex_change.services import changes, queries
from cortex_change.services.context import Context, open_context
from support import Garbage, HttpServer, Received, Reply, file_change, prometheus_vector, promql

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cli

    Rows = Callable[[Path | str, str], int]

TOKEN = "tok-9f8e7d6c5b4a3921"


class Service(HttpServer):
    """A real HTTP service on 127.0.0.1 that records every request.

    /health answers `health(n)` for its n-th request; /deploy echoes the Authorization header;
    /api/v1/query answers `samples[query]` like Prometheus; any other path answers 200.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.health: Callable[[int], int] = lambda n: 200  # status of the n-th /health request
        self.health_requests = 0
        self.samples: dict[str, float] = {}  # PromQL -> value
        self.on_deploy: Callable[[], None] = lambda: None
        super().__init__()

    def answer(self, request: Received) -> Reply:
        path = urlsplit(request.path).path
        if path == "/health":
            with self.lock:
                self.health_requests += 1
                n = self.health_requests
            status = self.health(n)
            return Reply(status, b"healthy" if status < 400 else b"unhealthy")
        if path == "/deploy":
            self.on_deploy()
            auth = request.headers.get("authorization")
            return Reply(body=json.dumps({"deployed": True, "auth": auth}).encode())
        if path == "/api/v1/query":
            return Reply(body=prometheus_vector(self.samples.get(promql(request))))
        return Reply()

    def paths(self, method: str | None = None) -> list[str]:
        return [urlsplit(r.path).path for r in self.requests if method is None or r.method == method]


@pytest.fixture
def service() -> Iterator[Service]:
    with Service() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_proxy(cli: Cli) -> None:
    # The CLI's urllib honours proxy variables: 127.0.0.1 must be reached directly. HTTP steps
    # reach only the hosts configured (SPEC §11): here the local services.
    cli.env.update({"NO_PROXY": "*", "no_proxy": "*", "HTTP_STEP_ALLOWED_HOSTS": "127.0.0.1"})


@pytest.fixture
def svc(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """The same store in-process: setting changes up and reading them back is not under test here."""
    monkeypatch.chdir(cli.cwd)
    context = open_context(env={"CORTEX_CHANGE_DB": str(cli.db)})
    yield context
    context.close()


def _approved(
    svc: Context,
    steps: list[Any],
    rollback: list[Any] | None = None,
    validation: dict[str, Any] | None = None,
    rollback_extra: dict[str, Any] | None = None,
) -> str:
    """A low-risk change with these plans, approved: a technical lead approves ad-hoc steps."""
    change = file_change(
        svc,
        type="normal",
        category="documentation",
        title="Roll out v2",
        description="e2e",
        requested_by="alice",
        impact="low",
        implementation_plan={"steps": steps},
        rollback_plan=None if rollback is None else {"steps": rollback, **(rollback_extra or {})},
        validation=validation,
    )
    if changes.assess_change(svc, change_id=change.change_id).state.value == "pending_approval":
        changes.approve_change(svc, change_id=change.change_id, approver="tech-lead", reason="steps read")
    assert queries.get_change(svc, change_id=change.change_id)["state"] == "approved"
    return change.change_id


def _doc(svc: Context, change_id: str) -> dict[str, Any]:
    """What `show ID` prints, read in-process."""
    return queries.get_change(svc, change_id=change_id)


def _trail(doc: dict[str, Any], *actions: str) -> list[dict[str, Any]]:
    return [e for e in doc["audit_trail"] if not actions or e["action"] in actions]


def _actions(doc: dict[str, Any]) -> list[str]:
    return [e["action"] for e in doc["audit_trail"]]


def _audit_log(cli: Cli, doc: dict[str, Any]) -> str:
    """`audit log DATE` for every day the change has events on."""
    days = sorted({e["timestamp"][:10] for e in doc["audit_trail"]})
    return "".join(cli.ok("audit", "log", day) for day in days)


# --- (a) success --------------------------------------------------------------------------------


def test_executable_plan_succeeds_and_every_step_is_audited(
    cli: Cli, svc: Context, service: Service, rows: Rows
) -> None:
    (cli.cwd / "version.txt").write_text("v1\n")
    change_id = _approved(
        svc,
        [
            {"run": "echo v2 > version.txt", "shell": True, "timeout": "10s"},
            {"run": ["cat", "version.txt"]},
            {"http": {"method": "POST", "url": f"{service.origin}/deploy", "expect_status": [200, 201]}},
        ],
        [{"run": "echo v1 > version.txt", "shell": True}],
    )
    res = cli("implement", change_id, "--as", "ops")
    assert res.code == 0, res.err
    assert res.out == (
        f"{change_id}: closed successful: 3 executable step(s) completed; no validation checks configured\n"
    )
    assert res.err == ""  # no progress lines when stderr is not a terminal
    assert (cli.cwd / "version.txt").read_text() == "v2\n"
    assert service.paths("POST") == ["/deploy"]

    doc = cli.show(change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "successful")
    steps = _trail(doc, "step_started", "step_succeeded", "step_failed", "step_manual")
    assert [(e["action"], e["details"]["step"], e["details"]["of"]) for e in steps] == [
        ("step_started", 1, 3),
        ("step_succeeded", 1, 3),
        ("step_started", 2, 3),
        ("step_succeeded", 2, 3),
        ("step_started", 3, 3),
        ("step_succeeded", 3, 3),
    ]
    done = [e["details"] for e in steps if e["action"] == "step_succeeded"]
    assert [d["what"] for d in done] == [
        "echo v2 > version.txt",
        "cat version.txt",
        f"POST {service.origin}/deploy",
    ]
    assert [d.get("exit_code") for d in done] == [0, 0, None]
    assert done[2]["status"] == 200
    assert done[1]["output_tail"] == "v2\n"
    assert all(d["ok"] is True and isinstance(d["duration_seconds"], (int, float)) for d in done)
    assert all(0 <= d["duration_seconds"] < 10 for d in done)
    assert {e["actor"] for e in steps} == {"ops"}
    started = _actions(doc).index("implementation_started")
    assert _actions(doc)[started - 1] == "approved"  # by a technical lead: the steps are ad hoc
    assert _actions(doc)[started:] == [
        "implementation_started",
        *[e["action"] for e in steps],
        "implemented",
        "closed",
    ]
    assert "rollback_started" not in _actions(doc)
    assert all(doc["metrics"][k] for k in ("implementation_started_at", "implemented_at", "closed_at"))

    log = _audit_log(cli, doc)
    lines = [ln for ln in log.splitlines() if f" | {change_id} | step_succeeded | " in ln]
    assert len(lines) == 3
    assert '"exit_code":0' in lines[0] and '"duration_seconds":' in lines[0]
    assert rows(cli.db, "leases") == 0  # released
    assert cli.ok("audit", "verify").startswith("audit chain intact")

    again = cli("implement", change_id, "--as", "ops")  # a closed change is not carried out twice
    assert again.code == 1
    assert "it is closed" in again.err
    assert service.paths("POST") == ["/deploy"]


def test_progress_is_printed_on_a_terminal(cli: Cli, svc: Context) -> None:
    change_id = _approved(svc, [{"run": "true"}, {"run": ["echo", "second step"]}])
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            cli.command("implement", change_id, "--as", "ops"),
            env=cli.environment(),
            cwd=cli.cwd,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
            check=False,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert proc.returncode == 0
    progress = b"".join(chunks).decode()
    assert re.search(r"\[1/2 \+\d+\.\ds\] true", progress), progress
    assert re.search(r"\[2/2 \+\d+\.\ds\] echo second step", progress), progress


# --- (b) (c) failures roll back ----------------------------------------------------------------


def test_failed_step_stops_the_plan_and_the_rollback_restores_the_previous_version(
    cli: Cli, svc: Context
) -> None:
    (cli.cwd / "version.txt").write_text("v1\n")
    change_id = _approved(
        svc,
        [
            {"run": "cp version.txt version.prev && echo v2 > version.txt", "shell": True},
            {"run": "echo migration broke >&2; exit 3", "shell": True},
            {"run": "touch never-run"},
        ],
        [{"run": ["mv", "version.prev", "version.txt"]}],
    )
    res = cli("implement", change_id, "--as", "ops")
    assert res.code == 1, (res.out, res.err)
    assert res.out.startswith(f"{change_id}: closed rolled_back: step 2/3 (")
    assert (cli.cwd / "version.txt").read_text() == "v1\n"
    assert not (cli.cwd / "never-run").exists()

    doc = _doc(svc, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "rolled_back")
    assert "step 2/3" in doc["closure_notes"] and "exit code 3" in doc["closure_notes"]
    assert "rolled back: 1 rollback step(s) succeeded" in doc["closure_notes"]
    (failed,) = _trail(doc, "step_failed")
    assert failed["details"]["step"] == 2
    assert failed["details"]["exit_code"] == 3
    assert failed["details"]["error"] == "exit code 3"
    assert failed["details"]["output_tail"] == "migration broke\n"
    actions = _actions(doc)
    assert actions.index("step_failed") < actions.index("rollback_started") < actions.index("rolled_back")
    assert actions[-3:] == ["rolled_back", "closed", "pir_opened"]  # a review follows (docs/pir.md)
    assert "implemented" not in actions
    (started,) = _trail(doc, "rollback_started")
    assert "step 2/3" in started["details"]["reason"]
    # the rollback's own step is audited after rollback_started
    after = actions[actions.index("rollback_started") :]
    assert after.count("step_started") == 1 and after.count("step_succeeded") == 1
    assert cli.ok("incidents", "list", "--json").strip() == "[]"


def test_step_past_its_timeout_is_killed_and_rolled_back(cli: Cli, svc: Context) -> None:
    change_id = _approved(
        svc,
        [{"run": "sleep 30", "timeout": "500ms"}, {"run": "touch never-run"}],
        [{"run": "touch rolled-back"}],
    )
    began = time.monotonic()
    res = cli("implement", change_id, "--as", "ops")
    assert time.monotonic() - began < 15
    assert res.code == 1
    assert (cli.cwd / "rolled-back").exists()
    assert not (cli.cwd / "never-run").exists()
    doc = _doc(svc, change_id)
    assert doc["closure_status"] == "rolled_back"
    (failed,) = _trail(doc, "step_failed")
    assert failed["details"]["error"] == "timed out after 0.5s"
    assert "exit_code" not in failed["details"]
    assert 0.5 <= failed["details"]["duration_seconds"] < 5


def test_unset_variable_fails_the_step_and_rolls_back(cli: Cli, svc: Context) -> None:
    change_id = _approved(
        svc,
        [{"run": "touch ran-${env:CORTEX_E2E_NOT_SET}", "shell": True}],
        [{"run": "touch rolled-back"}],
    )
    res = cli("implement", change_id, "--as", "ops", env={"PLAN_SECRETS": "CORTEX_E2E_NOT_SET"})
    assert res.code == 1
    assert list(cli.cwd.glob("ran-*")) == []
    doc = _doc(svc, change_id)
    assert doc["closure_status"] == "rolled_back"
    (failed,) = _trail(doc, "step_failed")
    assert "CORTEX_E2E_NOT_SET" in failed["details"]["error"]


# --- (d) a rollback that fails opens an incident ----------------------------------------------


def _incident_of(cli: Cli, change_id: str) -> dict[str, Any]:
    listed = json.loads(cli.ok("incidents", "list", "--json"))
    mine = [i for i in listed if i["change_id"] == change_id]
    assert len(mine) == 1, listed
    assert json.loads(cli.ok("incidents", "list", "--change", change_id, "--json")) == mine
    shown: dict[str, Any] = json.loads(cli.ok("incidents", "show", mine[0]["incident_id"]))
    assert shown == mine[0]
    return shown


def test_failed_rollback_closes_failed_and_opens_an_incident(cli: Cli, svc: Context) -> None:
    change_id = _approved(
        svc,
        [{"run": "false"}],
        [{"run": "echo restoring; exit 7", "shell": True}, {"run": "touch never-run"}],
    )
    res = cli("implement", change_id, "--as", "ops")
    assert res.code == 1
    assert not (cli.cwd / "never-run").exists()
    doc = _doc(svc, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "failed")
    assert "rollback failed" in doc["closure_notes"] and "exit code 7" in doc["closure_notes"]
    assert _actions(doc)[-4:] == ["rollback_failed", "closed", "incident_opened", "pir_opened"]
    (opened,) = _trail(doc, "incident_opened")

    incident = _incident_of(cli, change_id)
    assert incident["incident_id"] == opened["details"]["incident_id"]
    assert re.fullmatch(r"INC-\d{14}-[0-9a-f]{6}", incident["incident_id"])
    assert incident["state"] == "open"
    assert incident["opened_by"] == "ops"
    assert change_id in incident["title"]
    assert "exit code 1" in incident["details"]["reason"]
    assert "exit code 7" in incident["details"]["rollback_failure"]
    text = cli.ok("incidents", "list")
    assert incident["incident_id"] in text and change_id in text
    assert cli.ok("incidents").strip() == text.strip()  # `incidents` alone lists


def test_rollback_past_rollback_timeout_fails_and_opens_an_incident(cli: Cli, svc: Context) -> None:
    change_id = _approved(svc, [{"run": "false"}], [{"run": "sleep 30"}])
    began = time.monotonic()
    res = cli("implement", change_id, "--as", "ops", env={"ROLLBACK_TIMEOUT": "1"})
    assert time.monotonic() - began < 15
    assert res.code == 1
    doc = _doc(svc, change_id)
    assert doc["closure_status"] == "failed"
    # the limit is what is left of ROLLBACK_TIMEOUT when the step starts
    assert re.fullmatch(
        r"timed out after (0\.9\d*|1)s \(the rollback's time limit ran out\)",
        _trail(doc, "step_failed")[-1]["details"]["error"],
    )
    assert _actions(doc)[-4:] == ["rollback_failed", "closed", "incident_opened", "pir_opened"]


def test_rollback_plan_max_duration_bounds_the_rollback(cli: Cli, svc: Context) -> None:
    change_id = _approved(
        svc, [{"run": "false"}], [{"run": "sleep 30"}], rollback_extra={"max_duration": "500ms"}
    )
    began = time.monotonic()
    assert cli("implement", change_id, "--as", "ops").code == 1
    assert time.monotonic() - began < 15
    doc = _doc(svc, change_id)
    assert doc["closure_status"] == "failed"
    assert re.fullmatch(
        r"timed out after 0\.[45]\d*s \(the rollback's time limit ran out\)",
        _trail(doc, "step_failed")[-1]["details"]["error"],
    )


def test_rollback_plan_with_steps_for_people_is_a_failed_rollback(cli: Cli, svc: Context) -> None:
    change_id = _approved(svc, [{"run": "false"}], ["restore the backup by hand"])
    assert cli("implement", change_id, "--as", "ops").code == 1
    doc = _doc(svc, change_id)
    assert doc["closure_status"] == "failed"
    assert doc["closure_notes"].endswith(
        "rollback failed: the rollback plan has steps for people: roll back by hand"
    )
    assert "incident_opened" in _actions(doc)


# --- (e) rollback disabled ----------------------------------------------------------------------


def test_auto_rollback_disabled_closes_failed_and_skips_the_rollback(
    cli: Cli, svc: Context, rows: Rows
) -> None:
    (cli.cwd / "version.txt").write_text("v1\n")
    change_id = _approved(
        svc,
        [{"run": "echo v2 > version.txt", "shell": True}, {"run": "false"}],
        [{"run": "echo v1 > version.txt", "shell": True}],
    )
    res = cli("implement", change_id, "--as", "ops", env={"AUTO_ROLLBACK_ENABLED": "false"})
    assert res.code == 1
    assert (cli.cwd / "version.txt").read_text() == "v2\n"  # nothing restored it
    doc = _doc(svc, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "failed")
    assert "rollback skipped" in doc["closure_notes"]
    actions = _actions(doc)
    assert "rollback_started" not in actions
    assert "rollback_skipped" in actions
    assert actions[-2:] == ["closed", "pir_opened"]
    assert cli.ok("incidents", "list", "--json").strip() == "[]"
    assert rows(cli.db, "leases") == 0


# --- (f) secrets --------------------------------------------------------------------------------


def test_secret_is_used_but_never_written_anywhere(cli: Cli, svc: Context, service: Service) -> None:
    change_id = _approved(
        svc,
        [
            {
                "run": 'printf %s "${env:DEPLOY_TOKEN}" > token.txt; echo using ${env:DEPLOY_TOKEN}',
                "shell": True,
            },
            {
                "http": {
                    "method": "POST",
                    "url": f"{service.origin}/deploy",
                    "headers": {"Authorization": "Bearer ${env:DEPLOY_TOKEN}"},
                    "body": {"token": "${env:DEPLOY_TOKEN}"},
                }
            },
            {"run": ["sh", "-c", 'echo "failing with $1" >&2; exit 2', "sh", "${env:DEPLOY_TOKEN}"]},
        ],
        [{"run": "echo rollback ${env:DEPLOY_TOKEN} > rolled-back.txt", "shell": True}],
    )
    res = cli(
        "implement", change_id, "--as", "ops", env={"DEPLOY_TOKEN": TOKEN, "PLAN_SECRETS": "DEPLOY_TOKEN"}
    )
    assert res.code == 1
    assert (cli.cwd / "token.txt").read_text() == TOKEN  # resolved at run time
    assert (cli.cwd / "rolled-back.txt").read_text() == f"rollback {TOKEN}\n"
    (deploy,) = [r for r in service.requests if r.path == "/deploy"]
    assert deploy.headers["authorization"] == f"Bearer {TOKEN}"
    assert deploy.json() == {"token": TOKEN}

    shown = cli.ok("show", change_id)
    doc = json.loads(shown)
    log = _audit_log(cli, doc)
    for where, text in (("implement", res.out + res.err), ("show", shown), ("audit log", log)):
        assert TOKEN not in text, where
    raw = "".join(json.dumps(e) for e in cli.events(change_id))
    assert TOKEN not in raw
    # what was redacted is visible as such, and the plan keeps the reference, not the value
    outputs = [e["details"].get("output_tail", "") for e in _trail(doc, "step_succeeded", "step_failed")]
    assert "using ***\n" in outputs
    assert '"auth": "Bearer ***"' in " ".join(outputs)
    assert "failing with ***\n" in outputs
    assert "${env:DEPLOY_TOKEN}" in json.dumps(doc["implementation_plan"])
    assert doc["closure_status"] == "rolled_back"


# --- (g) validation in the foreground -----------------------------------------------------------


def test_wait_rolls_back_when_health_turns_bad_mid_validation(
    cli: Cli, svc: Context, service: Service
) -> None:
    service.health = lambda n: 200 if n <= 2 else 500
    change_id = _approved(
        svc,
        [{"http": {"method": "POST", "url": f"{service.origin}/deploy"}}],
        [{"http": {"method": "POST", "url": f"{service.origin}/rollback"}}],
        validation={
            "health_checks": [f"{service.origin}/health"],
            "period": "4s",
            "interval": "300ms",
            "failures_to_trip": 2,
        },
    )
    began = time.monotonic()
    res = cli("implement", change_id, "--wait", "--as", "ops")
    took = time.monotonic() - began
    assert res.code == 1, (res.out, res.err)
    assert took < 10, took
    assert service.paths("POST") == ["/deploy", "/rollback"]
    doc = _doc(svc, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "rolled_back")
    rounds = [e["details"] for e in _trail(doc, "validation_check")]
    assert [(r["round"], r["consecutive_failures"]) for r in rounds] == [(1, 0), (2, 0), (3, 1), (4, 2)]
    assert all(r["failures_to_trip"] == 2 for r in rounds)
    assert rounds[2]["results"] == [
        {"check": f"GET {service.origin}/health", "ok": False, "detail": "status 500, expected 200"}
    ]
    (started,) = _trail(doc, "rollback_started")
    assert started["details"]["reason"].startswith("validation failed 2 times in a row")
    actions = _actions(doc)
    assert (
        actions.index("implemented") < actions.index("validation_check") < actions.index("rollback_started")
    )


def test_wait_closes_successful_when_health_stays_good(cli: Cli, svc: Context, service: Service) -> None:
    change_id = _approved(
        svc,
        [{"run": "true"}],
        validation={
            "health_checks": [{"url": f"{service.origin}/health", "expect_status": 200}],
            "period": "1500ms",
            "interval": "300ms",
            "failures_to_trip": 2,
        },
    )
    res = cli("implement", change_id, "--wait", "--as", "ops")
    assert res.code == 0, (res.out, res.err)
    assert f"{change_id}: closed successful: validation passed" in res.out
    doc = _doc(svc, change_id)
    assert doc["closure_status"] == "successful"
    assert re.fullmatch(
        r"validation passed: (\d+) round\(s\) over 1\.5s, 0 failed check\(s\), never 2 in a row",
        doc["closure_notes"],
    ), doc["closure_notes"]
    rounds = _trail(doc, "validation_check")
    assert len(rounds) >= 2
    assert service.health_requests == len(rounds)


def test_wait_tolerates_failures_that_never_reach_the_threshold(
    cli: Cli, svc: Context, service: Service
) -> None:
    service.health = lambda n: 500 if n % 2 else 200  # bad, good, bad, good...
    change_id = _approved(
        svc,
        [{"run": "true"}],
        [{"run": "touch rolled-back"}],
        validation={
            "health_checks": [f"{service.origin}/health"],
            "period": "1500ms",
            "interval": "300ms",
            "failures_to_trip": 2,
        },
    )
    res = cli("implement", change_id, "--wait", "--as", "ops")
    assert res.code == 0, (res.out, res.err)
    doc = _doc(svc, change_id)
    assert doc["closure_status"] == "successful"
    failed = int(re.search(r"(\d+) failed check", doc["closure_notes"]).group(1))  # type: ignore[union-attr]
    assert failed >= 1
    assert not (cli.cwd / "rolled-back").exists()


def test_wait_rolls_back_on_prometheus_error_rate(cli: Cli, svc: Context, service: Service) -> None:
    service.samples["job:errors:ratio"] = 12.5
    change_id = _approved(
        svc,
        [{"run": "true"}],
        [{"run": "touch rolled-back"}],
        validation={
            "prometheus": {"url": service.origin, "error_rate_query": "job:errors:ratio"},
            "period": "4s",
            "interval": "300ms",
            "failures_to_trip": 1,
        },
    )
    res = cli("implement", change_id, "--wait", "--as", "ops", env={"ERROR_RATE_THRESHOLD": "5"})
    assert res.code == 1
    assert (cli.cwd / "rolled-back").exists()
    doc = _doc(svc, change_id)
    assert doc["closure_status"] == "rolled_back"
    (check,) = _trail(doc, "validation_check")
    assert check["details"]["results"] == [{"check": "error rate %", "ok": False, "detail": "12.5 (limit 5)"}]


def test_wait_compares_latency_with_the_baseline_measured_before_the_change(
    cli: Cli, svc: Context, service: Service
) -> None:
    service.samples["p99_ms"] = 100.0
    service.on_deploy = lambda: service.samples.update({"p99_ms": 450.0})  # the change makes it slow
    change_id = _approved(
        svc,
        [{"http": {"method": "POST", "url": f"{service.origin}/deploy"}}],
        [{"run": "touch rolled-back"}],
        validation={
            "prometheus": {"url": service.origin, "latency_query": "p99_ms"},
            "period": "4s",
            "interval": "300ms",
            "failures_to_trip": 1,
        },
    )
    res = cli("implement", change_id, "--wait", "--as", "ops", env={"LATENCY_THRESHOLD": "200"})
    assert res.code == 1
    doc = _doc(svc, change_id)
    (baseline,) = _trail(doc, "baseline_measured")
    assert baseline["details"]["baseline"] == {"latency": 100.0}
    actions = _actions(doc)
    assert actions.index("baseline_measured") < actions.index("step_started")
    (check,) = _trail(doc, "validation_check")
    assert check["details"]["results"] == [{"check": "latency", "ok": False, "detail": "450 (limit 200)"}]
    assert doc["closure_status"] == "rolled_back"


# --- (h) validation in the worker ---------------------------------------------------------------


def _worker_until_closed(
    cli: Cli, svc: Context, change_id: str, pause: float = 0.3, limit: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while True:
        ticked = json.loads(cli.ok("worker", "run", "--once", "--name", "w-e2e"))
        assert set(ticked) >= {"timers_fired", "flagged_leases", "delivered"}
        doc = _doc(svc, change_id)
        if doc["state"] == "closed" or time.monotonic() > deadline:
            return doc
        time.sleep(pause)


def test_worker_validates_and_closes_successful(cli: Cli, svc: Context, service: Service) -> None:
    change_id = _approved(
        svc,
        [{"run": "true"}],
        validation={
            "health_checks": [f"{service.origin}/health"],
            "period": "1s",
            "interval": "300ms",
            "failures_to_trip": 2,
        },
    )
    res = cli("implement", change_id, "--as", "ops")
    assert res.code == 0
    assert "implemented; validation runs in the worker" in res.out
    assert _doc(svc, change_id)["state"] == "implemented"
    assert service.health_requests == 0  # nothing validated in the foreground

    doc = _worker_until_closed(cli, svc, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "successful")
    assert doc["closure_notes"].startswith("validation passed:")
    rounds = _trail(doc, "validation_check")
    assert rounds and {e["actor"] for e in rounds} == {"worker:w-e2e"}
    assert service.health_requests == len(rounds)


def test_worker_validation_trips_the_rollback(cli: Cli, svc: Context, service: Service) -> None:
    service.health = lambda n: 503
    change_id = _approved(
        svc,
        [{"run": "true"}],
        [{"run": "touch rolled-back"}],
        validation={
            "health_checks": [f"{service.origin}/health"],
            "period": "30s",
            "interval": "300ms",
            "failures_to_trip": 2,
        },
    )
    assert cli("implement", change_id, "--as", "ops").code == 0
    doc = _worker_until_closed(cli, svc, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "rolled_back")
    assert [e["details"]["consecutive_failures"] for e in _trail(doc, "validation_check")] == [1, 2]
    assert (cli.cwd / "rolled-back").exists()  # the worker ran the rollback plan
    assert _trail(doc, "rollback_started")[0]["actor"] == "worker:w-e2e"


# --- (i) text steps -----------------------------------------------------------------------------


def test_text_steps_leave_the_change_implemented_awaiting_close(cli: Cli, svc: Context, rows: Rows) -> None:
    change_id = _approved(
        svc,
        ["Announce in #deploys", {"run": "echo v2 > version.txt", "shell": True}, "Watch the dashboard"],
        [{"run": "touch rolled-back"}],
    )
    res = cli("implement", change_id, "--as", "ops")
    assert res.code == 0, res.err
    assert res.out == f"{change_id}: implemented; report the outcome with: close {change_id} STATUS NOTES\n"
    assert (cli.cwd / "version.txt").read_text() == "v2\n"  # the executable step did run
    doc = _doc(svc, change_id)
    assert (doc["state"], doc["closure_status"]) == ("implemented", None)
    manual = _trail(doc, "step_manual")
    assert [(e["details"]["step"], e["details"]["text"]) for e in manual] == [
        (1, "Announce in #deploys"),
        (3, "Watch the dashboard"),
    ]
    assert Counter(_actions(doc))["step_succeeded"] == 1
    assert rows(cli.db, "leases") == 0

    cli.ok("close", change_id, "successful", "announced and watched", user="ops")
    doc = _doc(svc, change_id)
    assert (doc["state"], doc["closure_status"], doc["closure_notes"]) == (
        "closed",
        "successful",
        "announced and watched",
    )


# --- (j) refusals -------------------------------------------------------------------------------


def test_implementing_a_change_that_is_not_approved_runs_nothing(cli: Cli, svc: Context, rows: Rows) -> None:
    change_id = file_change(
        svc,
        type="normal",
        category="deployment",
        title="Needs a tech lead",
        requested_by="alice",
        implementation_plan={"steps": [{"run": "touch created-by-plan"}]},
    ).change_id
    changes.assess_change(svc, change_id=change_id)
    assert _doc(svc, change_id)["state"] == "pending_approval"
    res = cli("implement", change_id, "--as", "ops")
    assert res.code == 1
    assert "pending_approval" in res.err and "approved" in res.err
    assert not (cli.cwd / "created-by-plan").exists()
    doc = _doc(svc, change_id)
    assert doc["state"] == "pending_approval"
    actions = _actions(doc)
    assert "implementation_started" not in actions and "step_started" not in actions
    assert actions[-1] == "unauthorized_attempt"
    assert rows(cli.db, "leases") == 0

    # neither --resume nor rollback can start it either
    resumed = cli("implement", change_id, "--resume", "--as", "ops")
    assert resumed.code == 1
    assert "only an implementing change can be resumed" in resumed.err
    rolled = cli("rollback", change_id, "never started", "--as", "ops")
    assert rolled.code == 1
    assert "pending_approval" in rolled.err
    assert cli("rollback", change_id, "", "--as", "ops").code == 2  # a reason is required
    assert not (cli.cwd / "created-by-plan").exists()
    assert _doc(svc, change_id)["state"] == "pending_approval"


def test_bad_executable_step_is_refused_at_creation(cli: Cli) -> None:
    plan = json.dumps({"steps": ["ok", {"http": {"method": "FETCH", "url": "http://127.0.0.1/"}}]})
    before = cli.counts()
    res = cli("create", "normal", "deployment", "T", "--implementation-plan", plan, "--as", "alice")
    assert res.code == 2
    assert "implementation_plan step 2 http.method" in res.err
    assert cli.counts() == before


# --- `rollback ID REASON` -----------------------------------------------------------------------


def test_rollback_command_runs_the_rollback_plan(cli: Cli, svc: Context) -> None:
    (cli.cwd / "version.txt").write_text("v1\n")
    change_id = _approved(
        svc,
        [{"run": "echo v2 > version.txt", "shell": True}, "Check the dashboard"],
        [{"run": "echo v1 > version.txt", "shell": True}],
    )
    cli.ok("implement", change_id, "--as", "ops")
    assert (cli.cwd / "version.txt").read_text() == "v2\n"
    res = cli("rollback", change_id, "error rate up after deploy", "--as", "ops")
    assert res.code == 0, res.err
    assert res.out.startswith(
        f"{change_id}: closed rolled_back: rolled back by ops: error rate up after deploy"
    )
    assert (cli.cwd / "version.txt").read_text() == "v1\n"
    doc = _doc(svc, change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "rolled_back")
    (started,) = _trail(doc, "rollback_started")
    assert started["details"]["reason"] == "rolled back by ops: error rate up after deploy"
    assert started["actor"] == "ops"


# --- answers that are not HTTP ------------------------------------------------------------------


def test_http_step_answered_with_garbage_fails_and_rolls_back(
    cli: Cli, svc: Context, garbage: Garbage
) -> None:
    change_id = _approved(
        svc, [{"http": {"method": "POST", "url": f"{garbage.origin}/deploy"}}], [{"run": "touch rolled-back"}]
    )
    res = cli("implement", change_id, "--as", "ops")
    assert "Traceback" not in res.err
    assert res.code == 1
    assert _doc(svc, change_id)["closure_status"] == "rolled_back"


def test_worker_survives_a_health_check_answered_with_garbage(
    cli: Cli, svc: Context, garbage: Garbage
) -> None:
    change_id = _approved(
        svc,
        [{"run": "true"}],
        [{"run": "touch rolled-back"}],
        validation={
            "health_checks": [f"{garbage.origin}/health"],
            "period": "30s",
            "interval": "300ms",
            "failures_to_trip": 1,
        },
    )
    cli.ok("implement", change_id, "--as", "ops")
    time.sleep(1.1)  # the validate timer is due
    res = cli("worker", "run", "--once", "--name", "w-e2e")
    assert "Traceback" not in res.err
    assert res.code == 0
    assert _doc(svc, change_id)["closure_status"] == "rolled_back"
