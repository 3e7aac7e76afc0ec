"""`integrate` and the demo as users run them: real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], db: Path, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CORTEX_CHANGE_USER"}
    env["CORTEX_CHANGE_DB"] = str(db)
    env.update(extra)
    return subprocess.run(
        [str(BIN / "cortex-change"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_restart_pod_one_shot_prints_the_id_last(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    done = _run(["integrate", "kubernetes", "restart_pod", "worker-001"], db, tmp_path)
    assert done.returncode == 0, done.stderr
    change_id = done.stdout.strip().splitlines()[-1]
    assert done.stdout == change_id + "\n"
    assert "implementation scheduled in 300s" in done.stderr
    shown = json.loads(_run(["show", change_id], db, tmp_path).stdout)
    assert (shown["type"], shown["state"]) == ("standard", "approved")
    actions = [e["action"] for e in shown["audit_trail"]]
    assert actions == ["created", "assessed", "approved"]


def test_restart_pod_with_no_delay_runs_its_plan_at_once(tmp_path: Path) -> None:
    """IMPLEMENTATION_DELAY=0: integrate carries the change out itself (a user runbook that runs)."""
    (tmp_path / "cortex-change.toml").write_text(
        """
[runbooks.record-restart]
version = 1
run = ["sh", "-c", "echo restarted $0 >> restarts.log", "{target}"]
params = { target = "[a-z0-9-]+" }

[integrations.kubernetes.restart_pod]
summary = "Restart a pod (here: record it in a file)"
type = "standard"
category = "infrastructure"
model = "worker-restart"
text_field = "target"
title = "Restart {target}"
implementation_plan = { steps = [{ runbook = "record-restart", params = { target = "{target}" } }] }
""",
        "utf-8",
    )
    db = tmp_path / "c.db"
    done = _run(
        ["integrate", "kubernetes", "restart_pod", "worker-001"], db, tmp_path, IMPLEMENTATION_DELAY="0"
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(_run(["show", done.stdout.strip()], db, tmp_path).stdout)
    assert (shown["state"], shown["closure_status"]) == ("closed", "successful")
    assert (tmp_path / "restarts.log").read_text("utf-8") == "restarted worker-001\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["integrate", "kubernetes", "teleport", "x"], 2, "action: unknown action 'teleport' for kubernetes"),
        (["integrate", "security-master", "patch_cve", '{"cve_id": '], 2, "details: malformed JSON"),
        (["integrate", "worker", "worker-001", "execute", "RFC-20260101000000-abcdef"], 3, "no change"),
    ],
)
def test_integrate_errors_are_one_line(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    done = _run(args, tmp_path / "c.db", tmp_path)
    assert done.returncode == code
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr


def test_models_and_integrations_are_listed(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    models = _run(["models", "list"], db, tmp_path).stdout
    for name in ("worker-restart", "autoscale", "security-patch", "config-update"):
        assert name in models
    shown = json.loads(_run(["models", "show", "autoscale"], db, tmp_path).stdout)
    assert shown["condition"]["min"] == 1 and shown["condition"]["max"] == 10
    assert _run(["models", "show", "nope"], db, tmp_path).returncode == 3
    listing = json.loads(_run(["integrations", "--json"], db, tmp_path).stdout)
    pairs = {(r["component"], r["action"]) for r in listing}
    assert ("kubernetes", "scale") in pairs and ("worker", "report_failure") in pairs
    assert len(pairs) == 23


def test_youtube_bugfix_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CORTEX_CHANGE_DB", "CORTEX_CHANGE_USER")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [str(ROOT / "examples" / "youtube-bugfix.sh")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "review recorded: accepted by security-lead" in out
    assert '"approval_required": "emergency-cab"' in out
    # The plan really ran: the failed release candidate was rolled back to the previous version,
    # then the corrected release went out.
    assert "closed rolled_back (step 3/3 (runbook smoke-test v1) failed: exit code 1" in done.stderr
    # Its steps are runbooks: the audit trail shows each one's command as expanded and run.
    assert "step_succeeded    cp -R releases/2.3.1-rc1/. service/  exit 0" in out
    assert "step_failed       ./smoke-test.sh service  exit 1" in out
    assert "restored the previous version\n  service/VERSION = 2.3.0;" in out
    assert "service/VERSION = 2.3.1; service/transcript.txt = Never gonna give you up" in out
    assert "pods/youtube-worker-001 generation = 1" in out  # the standard change's plan ran
    assert "audit chain intact" in out
    assert "\033[" not in out  # no colours when not on a terminal
