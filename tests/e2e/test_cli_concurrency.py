"""Several real processes act on one change at once: exactly one wins each transition.

The racers are separate processes with their own SQLite connections. Each imports the CLI
first, then waits on a barrier, then runs one command: the reads and writes overlap as
closely as process scheduling allows. The assertions hold whatever the interleaving.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

    from conftest import Cli

# fork is quick (no re-import); each racer still opens its own database connection.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"

RACERS = 6
CAB = [f"cab-{n}" for n in range(1, RACERS + 1)]


def _race_one(barrier: Barrier, env: dict[str, str], cwd: str, argv: list[str], out: str) -> None:
    """Child process: get ready, wait for the others, run one CLI command, report."""
    import contextlib
    import io

    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    from cortex_change.cli.main import main
    from cortex_change.services import changes  # noqa: F401  (import before the race, not during)

    stdout, stderr = io.StringIO(), io.StringIO()
    barrier.wait(timeout=60)
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    Path(out).write_text(json.dumps({"code": code, "out": stdout.getvalue(), "err": stderr.getvalue()}))


def _race(cli: Cli, commands: list[list[str]], tmp: Path) -> list[dict[str, Any]]:
    mp = multiprocessing.get_context(START_METHOD)
    barrier = mp.Barrier(len(commands))
    env = cli.environment()
    procs = []
    for n, argv in enumerate(commands):
        target = str(tmp / f"racer-{n}.json")
        proc = mp.Process(target=_race_one, args=(barrier, env, str(cli.cwd), argv, target))
        proc.start()
        procs.append((proc, target))
    results = []
    for proc, target in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0, f"racer crashed with {proc.exitcode}"
        results.append(json.loads(Path(target).read_text()))
    return results


def _approved_change(cli: Cli) -> str:
    change_id = cli.create("normal", "documentation", "Racy", "--impact", "low")
    cli.ok("assess", change_id)  # auto-approved
    assert cli.show(change_id)["state"] == "approved"
    return change_id


def _check_losers(results: list[dict[str, Any]]) -> Counter[int]:
    codes = Counter(r["code"] for r in results)
    assert set(codes) <= {0, 1, 4}, results
    for r in results:
        assert "Traceback" not in r["err"]
        if r["code"] == 4:
            assert "nothing was written" in r["err"]
        if r["code"] != 0:
            assert len(r["err"].splitlines()) == 1, r["err"]
    return codes


def _check_single_implementation(
    cli: Cli, change_id: str, codes: Counter[int], before: tuple[int, str], events_before: int
) -> None:
    assert codes[0] == 1, codes
    version, _ = cli.record(change_id)
    assert version == before[0] + 2  # the winner's two transitions: implementing, then implemented
    actions = Counter(e["action"] for e in cli.events(change_id))
    assert actions["implementation_started"] == 1
    assert actions["implemented"] == 1
    assert actions["unauthorized_attempt"] == codes[1]  # each state refusal is recorded once
    assert cli.counts()[1] == events_before + 2 + codes[1]  # conflicts wrote nothing
    assert cli.show(change_id)["state"] == "implemented"
    assert cli("audit", "verify").code == 0


def test_racing_implementations_one_wins(cli: Cli, tmp_path: Path) -> None:
    change_id = _approved_change(cli)
    before, events_before = cli.record(change_id), cli.counts()[1]
    commands = [["implement", change_id, "--as", f"operator-{n}"] for n in range(RACERS)]
    codes = _check_losers(_race(cli, commands, tmp_path))
    _check_single_implementation(cli, change_id, codes, before, events_before)


def test_racing_console_scripts_one_wins(cli: Cli) -> None:
    """The same race with the installed console script, all processes launched together."""
    change_id = _approved_change(cli)
    before, events_before = cli.record(change_id), cli.counts()[1]
    procs = [
        subprocess.Popen(
            cli.command("implement", change_id, "--as", f"operator-{n}"),
            env=cli.environment(),
            cwd=cli.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(RACERS)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append({"code": proc.returncode, "out": out.decode(), "err": err.decode()})
    codes = _check_losers(results)
    _check_single_implementation(cli, change_id, codes, before, events_before)


def test_racing_cab_approvals_count_each_vote_once(cli: Cli, tmp_path: Path) -> None:
    cli.env["CAB_MEMBERS"] = ",".join(CAB)
    change_id = cli.create(
        "normal",
        "deployment",
        "CAB race",
        "--impact",
        "critical",
        "--service",
        "a",
        "--implementation-plan",
        '{"steps": ["go"]}',
        "--rollback-plan",
        '{"steps": ["back"]}',
    )
    cli.ok("assess", change_id)
    assert cli.show(change_id)["state"] == "pending_cab"
    events_before = cli.counts()[1]

    results = _race(cli, [["approve", change_id, member, "lgtm"] for member in CAB], tmp_path)
    codes = _check_losers(results)

    winners = [member for member, r in zip(CAB, results, strict=True) if r["code"] == 0]
    assert 1 <= len(winners) <= 2, results  # the quorum is 2: a third vote finds it approved
    doc = cli.show(change_id)
    assert sorted(a["approver"] for a in doc["approvals"]) == sorted(winners)
    assert all(a["role"] == "cab" for a in doc["approvals"])
    assert doc["state"] == ("approved" if len(winners) == 2 else "pending_cab")
    actions = Counter(e["action"] for e in cli.events(change_id))
    assert actions["approval_granted"] + actions["approved"] == len(winners)
    assert actions["approved"] == (1 if len(winners) == 2 else 0)  # the transition happened at most once
    assert actions["unauthorized_attempt"] + actions["refused"] == codes[1]
    assert cli.counts()[1] == events_before + len(winners) + codes[1]
    assert cli("audit", "verify").code == 0
