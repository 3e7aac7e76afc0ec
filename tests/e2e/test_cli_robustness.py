"""Issue 11 (robustness) through the real console script, on both backends: empty reasons, names
and details; control characters in human-readable output; whole replicas; rate limits that
normalise identifiers; empty role lists and boolean spellings; `review overdue`; a missing
optional package."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cortex_change.services.changes import assess_change, review_change
from support import FakeClock, file_change

if TYPE_CHECKING:
    from conftest import Cli
    from cortex_change.services.context import Context

TEXT_PLANS = ("--implementation-plan", '{"steps": ["deploy"]}', "--rollback-plan", '{"steps": ["undo"]}')
# Raw C0 (other than the newline ending a line), DEL and C1 characters: none may reach a terminal.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _refused(cli: Cli, args: list[str], field: str, change_id: str) -> None:
    """Exit 2, one line naming `field`, and nothing written (no record, no event, no new version)."""
    before, record = cli.counts(), cli.record(change_id)
    res = cli(*args, user="alice")
    assert res.code == 2, (args, res)
    assert res.out == ""
    assert len(res.err.splitlines()) == 1, (args, res.err)
    assert field in res.err, (args, field, res.err)
    assert cli.counts() == before, args
    assert cli.record(change_id) == record, args


# --- 1. empty reasons, names and details -------------------------------------------------------


def test_empty_reasons_names_and_details_are_bad_input(cli: Cli) -> None:
    cid = cli.create("normal", "deployment", "Deploy the feature", *TEXT_PLANS)
    cli.ok("assess", cid)  # medium risk: waits for a technical lead
    cases: list[tuple[list[str], str]] = [
        (["approve", cid, "tech-lead", ""], "reason"),
        (["approve", cid, "tech-lead", " \t "], "reason"),
        (["approve", cid, "", "looks good"], "approver"),
        (["approve", cid, "looks good", "--as", ""], "approver"),
        (["approve", cid, "tech-lead", "looks good", "--role", ""], "role"),
        (["reject", cid, "tech-lead", ""], "reason"),
        (["cancel", cid, ""], "reason"),
        (["cancel", cid], "REASON"),
        (["rollback", cid, " "], "reason"),
        (["review", cid, "security-lead", "concerns", ""], "notes"),
        (["worker", "report_failure", "ops", cid, ""], "reason"),
        (["assess", cid, "--reassess", "--reason", " ", "--as", "change-manager"], "reason"),
        (["create", "normal", "deployment", "T", "--requester", ""], "requested_by"),
        (["create", "normal", "deployment", "T", "d", ""], "requested_by"),
        (["create", "normal", "deployment", "T", "d", "bob", ""], "impact"),
        (["create", "normal", "deployment", "T", "--as", " "], "requested_by"),
        (["integrate", "cicd-master", "build", ""], "details"),
        (["integrate", "cicd-master", "build", "  "], "details"),
        (["integrate", "cicd-master", "build", "{}"], "details"),
        (["integrate", "cicd-master", "build", "api", "--as", ""], "actor"),
        (["integrate", "coordinator-master", "approve", cid, ""], "reason"),
        (["integrate", "worker", "", "execute", cid], "worker"),
        (["worker", "run", "--once", "--name", ""], "--name"),
        (["list", ""], "state"),
        (["audit", "log", ""], "date"),
        (["--db", "", "list"], "--db"),
    ]
    for args, field in cases:
        _refused(cli, args, field, cid)
    assert cli.show(cid)["state"] == "pending_approval"
    assert [e["action"] for e in cli.show(cid)["audit_trail"]][-1] == "approval_requested"


def test_close_notes_may_be_empty_and_reasons_given_are_kept(cli: Cli) -> None:
    cid = cli.create("normal", "deployment", "Deploy the feature", *TEXT_PLANS)
    cli.ok("assess", cid)
    cli.ok("approve", cid, "tech-lead", "reviewed the plan")
    cli.ok("implement", cid, user="alice")
    cli.ok("close", cid, "successful", "", user="alice")
    doc = cli.show(cid)
    assert (doc["state"], doc["closure_notes"]) == ("closed", "")
    assert doc["approvals"][0]["reason"] == "reviewed the plan"
    other = cli.create("normal", "deployment", "Not needed")
    cli.ok("cancel", other, "superseded by a later change", user="alice")
    assert cli.show(other)["closure_notes"] == "superseded by a later change"


# --- 2. control characters in human-readable output ---------------------------------------------

TITLE = "x\x1b[31m red\x7f and \u009b2J done"
APPROVER = "tech\u009blead"  # C1 is allowed in identities (C0 and DEL are refused)
APPROVER_SHOWN = "tech\\u009blead"


def _clean(text: str) -> str:
    assert not RAW_CONTROL.search(text), repr(text)
    return text


def test_control_characters_are_escaped_in_every_human_output(cli: Cli) -> None:
    env = {"TECH_LEADS": f"{APPROVER},tech-lead", "CAB_MEMBERS": f"ops-lead,{APPROVER},security-lead"}
    res = cli("create", "normal", "deployment", TITLE, *TEXT_PLANS, "--as", "al\u009bice", env=env)
    assert res.code == 0, res.err
    cid = res.out.strip()
    assert "al\\u009bice" in _clean(res.err)
    _clean(cli.ok("assess", cid, env=env))
    vote = _clean(cli.ok("approve", cid, APPROVER, "ok", env=env))
    assert f"approved by {APPROVER_SHOWN}" in vote

    listing = _clean(cli.ok("list", env=env))
    assert "x\\u001b[31m red\\u007f and \\u009b2J done" in listing
    log = _clean(cli.ok("audit", "log", env=env))
    created = next(line for line in log.splitlines() if " | created | " in line)
    assert json.loads(created.split(" | ", 4)[4])["title"] == TITLE  # escaped JSON is still JSON
    text = _clean(cli.ok("compliance", "report", "--framework", "soc2", "--period", "today", env=env))
    assert "x\\u001b[31m red" in text
    csv = cli.ok("compliance", "report", "--framework", "soc2", "--period", "today", "--format", "csv")
    assert APPROVER_SHOWN in _clean(csv.replace("\r\n", "\n"))  # RFC 4180 rows end in CRLF

    cab = cli.create(
        "normal", "deployment", TITLE, "--impact", "high", *(f"--service=s{i}" for i in range(4)), *TEXT_PLANS
    )
    cli.ok("assess", cab, env=env)
    agenda = _clean(cli.ok("cab", "agenda", env=env))
    assert "x\\u001b[31m red" in agenda and APPROVER_SHOWN in agenda

    # JSON stays exact JSON
    assert cli.show(cid)["title"] == TITLE
    assert {r["title"] for r in json.loads(cli.ok("list", "--json"))} == {TITLE}
    # error messages echoing the input
    res = cli("create", "normal", "deployment", "T", "--details", '{"\\u001b[2J": 1}')
    assert res.code == 2 and "\\u001b[2J" in _clean(res.err), res.err
    res = cli("list", "--bogus\x1b[2J")
    assert res.code == 2 and "\\u001b[2J" in _clean(res.err), res.err


# --- 3. whole replicas ------------------------------------------------------------------------


def test_autoscale_pre_approves_whole_replica_counts_only(cli: Cli) -> None:
    def scale(replicas: str) -> dict[str, Any]:
        cid = cli.create(
            "standard", "infrastructure", "Scale web", "--model", "autoscale", "--param", replicas
        )
        cli.ok("assess", cid)
        return cli.show(cid)

    half = scale("replicas=2.5")
    assert (half["type"], half["reclassified_from"]) == ("normal", "standard")
    assert half["approval_required"] != "pre-approved"
    assert "replicas" in json.dumps(half["audit_trail"]) and "not a whole number" in json.dumps(
        half["audit_trail"]
    )
    for whole in ("replicas=3", "replicas=4.0"):
        assert scale(whole)["approval_required"] == "pre-approved", whole

    before = cli.counts()
    res = cli("integrate", "kubernetes", "scale", '{"deployment": "web", "replicas": 2.5}')
    assert res.code == 2, res
    assert "replicas" in res.err and len(res.err.splitlines()) == 1
    assert cli.counts() == before


# --- 4. the worker-restart limit counts one worker however it is spelled --------------------------


def _restart(cli: Cli, target: str) -> str:
    cid = cli.create("standard", "infrastructure", "Restart", "--model", "worker-restart", "--param", target)
    cli.ok("assess", cid)
    return str(cli.show(cid)["approval_required"])


def test_worker_restart_limit_normalises_the_worker_name(cli: Cli) -> None:
    assert [_restart(cli, "target=worker-777") for _ in range(3)] == ["pre-approved"] * 3
    for spelling in ("WORKER-777", " worker-777", "worker-777 ", "ｗｏｒｋｅｒ-７７７", "Worker-777"):
        assert _restart(cli, f"target={spelling}") != "pre-approved", spelling
    assert _restart(cli, "target=worker-778") == "pre-approved"

    known = cli.create("normal", "deployment", "Anchor")
    for hidden in ("worker-777\u200b", "wor\u00adker-777", "worker-777\u2028", "\u202eworker-777", "w\ue000"):
        args = ["create", "standard", "infrastructure", "Restart", "--model", "worker-restart"]
        _refused(cli, [*args, "--param", f"target={hidden}", "--as", "alice"], "parameters.target", known)


# --- 5. configuration: empty role lists, boolean spellings ---------------------------------------

ROLE_KEYS = ("TECH_LEADS", "CAB_MEMBERS", "ECAB_MEMBERS", "CISO_MEMBERS", "CTO_MEMBERS", "CHANGE_MANAGERS")
MAY_BE_EMPTY = ("ADMINS", "PHI_SERVICES", "PHI_CIS", "RUNNER_ENV_PASSTHROUGH", "PLAN_SECRETS")


@pytest.fixture
def local(tmp_path: Path, cli_factory: Callable[[Path], Cli]) -> Cli:
    """A CLI on an SQLite file, for commands that read the configuration only."""
    return cli_factory(tmp_path)


@pytest.mark.parametrize("key", [*ROLE_KEYS, "IMPLEMENTERS"])
@pytest.mark.parametrize("value", ["", " , "])
def test_an_empty_role_list_is_refused_naming_the_key(local: Cli, key: str, value: str) -> None:
    res = local("config", "show", env={key: value})
    assert res.code == 2, res
    assert res.err.startswith(f"cortex-change: {key}: names nobody") and len(res.err.splitlines()) == 1


def test_keys_that_may_be_empty_are_accepted(local: Cli) -> None:
    env = dict.fromkeys((*MAY_BE_EMPTY, "HTTP_STEP_ALLOWED_HOSTS"), "")
    rows = {r["key"]: r["value"] for r in json.loads(local.ok("config", "show", "--json", env=env))}
    assert all(rows[k] == "" for k in env)


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("TRUE", True), ("Yes", True), ("on", True),
                                            ("1", True), ("false", False), ("No", False), ("OFF", False),
                                            ("0", False)])  # fmt: skip
def test_boolean_spellings_accepted(local: Cli, raw: str, value: bool) -> None:
    rows = json.loads(local.ok("config", "show", "--json", env={"AUTO_IMPLEMENT": raw}))
    assert next(r["value"] for r in rows if r["key"] == "AUTO_IMPLEMENT") is value


@pytest.mark.parametrize("raw", ["maybe", " true", "y", "enabled", ""])
def test_other_boolean_spellings_are_refused_naming_those_accepted(local: Cli, raw: str) -> None:
    res = local("config", "show", env={"AUTO_IMPLEMENT": raw})
    assert res.code == 2, res
    assert res.err.startswith("cortex-change: AUTO_IMPLEMENT: ")
    assert "true/false, yes/no, on/off or 1/0" in res.err


# --- 6. review overdue ---------------------------------------------------------------------------


def _emergency(ctx: Context, title: str) -> str:
    change = file_change(ctx, type="emergency", category="deployment", title=title, requested_by="alice")
    return assess_change(ctx, change_id=change.change_id).change_id  # EMERGENCY_AUTO_APPROVE: approved


def test_review_overdue_lists_emergency_changes_past_their_review_due_time(
    cli: Cli, make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    cli.create("normal", "deployment", "Not an emergency")
    assert cli.ok("review", "overdue").strip() == "no review is overdue"
    assert json.loads(cli.ok("review", "overdue", "--json")) == []

    clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))
    ctx = make_ctx()
    late = _emergency(ctx, "Hotfix \x1b[31m late")
    clock.advance(minutes=1)
    later = _emergency(ctx, "Second hotfix")
    reviewed = _emergency(ctx, "Reviewed hotfix")
    review_change(ctx, change_id=reviewed, reviewer="security-lead", outcome="accepted", notes="")
    clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(days=2))
    recent = _emergency(ctx, "Reviewed in time? not yet")  # due in 24 h from two days ago: overdue
    clock.set(datetime.now(UTC).replace(microsecond=0))
    _emergency(ctx, "Not due yet")

    rows = json.loads(cli.ok("review", "overdue", "--json"))
    assert [r["change_id"] for r in rows] == [late, later, recent]  # longest overdue first
    first = rows[0]
    assert first["title"] == "Hotfix \x1b[31m late"
    assert (first["type"], first["state"], first["requested_by"]) == ("emergency", "approved", "alice")
    assert first["overdue_seconds"] >= 2 * 86400 - 60
    assert datetime.fromisoformat(first["due_at"]) < datetime.now(UTC)

    text = _clean(cli.ok("review", "overdue"))
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["CHANGE_ID", "DUE_AT", "OVERDUE", "STATE", "REQUESTED_BY"]
    assert [line.split()[0] for line in lines[1:]] == [late, later, recent]
    assert "Hotfix \\u001b[31m late" in lines[1] and " 2d " in lines[1]

    # recording the review takes it off the list
    cli.ok("review", late, "security-lead", "accepted", "justified")
    assert [r["change_id"] for r in json.loads(cli.ok("review", "overdue", "--json"))] == [later, recent]


def test_review_overdue_parses_apart_from_recording_a_review(cli: Cli) -> None:
    known = cli.create("normal", "deployment", "Anchor")
    _refused(cli, ["review", "overdue", "security-lead"], "overdue", known)
    _refused(cli, ["review", "overdue", "--as", "security-lead"], "overdue", known)
    _refused(cli, ["review", known, "security-lead", "accepted", "fine", "--json"], "--json", known)
    _refused(cli, ["review", known], "reviewer", known)


# --- 7. a missing optional package ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "module"), [(("cab", "agenda"), "cronsim"), (("metrics", "push"), "prometheus_client")]
)
def test_a_missing_optional_package_is_exit_5_with_the_install_line(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], module: str
) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / f"{module}.py").write_text(
        f"raise ModuleNotFoundError({f'No module named {module!r}'!r}, name={module!r})\n", "utf-8"
    )
    cli.create("normal", "deployment", "Waiting for the CAB", "--impact", "critical")  # a store to read
    path = os.pathsep.join(p for p in (str(hidden), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, "PROMETHEUS_PUSHGATEWAY": "http://127.0.0.1:9"}
    res = cli(*args, env=env)
    assert res.code == 5, res
    assert len(res.err.splitlines()) == 1 and "Traceback" not in res.err
    assert module in res.err
    assert "pip install 'cortex-change[worker]'" in res.err
    assert cli(*args[:1], "--help").code == 0  # the hidden module is not needed to parse


def test_a_postgresql_store_without_psycopg_is_exit_5_with_the_install_line(cli: Cli, tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "psycopg.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    path = os.pathsep.join(p for p in (str(hidden), os.environ.get("PYTHONPATH", "")) if p)
    res = cli("list", env={"PYTHONPATH": path, "CORTEX_CHANGE_DB": "postgresql://u:S3cretPW@127.0.0.1:9/db"})
    assert res.code == 5, res
    assert res.err.splitlines() == [
        "cortex-change: a PostgreSQL store needs the psycopg package: pip install 'cortex-change[postgres]'"
    ]
