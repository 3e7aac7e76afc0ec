"""Runbooks in the catalog (SPEC §11): built-ins, user tables, filing and running them.

Filing and running go through the real console script (`cli`: SQLite, then PostgreSQL). A fake
`kubectl` first on PATH records each argv it receives, item by item, so the tests see exactly
what ran; the built-in Kubernetes templates carry runbook plans.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cortex_change.catalog.loader import load_catalog
from cortex_change.domain.errors import ConfigError, ValidationError
from cortex_change.domain.plan import RunStep
from cortex_change.domain.runbooks import expand

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Cli
    from cortex_change.services.context import Context

USER_RUNBOOK = """
[runbooks.touch-marker]
version = 1
description = "Record that it ran"
run = ["sh", "-c", "echo ran $0 >> marker.log", "{what}"]
params = { what = "[a-z]+" }
"""


class FakeKubectl:
    """A `kubectl` that appends `[item]` per argv item, one line per run, to `marker`."""

    def __init__(self, directory: Path) -> None:
        self.bin = directory / "fake-bin"
        self.bin.mkdir()
        self.marker = directory / "kubectl-argv.log"
        script = self.bin / "kubectl"
        script.write_text(
            f'#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done >> "{self.marker}"\n'
            f'echo >> "{self.marker}"\n',
            "utf-8",
        )
        script.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", **extra}

    def runs(self) -> list[str]:
        return self.marker.read_text("utf-8").splitlines() if self.marker.exists() else []


@pytest.fixture
def kubectl(tmp_path: Path) -> FakeKubectl:
    return FakeKubectl(tmp_path)


def _toml(cli: Cli, text: str) -> None:
    (cli.cwd / "cortex-change.toml").write_text(text, "utf-8")


def _last_id(out: str) -> str:
    return out.strip().splitlines()[-1]


def _step_events(cli: Cli, change_id: str) -> list[dict[str, Any]]:
    return [e for e in cli.events(change_id) if e["action"].startswith("step_")]


# --- the catalog ----------------------------------------------------------------------------


def test_builtin_kubernetes_runbooks(ctx: Context) -> None:
    books = load_catalog(ctx.settings).runbooks
    assert {"kubectl-rollout-restart", "kubectl-scale", "kubectl-rollout-undo"} <= set(books)
    assert all(b.version >= 1 and b.run is not None and b.run[0] == "kubectl" for b in books.values())
    scale = expand(books["kubectl-scale"], {"deployment": "cortex-chat", "replicas": 8})
    assert scale == RunStep(
        ("kubectl", "scale", "deployment/cortex-chat", "--replicas=8", "-n", "default"), timeout=120.0
    )
    undo = expand(books["kubectl-rollout-undo"], {"deployment": "api.v2", "namespace": "prod"})
    assert isinstance(undo, RunStep)
    assert undo.command == ("kubectl", "rollout", "undo", "deployment/api.v2", "-n", "prod")
    for value in ("a" * 254, "-web", "web.", "a_b", "UPPER"):
        with pytest.raises(ValidationError, match="does not fully match"):
            expand(books["kubectl-rollout-restart"], {"deployment": value})


def test_builtin_kubernetes_templates_plan_with_runbooks(ctx: Context) -> None:
    templates = load_catalog(ctx.settings).templates["kubernetes"]
    restart, scale = templates["restart_pod"], templates["scale"]
    assert restart.implementation_plan == {
        "steps": [{"runbook": "kubectl-rollout-restart", "params": {"deployment": "{target}"}}]
    }
    assert scale.implementation_plan == {
        "steps": [
            {"runbook": "kubectl-scale", "params": {"deployment": "{deployment}", "replicas": "{replicas}"}}
        ]
    }
    assert restart.rollback_plan is not None
    assert [s["runbook"] for s in restart.rollback_plan["steps"]] == ["kubectl-rollout-undo"]
    # `rollout undo` would revert the pod template, not the count: a person scales back.
    assert scale.rollback_plan is not None
    assert all(isinstance(s, str) for s in scale.rollback_plan["steps"])


def test_user_runbooks_add_and_replace_builtins(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    (tmp_path / "cortex-change.toml").write_text(
        USER_RUNBOOK
        + """
[runbooks.kubectl-rollout-restart]
version = 7
run = ["kubectl", "rollout", "restart", "deployment/{deployment}"]
params = { deployment = "[a-z]+" }
""",
        "utf-8",
    )
    books = load_catalog(make_ctx().settings).runbooks
    assert books["touch-marker"].version == 1
    assert books["kubectl-rollout-restart"].version == 7
    assert dict(books["kubectl-rollout-restart"].params) == {"deployment": "[a-z]+"}
    assert books["kubectl-scale"].version == 1  # the other built-ins stay


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[runbooks.x]\nversion = 1\nrun = ["a", "{p}"]\nparams = { p = "[a-" }\n', "runbooks.x.params.p: "),
        ('[runbooks.x]\nversion = 1\nrun = ["a", "{p}"]\n', "runbooks.x: slot {p} has no parameter"),
        (
            '[runbooks.x]\nversion = 1\nrun = ["a", "{p}"]\nparams = { p = "" }\n',
            "runbooks.x.params.p: needs a",
        ),
        (
            '[runbooks.x]\nversion = 1\nrun = ["a"]\nhttp = { url = "https://h/" }\n',
            "runbooks.x: needs exactly one of run",
        ),
        ("[runbooks.x]\nversion = 1\n", "runbooks.x: needs exactly one of run"),
        ('[runbooks.x]\nrun = ["a"]\n', "runbooks.x.version: None is not allowed"),
        ('[runbooks.x]\nversion = -1\nrun = ["a"]\n', "runbooks.x.version: -1 is not allowed"),
        ('[runbooks.x]\nversion = "2"\nrun = ["a"]\n', "runbooks.x.version: '2' is not allowed"),
        ("[runbooks]\nx = 5\n", "runbooks.x: must be a TOML table"),
        (
            '[integrations.a.b]\nsummary = "s"\nimplementation_plan = { steps = [{ runbook = "ghost" }] }\n',
            "integrations.a.b.implementation_plan step 1: unknown runbook 'ghost'; "
            "known: kubectl-rollout-restart",
        ),
        (
            '[models.worker-restart]\nmax_level = "extreme"\n'
            'condition = { kind = "rate", field = "t", limit = 3 }\n',
            "models.worker-restart.max_level: 'extreme' is not allowed; allowed: low, medium, high, critical",
        ),
    ],
)
def test_bad_user_tables_are_refused_naming_the_table(
    make_ctx: Callable[..., Context], tmp_path: Path, toml: str, message: str
) -> None:
    (tmp_path / "cortex-change.toml").write_text(toml, "utf-8")
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load_catalog(make_ctx().settings)


def test_models_max_level(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    models = load_catalog(make_ctx().settings).models
    assert {m.max_level.value for m in models.values()} == {"medium"}
    assert models["autoscale"].document()["max_level"] == "medium"
    (tmp_path / "cortex-change.toml").write_text(
        '[models.autoscale]\nmax_level = "high"\n'
        'condition = { kind = "range", field = "replicas", min = 1, max = 10 }\n',
        "utf-8",
    )
    assert load_catalog(make_ctx().settings).models["autoscale"].document()["max_level"] == "high"


# --- filing: checked and stamped ------------------------------------------------------------


def _plan(*steps: Any) -> str:
    return json.dumps({"steps": list(steps)})


def test_an_unknown_runbook_is_refused_at_filing(cli: Cli) -> None:
    res = cli(
        "create", "normal", "deployment", "Restart", "--as", "alice",
        "--implementation-plan", _plan({"runbook": "kubectl-restart", "params": {"deployment": "web"}}),
    )  # fmt: skip
    assert res.code == 2
    assert res.err == (
        "cortex-change: implementation_plan step 1 runbook: unknown runbook 'kubectl-restart'; "
        "known: kubectl-rollout-restart, kubectl-rollout-undo, kubectl-scale\n"
    )
    assert cli.counts() == (0, 0)


def test_filing_stamps_the_catalog_version(cli: Cli) -> None:
    restart = {"runbook": "kubectl-rollout-restart", "params": {"deployment": "web"}}
    undo = {"runbook": "kubectl-rollout-undo", "params": {"deployment": "web", "namespace": "prod"}}
    change_id = cli.create(
        "normal", "deployment", "Restart web",
        "--implementation-plan", _plan("Announce in #deploys", restart),
        "--rollback-plan", _plan(undo),
    )  # fmt: skip
    doc = cli.show(change_id)
    assert doc["implementation_plan"]["steps"] == ["Announce in #deploys", {**restart, "version": 1}]
    assert doc["rollback_plan"]["steps"] == [{**undo, "version": 1}]
    # An update is checked and stamped the same way.
    scale = {"runbook": "kubectl-scale", "params": {"deployment": "web", "replicas": 3}}
    cli.ok("update", change_id, "--rollback-plan", _plan(scale), "--as", "alice")
    assert cli.show(change_id)["rollback_plan"]["steps"] == [{**scale, "version": 1}]


def test_naming_another_version_is_refused(cli: Cli) -> None:
    step = {"runbook": "kubectl-rollout-restart", "params": {"deployment": "web"}, "version": 2}
    res = cli("create", "normal", "deployment", "Restart", "--as", "alice", "--rollback-plan", _plan(step))
    assert (res.code, res.err) == (
        2,
        "cortex-change: rollback_plan step 1 version: runbook kubectl-rollout-restart is at version 1 "
        "in the catalog, not 2\n",
    )
    assert cli.counts() == (0, 0)
    same = cli.create("normal", "deployment", "Restart", "--rollback-plan", _plan({**step, "version": 1}))
    assert cli.show(same)["rollback_plan"]["steps"][0]["version"] == 1


def test_bad_parameters_are_refused_at_update_and_nothing_changes(cli: Cli) -> None:
    change_id = cli.create("normal", "deployment", "Scale web")
    before = cli.record(change_id)
    bad = {"runbook": "kubectl-scale", "params": {"deployment": "web", "replicas": "3; rm -rf /"}}
    res = cli("update", change_id, "--implementation-plan", _plan(bad), "--as", "alice")
    assert res.code == 2
    assert res.err == (
        "cortex-change: implementation_plan step 1 runbook kubectl-scale params.replicas: "
        "'3; rm -rf /' does not fully match [0-9]{1,5}\n"
    )
    extra = {"runbook": "kubectl-scale", "params": {"deployment": "web", "replicas": 3, "force": "yes"}}
    res = cli("update", change_id, "--implementation-plan", _plan(extra), "--as", "alice")
    assert (
        res.code == 2 and "unknown parameter 'force'; parameters: deployment, namespace, replicas" in res.err
    )
    assert cli.record(change_id) == before


@pytest.mark.parametrize(
    ("action", "details", "field"),
    [
        *(
            ("restart_pod", target, "runbook kubectl-rollout-restart params.deployment")
            for target in (
                "web 1",
                "$(id)",
                "web;rm -rf /",
                "web\u200b1",
                "../etc",
                "`id`",
                "Web-1",
                "web-1 --all",
            )
        ),
        ("restart_pod", "web\nrm", "affected_services"),  # the target is a service name too
        ("scale", '{"deployment": "web", "replicas": "3\\nkubectl delete ns prod"}', "params.replicas"),
        ("scale", '{"deployment": "web", "replicas": "1e3"}', "params.replicas"),
        ("scale", '{"deployment": "web", "replicas": -1}', "params.replicas"),
        ("scale", '{"replicas": 3}', "params.deployment"),  # missing: filled as ""
    ],
)
def test_integrate_with_details_the_runbook_refuses_writes_nothing(
    cli: Cli, kubectl: FakeKubectl, action: str, details: str, field: str
) -> None:
    res = cli("integrate", "kubernetes", action, details, env=kubectl.env(IMPLEMENTATION_DELAY="0"))
    assert res.code == 2, res.err
    assert re.match(
        rf"cortex-change: (implementation_plan step 1 )?(runbook kubectl-\S+ )?{field}: ", res.err
    )
    assert len(res.err.splitlines()) == 1
    assert cli.counts() == (0, 0)
    assert kubectl.runs() == []


# --- running --------------------------------------------------------------------------------


def test_restart_pod_runs_the_runbooks_exact_argv(cli: Cli, kubectl: FakeKubectl) -> None:
    res = cli("integrate", "kubernetes", "restart_pod", "web-1", env=kubectl.env(IMPLEMENTATION_DELAY="0"))
    assert res.code == 0, res.err
    change_id = _last_id(res.out)
    assert kubectl.runs() == ["[rollout][restart][deployment/web-1][-n][default]"]
    doc = cli.show(change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "successful")
    started, succeeded = _step_events(cli, change_id)
    for event in (started, succeeded):
        assert event["details"]["runbook"] == "kubectl-rollout-restart"
        assert event["details"]["runbook_version"] == 1
        assert event["details"]["expanded"] == "kubectl rollout restart deployment/web-1 -n default"
    assert succeeded["action"] == "step_succeeded"


def test_scale_runs_kubectl_scale(cli: Cli, kubectl: FakeKubectl) -> None:
    details = json.dumps({"deployment": "cortex-chat", "replicas": 4})
    res = cli("integrate", "kubernetes", "scale", details, env=kubectl.env(IMPLEMENTATION_DELAY="0"))
    assert res.code == 0, res.err
    assert kubectl.runs() == ["[scale][deployment/cortex-chat][--replicas=4][-n][default]"]


def test_a_runbook_changed_after_approval_fails_its_step_and_runs_nothing(
    cli: Cli, kubectl: FakeKubectl
) -> None:
    change_id = _last_id(cli.ok("integrate", "kubernetes", "restart_pod", "web-1"))
    assert cli.show(change_id)["state"] == "approved"
    _toml(
        cli,
        """
[runbooks.kubectl-rollout-restart]
version = 2
description = "Now with --all: not what was approved"
run = ["kubectl", "rollout", "restart", "deployment/{deployment}", "--all", "-n", "{namespace}"]
params = { deployment = "[a-z0-9-]+", namespace = "[a-z0-9-]+" }
defaults = { namespace = "default" }
""",
    )
    env = kubectl.env(AUTO_ROLLBACK_ENABLED="false")
    res = cli("implement", change_id, "--as", "kubernetes", env=env)
    assert kubectl.runs() == []
    why = (
        "runbook kubectl-rollout-restart: changed after approval (filed at version 1, the catalog now "
        "has version 2); nothing was run"
    )
    (failed,) = [e for e in _step_events(cli, change_id) if e["action"] == "step_failed"]
    assert failed["details"]["error"] == why
    assert (failed["details"]["runbook"], failed["details"]["runbook_version"]) == (
        "kubectl-rollout-restart",
        1,
    )
    doc = cli.show(change_id)
    assert (doc["state"], doc["closure_status"]) == ("closed", "failed")
    assert why in doc["closure_notes"]
    assert (res.code, res.out) == (1, f"{change_id}: closed failed: {doc['closure_notes']}\n")


def _approved_hotfix(cli: Cli) -> str:
    """An emergency whose plan runs the user runbook `touch-marker`: approved at once (no ad-hoc step)."""
    _toml(cli, USER_RUNBOOK)
    step = {"runbook": "touch-marker", "params": {"what": "fix"}}
    change_id = cli.create(
        "emergency", "deployment", "Hotfix", "--implementation-plan", _plan(step),
        "--rollback-plan", _plan("Revert by hand"),
    )  # fmt: skip
    cli.ok("assess", change_id)
    return change_id


def test_a_runbook_gone_from_the_catalog_fails_its_step(cli: Cli) -> None:
    change_id = _approved_hotfix(cli)
    assert cli.show(change_id)["state"] == "approved"
    _toml(cli, "")
    res = cli("implement", change_id, "--as", "alice", env={"AUTO_ROLLBACK_ENABLED": "false"})
    assert res.code == 1, res.err
    assert not (cli.cwd / "marker.log").exists()
    (failed,) = [e for e in _step_events(cli, change_id) if e["action"] == "step_failed"]
    assert failed["details"]["error"] == "runbook touch-marker: is no longer in the catalog; nothing was run"


def test_a_user_runbook_runs_when_unchanged(cli: Cli) -> None:
    change_id = _approved_hotfix(cli)
    cli.ok("implement", change_id, "--as", "alice")
    assert (cli.cwd / "marker.log").read_text("utf-8") == "ran fix\n"
    assert cli.show(change_id)["closure_status"] == "successful"


def test_an_external_worker_is_handed_the_expanded_runbook_steps(cli: Cli) -> None:
    change_id = _last_id(cli.ok("integrate", "kubernetes", "restart_pod", "web-1"))
    assert cli.show(change_id)["state"] == "approved"  # pre-approved; the worker takes it
    handout = json.loads(cli.ok("worker", "execute", "w1", change_id))
    tags = {"runbook": "kubectl-rollout-restart", "runbook_version": 1}
    assert handout["implementation_plan"]["steps"] == [
        {
            "run": ["kubectl", "rollout", "restart", "deployment/web-1", "-n", "default"],
            "timeout": 120.0,  # the runbook's own
            **tags,
        }
    ]
    (undo,) = handout["rollback_plan"]["steps"]
    assert undo["run"] == ["kubectl", "rollout", "undo", "deployment/web-1", "-n", "default"]
    assert cli.show(change_id)["implementation_plan"]["steps"][0]["runbook"] == "kubectl-rollout-restart"
