"""The store's guarantees on each backend: append-only audit, one winner per race, the CLI."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain.errors import Conflict
from cortex_change.services import audit as audit_service
from cortex_change.services.changes import (
    approve_change,
    assess_change,
)
from cortex_change.services.context import open_context
from cortex_change.services.implementation import implement_change
from cortex_change.services.queries import get_change
from cortex_change.store import changes as repo
from support import file_change

BIN = Path(sys.executable).parent / "cortex-change"
CAB = ["tech-lead", "security-lead", "ops-lead", "product-lead"]


def _ctx(url: str) -> Any:
    return open_context(env={"CORTEX_CHANGE_DB": url})


def _cab_change(url: str) -> str:
    ctx = _ctx(url)
    change = file_change(
        ctx,
        type="normal",
        category="security",
        title="Rotate keys",
        requested_by="alice",
        impact="high",
        affected_services=["a", "b"],
        implementation_plan={"steps": ["rotate"]},
        rollback_plan={"steps": ["restore"]},
    )
    assess_change(ctx, change_id=change.change_id)
    ctx.close()
    return change.change_id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "UPDATE audit_head SET seq = 0",
        "DELETE FROM audit_head",
    ],
)
def test_audit_rows_refuse_update_and_delete(store_url: str, statement: str) -> None:
    _cab_change(store_url)
    ctx = _ctx(store_url)
    with (
        pytest.raises(Exception, match=r"append-only|only moves forward|cannot be deleted"),
        ctx.db.transaction() as tx,
    ):
        tx.run(statement)
    assert audit_service.verify(ctx).ok
    ctx.close()


def test_a_stale_write_is_a_conflict_and_writes_nothing(store_url: str) -> None:
    change_id = _cab_change(store_url)
    first, second = _ctx(store_url), _ctx(store_url)
    with first.db.read() as tx:
        mine = repo.get(tx, change_id)
    with second.db.read() as tx:
        theirs = repo.get(tx, change_id)
    with first.db.transaction() as tx:
        repo.save(tx, mine, mine.version, compliant=False)
    with pytest.raises(Conflict), second.db.transaction() as tx:
        repo.save(tx, theirs, theirs.version, compliant=False)
    with second.db.read() as tx:
        assert repo.get(tx, change_id).version == 3  # created 1, assessed 2, first's save 3
    first.close()
    second.close()


def _race(url: str, change_id: str, who: str, barrier: Any, results: Any) -> None:
    ctx = _ctx(url)
    barrier.wait(timeout=60)
    try:
        if who == "implement":
            implement_change(ctx, change_id=change_id, actor="cortex-deployer")
        else:
            approve_change(ctx, change_id=change_id, approver=who, reason="ok")
        results.put((who, "ok"))
    except Exception as exc:  # the outcome is what we count
        results.put((who, type(exc).__name__))
    finally:
        ctx.close()


def _run_race(url: str, change_id: str, racers: list[str]) -> list[tuple[str, str]]:
    mp = multiprocessing.get_context("fork")
    barrier, results = mp.Barrier(len(racers)), mp.Queue()
    procs = [mp.Process(target=_race, args=(url, change_id, who, barrier, results)) for who in racers]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    return [results.get(timeout=5) for _ in racers]


def test_concurrent_cab_votes_are_never_lost_or_double_counted(store_url: str) -> None:
    change_id = _cab_change(store_url)
    outcomes = _run_race(store_url, change_id, CAB)
    ctx = _ctx(store_url)
    doc = get_change(ctx, change_id=change_id)
    winners = [who for who, result in outcomes if result == "ok"]
    # Every vote that was acknowledged is on the record, once; losers wrote nothing.
    assert sorted(a["approver"] for a in doc["approvals"]) == sorted(winners)
    assert {r for _, r in outcomes} <= {"ok", "Conflict", "InvalidTransition", "ApprovalRefused"}
    assert len(winners) <= 2
    assert doc["state"] == ("approved" if len(winners) == 2 else "pending_cab")
    assert audit_service.verify(ctx).ok
    ctx.close()


def test_concurrent_implementations_have_exactly_one_winner(store_url: str) -> None:
    change_id = _cab_change(store_url)
    ctx = _ctx(store_url)
    approve_change(ctx, change_id=change_id, approver="tech-lead", reason="ok")
    approve_change(ctx, change_id=change_id, approver="ops-lead", reason="ok")
    outcomes = _run_race(store_url, change_id, ["implement"] * 6)
    assert [r for _, r in outcomes].count("ok") == 1
    doc = get_change(ctx, change_id=change_id)
    assert [e["action"] for e in doc["audit_trail"]].count("implementation_started") == 1
    assert audit_service.verify(ctx).ok
    ctx.close()


def test_the_seed_quick_start_through_the_cli(store_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CORTEX_CHANGE_USER", "CORTEX_CHANGE_DB")}

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(BIN), "--db", store_url, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    change_id = run("create", "normal", "deployment", "Deploy new feature X", "Detailed description").strip()
    run("assess", change_id)
    run("approve", change_id, "tech-lead", "Approved for deployment")
    run("implement", change_id)
    run("close", change_id, "successful", "Change deployed successfully")
    assert change_id in run("list", "closed")
    assert "audit chain intact: 7 events verified" in run("audit", "verify")


def test_a_title_with_nul_is_stored_exactly_on_both_backends(store_url: str) -> None:
    ctx = _ctx(store_url)
    title = "nul\x00inside \u009c\u00f0"
    change = file_change(ctx, type="normal", category="deployment", title=title, requested_by="alice")
    assert get_change(ctx, change_id=change.change_id)["title"] == title
    from cortex_change.services.queries import list_changes

    assert list_changes(ctx)[0]["title"] == "nul\u2400inside \u009c\u00f0"
    ctx.close()
