"""Agents governed as agents, on both backends (docs/agents.md): tokens with kinds, scopes,
expiry and rotation; scopes at filing; a person in the loop; an agent's track record; and the
kill switch stopping automation — mid-flight too — until it is off."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cortex_change.domain.errors import ApprovalRefused, Forbidden, NotFound, Refused, ValidationError
from cortex_change.services import automation, worker
from cortex_change.services.changes import approve_change, assess_change, close_change
from cortex_change.services.context import Context, open_context
from cortex_change.services.dispatch import queue_implementation
from cortex_change.services.implementation import implement_change
from cortex_change.services.queries import get_change
from cortex_change.services.tokens import (
    Unauthenticated,
    create_token,
    list_tokens,
    principal,
    rotate_token,
)
from support import FakeClock, file_change, query

LOW = {
    "type": "normal",
    "category": "documentation",
    "title": "Fix a typo in the runbook",
    "impact": "low",
    "affected_services": ["docs"],
    "rollback_plan": {"steps": ["revert the commit"]},
    "implementation_plan": {"steps": ["edit the page"]},
}


def _as(ctx: Context, token: str) -> Context:
    return ctx.acting(principal(ctx, f"Bearer {token}"))


def test_tokens_have_kinds_scopes_expiry_and_rotation(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx()
    tid, token = create_token(
        ctx, name="deploy-bot", agent=True, scopes=["categories=deployment", "max-level=low"], expires="1d"
    )
    who = principal(ctx, f"Bearer {token}")
    assert (who.name, who.agent, who.token_id) == ("deploy-bot", True, tid)
    assert who.scopes.document() == {
        "categories": ["deployment"],
        "components": [],
        "max_level": "low",
        "read_only": False,
        "worker": False,
    }
    with pytest.raises(ValidationError, match="deploy-bot is an agent"):
        create_token(ctx, name="deploy-bot")  # one identity, one kind
    create_token(ctx, name="alice")
    with pytest.raises(ValidationError, match="alice is a person"):
        create_token(ctx, name="alice", agent=True)

    new_id, new_token, _ = rotate_token(ctx, token_id=tid, grace="10m")
    assert principal(ctx, f"Bearer {new_token}").scopes == who.scopes  # the scopes carry over
    assert principal(ctx, f"Bearer {token}").name == "deploy-bot"  # within its grace
    clock.advance(minutes=11)
    with pytest.raises(Unauthenticated, match="rotated out"):
        principal(ctx, f"Bearer {token}")
    with pytest.raises(NotFound):
        rotate_token(ctx, token_id=tid)  # already rotated
    clock.advance(days=1)
    with pytest.raises(Unauthenticated, match="expired"):
        principal(ctx, f"Bearer {new_token}")
    states = {t["token_id"]: t["state"] for t in list_tokens(ctx)}
    assert (states[tid], states[new_id]) == ("rotated out", "expired")
    actions = [r[0] for r in query(store_url, "SELECT action FROM audit_events ORDER BY seq", ())]
    assert actions.count("token_created") == 2 and actions.count("token_rotated") == 1


def test_scopes_decide_what_an_agent_may_file_and_nothing_is_written_when_refused(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx()
    _, token = create_token(ctx, name="doc-bot", agent=True, scopes=["categories=documentation"])
    bot = _as(ctx, token)
    before = query(store_url, "SELECT count(*) FROM changes", ())[0][0]
    with pytest.raises(
        Forbidden, match=r"doc-bot may not file security changes: .*categories: documentation"
    ):
        file_change(bot, **{**LOW, "category": "security", "requested_by": "doc-bot"})
    assert query(store_url, "SELECT count(*) FROM changes", ())[0][0] == before
    c = file_change(bot, **{**LOW, "requested_by": "doc-bot"})
    doc = get_change(ctx, change_id=c.change_id)
    assert (doc["origin"], doc["requested_by"]) == ("agent", "doc-bot")
    assert doc["audit_trail"][0]["details"]["origin"] == "agent"
    # a person's change, and the local CLI's (no token): origin human
    assert file_change(ctx, **{**LOW, "requested_by": "alice"}).origin == "human"
    # the local CLI naming an agent files as the agent it is
    assert file_change(ctx, **{**LOW, "requested_by": "doc-bot"}).origin == "agent"

    _, reader = create_token(ctx, name="dashboard", read_only=True)
    with pytest.raises(Forbidden, match="read-only"):
        file_change(_as(ctx, reader), **{**LOW, "requested_by": "dashboard"})


def test_a_person_approves_an_agents_change_and_agents_never_do(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx(AGENT_HUMAN_APPROVAL_LEVEL="low", AUTO_APPROVE_THRESHOLD="30")
    _, token = create_token(ctx, name="doc-bot", agent=True, scopes=["categories=documentation"])
    create_token(ctx, name="coordinator-master", agent=True)  # a TECH_LEADS member, but an agent
    c = file_change(_as(ctx, token), **{**LOW, "requested_by": "doc-bot"})
    assessed = assess_change(ctx, change_id=c.change_id)
    assert assessed.assessment is not None
    assert assessed.assessment.route.value == "technical-lead"  # a low-risk person's change auto-approves
    assert "filed by an agent at low risk" in assessed.assessment.route_reason
    with pytest.raises(ApprovalRefused, match="agents never approve agents' changes"):
        approve_change(ctx, change_id=c.change_id, approver="coordinator-master", reason="lgtm")
    refusals = query(
        store_url, "SELECT action, actor FROM audit_events WHERE change_id=? ORDER BY seq", (c.change_id,)
    )
    assert refusals[-1] == ("refused", "coordinator-master")
    approved, _ = approve_change(ctx, change_id=c.change_id, approver="tech-lead", reason="read it")
    assert approved.state.value == "approved"

    person = file_change(ctx, **{**LOW, "requested_by": "alice"})
    assert assess_change(ctx, change_id=person.change_id).state.value == "approved"  # auto-approved


def test_an_agents_own_track_record_counts_in_its_risk(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx(HISTORY_MIN_SAMPLES="2", AUTO_APPROVE_THRESHOLD="30")
    create_token(ctx, name="flaky-bot", agent=True)
    for status in ("failed", "failed", "successful"):
        c = file_change(ctx, **{**LOW, "requested_by": "flaky-bot", "affected_services": [f"svc-{status}"]})
        if assess_change(ctx, change_id=c.change_id).state.value != "approved":  # its record weighs
            approve_change(ctx, change_id=c.change_id, approver="tech-lead", reason="ok")
        implement_change(ctx, change_id=c.change_id, actor="cortex-deployer")
        close_change(ctx, change_id=c.change_id, status=status, notes="done", actor="cortex-deployer")
    c = file_change(ctx, **{**LOW, "requested_by": "flaky-bot", "affected_services": ["new-svc"]})
    a = assess_change(ctx, change_id=c.change_id).assessment
    assert a is not None
    history = a.components["history"]
    assert "flaky-bot's own record: 2 of 3 of its closed changes failed: 7" in history.reason
    assert history.points == 7  # the worse of neutral 5 (no comparable changes) and its own 2 in 3


def test_the_kill_switch_routes_everything_to_a_person_and_is_audited(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx(AUTO_APPROVE_THRESHOLD="30", WEBHOOK_URL="http://127.0.0.1:9/hook")
    with pytest.raises(Forbidden, match="CHANGE_MANAGERS"):
        automation.switch(ctx, on=True, actor="alice", reason="no")
    with pytest.raises(ValidationError):
        automation.switch(ctx, on=True, actor="change-manager", reason="  ")
    state = automation.switch(ctx, on=True, actor="change-manager", reason="INC-42: bad deploys")
    assert state["halted"] and state["changed"]
    assert not automation.switch(ctx, on=True, actor="change-manager", reason="again")["changed"]
    assert automation.status(ctx)["reason"] == "INC-42: bad deploys"

    c = file_change(ctx, **{**LOW, "requested_by": "alice"})
    assessed = assess_change(ctx, change_id=c.change_id)
    assert assessed.state.value == "pending_approval"
    assert assessed.assessment is not None
    assert "automation halted (freeze on: INC-42: bad deploys)" in assessed.assessment.route_reason

    automation.switch(ctx, on=False, actor="change-manager")
    later = file_change(ctx, **{**LOW, "requested_by": "alice"})
    assert assess_change(ctx, change_id=later.change_id).state.value == "approved"
    rows = query(store_url, "SELECT action FROM audit_events WHERE change_id IS NULL ORDER BY seq", ())
    assert [r[0] for r in rows][-2:] == ["automation_halted", "automation_resumed"]
    kinds = [r[0] for r in query(store_url, "SELECT kind FROM outbox ORDER BY created_at", ())]
    assert "automation_halted" in kinds and "automation_resumed" in kinds


def _queued_run(ctx: Context, tmp_path: Path, steps: list[object], **kw: object) -> str:
    c = file_change(
        ctx,
        **{
            **LOW,
            "requested_by": "alice",
            "implementation_plan": {"steps": steps},
            **kw,
        },
    )
    assess_change(ctx, change_id=c.change_id)
    approve_change(ctx, change_id=c.change_id, approver="tech-lead", reason="reviewed the commands")
    queue_implementation(ctx, change_id=c.change_id, actor="alice")
    return str(c.change_id)


def test_the_worker_holds_queued_work_while_halted_and_resumes_when_off(
    make_ctx: Callable[..., Context], clock: FakeClock, tmp_path: Path
) -> None:
    ctx = make_ctx()
    marker = tmp_path / "ran"
    cid = _queued_run(ctx, tmp_path, [{"run": ["touch", str(marker)]}])
    automation.switch(ctx, on=True, actor="change-manager", reason="INC-1")
    worker.tick(ctx, "w1")
    assert get_change(ctx, change_id=cid)["state"] == "approved" and not marker.exists()
    with pytest.raises(Refused, match="automation halted"):  # an agent cannot either
        create_token(ctx, name="ops-bot", agent=True)
        implement_change(ctx, change_id=cid, actor="ops-bot")
    automation.switch(ctx, on=False, actor="change-manager")
    clock.advance(seconds=automation.RECHECK + 1)
    worker.tick(ctx, "w1")
    assert marker.exists()
    assert get_change(ctx, change_id=cid)["state"] in ("implemented", "closed")


def test_the_kill_switch_pauses_a_running_worker_between_steps(
    make_ctx: Callable[..., Context], clock: FakeClock, tmp_path: Path, store_url: str
) -> None:
    ctx = make_ctx()
    started, first, third = tmp_path / "started", tmp_path / "first", tmp_path / "third"
    steps = [
        {"run": ["sh", "-c", f"touch {started}; sleep 2; touch {first}"], "timeout": 30},
        {"run": ["true"]},
        {"run": ["touch", str(third)]},
    ]
    cid = _queued_run(ctx, tmp_path, steps)

    def halt_during_step_one() -> None:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        own = open_context(env={"CORTEX_CHANGE_DB": store_url})  # this thread's connection
        try:
            automation.switch(own, on=True, actor="change-manager", reason="stop now")
        finally:
            own.close()

    flipper = threading.Thread(target=halt_during_step_one)
    flipper.start()
    worker.tick(ctx, "w1")  # runs step 1 to its end, then stops
    flipper.join()
    assert first.exists() and not third.exists()
    doc = get_change(ctx, change_id=cid)
    assert doc["state"] == "implementing"
    actions = [e["action"] for e in doc["audit_trail"]]
    assert actions[-1] == "implementation_paused"
    assert actions.count("step_succeeded") == 1
    assert query(store_url, "SELECT count(*) FROM leases WHERE change_id=?", (cid,))[0][0] == 0

    clock.advance(seconds=automation.RECHECK + 1)
    worker.tick(ctx, "w1")  # still halted: it waits
    assert not third.exists()
    automation.switch(ctx, on=False, actor="change-manager")
    clock.advance(seconds=automation.RECHECK + 1)
    worker.tick(ctx, "w1")
    assert third.exists()
    trail = [e["action"] for e in get_change(ctx, change_id=cid)["audit_trail"]]
    assert trail.count("step_succeeded") == 3  # step 1 was not run again
    assert "implementation_resumed" in trail


def test_an_emergency_an_ecab_member_approved_goes_ahead_while_halted(
    make_ctx: Callable[..., Context], clock: FakeClock, tmp_path: Path
) -> None:
    ctx = make_ctx()
    automation.switch(ctx, on=True, actor="change-manager", reason="INC-9")
    marker = tmp_path / "fixed"
    c = file_change(
        ctx,
        **{
            **LOW,
            "type": "emergency",
            "category": "security",
            "requested_by": "alice",
            "implementation_plan": {"steps": [{"run": ["touch", str(marker)]}]},
        },
    )
    assessed = assess_change(ctx, change_id=c.change_id)
    assert assessed.state.value == "pending_approval"  # no emergency auto-approval while halted
    approve_change(ctx, change_id=c.change_id, approver="tech-lead-oncall", reason="go")
    clock.advance(minutes=5)  # AUTO_IMPLEMENT after IMPLEMENTATION_DELAY
    worker.tick(ctx, "w1")
    assert marker.exists()
