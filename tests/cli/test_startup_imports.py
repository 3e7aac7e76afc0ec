"""What each command may import (issue 12): start-up time is import time, so a stray import fails here.

No timing: the sets of modules are pinned instead. Each command runs in a fresh interpreter on a
real store; the project modules it loaded must be within its allowance, and the costly standard
library modules that only some commands need (dataclasses pulls in inspect, ast, dis, tokenize;
hashlib loads OpenSSL; contextlib only writes use) must not be loaded by commands that do not need
them, and typing by none of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import TEST_IMPLEMENTERS

PROBE = """
import json, sys
from cortex_change.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

# Every command line starts with these.
BASE = {
    "",
    "cli",
    "cli.exits",
    "cli.main",
    "cli.parser",
    "cli.registry",
    "cli.render",
    "domain",
    "domain.errors",
}
# A command on the local store also opens it through these.
LOCAL = {
    "domain.values",
    "cli.commands",
    "cli.gateway",
    "cli.inputs",
    "config",
    "domain.policy",
    "services",
    "services.context",
    "store",
    "store.db",
}
# The record as a document: what `show` and every lifecycle command read and print.
RECORD = {
    "domain.codec",
    "domain.compliance",
    "domain.events",
    "domain.lifecycle",
    "domain.model",
    "domain.risk",
    "domain.routing",
    "domain.validation",
    "services.queries",
    "store.audit",
    "store.changes",
}
READ = BASE | LOCAL | RECORD
# The write kernel: rules, the one write path, what events set going.
WRITE = READ | {
    "domain.agents",  # who acts: an agent's change and decisions follow their own rules
    "domain.fields",  # the field table: create's checks, and update's rules in workflow
    "domain.notifications",
    "domain.permissions",
    "domain.plan",
    "domain.staging",
    "domain.standard",
    "domain.workflow",
    "notify",
    "notify.channels",
    "notify.message",
    "services.changes",
    "services.followups",
    "services.runbooks",
    "services.unit",
    "store.leases",
    "store.outbox",
    "store.timers",
    "store.tokens",
}
# An assessment reads the CMDB's blast radius, the kill switch, and records what a learned risk
# model may know (and its prediction, with one: docs/risk-model.md).
ASSESS = WRITE | {
    "domain.canary",  # the performance impact forecast from earlier statistical validations (~0.4 ms)
    "domain.cmdb",
    "domain.features",
    "domain.prediction",
    "services.cmdb",
    "store.cmdb",
    "store.halt",
    "store.risk",
}
ALLOWED = {"show": READ, "list": READ, "create": WRITE, "approve": WRITE, "assess": ASSESS}
NEVER_FOR_READS = {"dataclasses", "inspect", "hashlib", "urllib.parse", "decimal", "contextlib"}
# typing costs ~4 ms and no standard library module these commands use imports it: our modules import
# it only under `if TYPE_CHECKING:` (annotations are strings, `from __future__ import annotations`).
# shutil (with zlib, bz2, lzma) came from argparse's formatter; cli/parser.py's Parser avoids it.
NEVER = {"dataclasses", "inspect", "ast", "dis", "tokenize", "typing", "shutil"}


def _modules(env: dict[str, str], cwd: Path, *args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    return set(report["modules"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path, str]:
    """A store with one change awaiting a technical lead's approval."""
    cwd = tmp_path_factory.mktemp("imports")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    env.update(
        CORTEX_CHANGE_DB=str(cwd / "store.db"), CORTEX_CHANGE_USER="alice", IMPLEMENTERS=TEST_IMPLEMENTERS
    )
    run = [sys.executable, "-m", "cortex_change"]
    made = subprocess.run(
        [*run, "create", "normal", "deployment", "Pinned", "d"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    change_id = made.stdout.strip()
    subprocess.run([*run, "assess", change_id], env=env, cwd=cwd, capture_output=True, check=True)
    return env, cwd, change_id


@pytest.mark.parametrize("command", sorted(ALLOWED))
def test_each_command_imports_only_its_own_code(
    store: tuple[dict[str, str], Path, str], command: str
) -> None:
    env, cwd, change_id = store
    fresh = ""
    if command == "assess":  # a change of its own: the store's one is approved by `approve`
        run = [sys.executable, "-m", "cortex_change", "create", "normal", "deployment", "Fresh", "d"]
        made = subprocess.run(run, env=env, cwd=cwd, capture_output=True, text=True, check=True)
        fresh = made.stdout.strip()
    args = {
        "show": ("show", change_id),
        "list": ("list", "pending"),
        "create": ("create", "normal", "deployment", "Another", "d"),
        "approve": ("approve", change_id, "tech-lead", "read it"),
        "assess": ("assess", fresh),
    }[command]
    loaded = _modules(env, cwd, *args)
    ours = {
        m.removeprefix("cortex_change").removeprefix(".") for m in loaded if m.startswith("cortex_change")
    }
    assert ours - ALLOWED[command] == set(), f"{command} imports more than its own code"
    assert loaded & NEVER == set(), f"{command} imports typing, or builds dataclasses (or what they pull in)"
    if ALLOWED[command] is READ:
        assert loaded & NEVER_FOR_READS == set(), f"{command} (a read) imports what only writes need"
