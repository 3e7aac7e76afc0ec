"""Self-healing on both backends, in process: an Alertmanager alert matching a remediation files the
standard change through its model, the worker carries it out (a harmless local runbook) and it
closes successful; a repeat files nothing; the model's rate, the kill switch and a freeze page a
person instead (once per remediation and target), every step audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain.errors import ConfigError, Refused, ValidationError
from cortex_change.services.automation import switch
from cortex_change.services.context import Context
from cortex_change.services.remediation import receive
from cortex_change.services.tokens import create_token, principal
from cortex_change.services.worker import tick
from support import FakeClock, query

TOML = """
[runbooks.restart-marker]
version = 1
run = ["sh", "-c", "echo restarted $0 >> {marker}", "{{target}}"]
params = {{ target = '[a-z0-9-]{{1,40}}' }}

[remediations.worker-down]
match = {{ alertname = "WorkerDown", severity = "critical" }}
model = "worker-restart"
runbook = "restart-marker"
parameters = {{ target = "{{{{ labels.worker }}}}" }}
"""


def alert(
    worker: str = "worker-7", fp: str = "aa01", status: str = "firing", **labels: str
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "WorkerDown", "severity": "critical", "worker": worker, **labels},
        "annotations": {"summary": f"{worker} is down"},
        "startsAt": "2026-01-15T08:59:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fp,
    }


def hook(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "cortex-change", "alerts": list(alerts)}


@pytest.fixture
def healing(make_ctx: Callable[..., Context], tmp_path: Path) -> tuple[Context, Path]:
    marker = tmp_path / "marker.log"
    (tmp_path / "cortex-change.toml").write_text(TOML.format(marker=marker), "utf-8")
    ctx = make_ctx(
        IMPLEMENTATION_DELAY="0",
        VALIDATION_PERIOD="0",
        PAGERDUTY_ENABLED="true",
        PAGERDUTY_API_KEY="pd-key",
        ECAB_MEMBERS="oncall-lead",
        AGENT_HUMAN_APPROVAL_LEVEL="high",  # a worker restart scores medium: the agent may go on
    )
    _, token = create_token(ctx, name="alertmanager", agent=True)
    return ctx.acting(principal(ctx, f"Bearer {token}")), marker


def _actions(store: str, change_id: str) -> list[str]:
    rows = query(store, "SELECT action FROM audit_events WHERE change_id=? ORDER BY seq", (change_id,))
    return [r[0] for r in rows]


def test_an_alert_files_the_standard_change_and_the_worker_carries_it_out(
    healing: tuple[Context, Path], store_url: str
) -> None:
    ctx, marker = healing
    out = receive(ctx, hook(alert()), actor="alertmanager")
    (one,) = out["alerts"]
    assert (one["outcome"], one["remediation"], one["state"]) == ("filed", "worker-down", "approved")
    cid = one["change_id"]
    doc = json.loads(query(store_url, "SELECT doc FROM changes WHERE change_id=?", (cid,))[0][0])
    assert doc["type"] == "standard" and doc["standard_model"] == "worker-restart"
    assert doc["parameters"] == {"target": "worker-7"} and doc["requested_by"] == "alertmanager"
    assert doc["origin"] == "agent"

    tick(ctx, "w1")  # IMPLEMENTATION_DELAY=0: the worker's timer is due now
    state, status = query(store_url, "SELECT state, closure_status FROM changes WHERE change_id=?", (cid,))[0]
    assert (state, status) == ("closed", "successful")
    assert marker.read_text().split() == ["restarted", "worker-7"]
    trail = _actions(store_url, cid)
    assert trail[:2] == ["created", "remediation_filed"]
    assert {"approved", "step_succeeded", "closed"} <= set(trail)

    # Alertmanager repeats the alert: nothing new. Then it resolves: on the change's trail only.
    again = receive(ctx, hook(alert()), actor="alertmanager")
    assert again["alerts"][0]["outcome"] == "duplicate"
    resolved = receive(ctx, hook(alert(status="resolved")), actor="alertmanager")
    assert resolved["alerts"][0]["outcome"] == "resolved"
    assert _actions(store_url, cid)[-1] == "alert_resolved"
    assert query(store_url, "SELECT count(*) FROM changes")[0][0] == 1


def test_the_models_rate_bounds_a_storm_and_one_page_goes_out(
    healing: tuple[Context, Path], store_url: str
) -> None:
    ctx, _ = healing
    storm = [alert(fp=f"f{i:03d}", instance=f"i{i}") for i in range(12)]  # one worker, 12 alerts
    out = receive(ctx, hook(*storm), actor="alertmanager")
    assert out["counts"] == {"filed": 3, "refused": 9}  # STD_WORKER_RESTART_MAX_FREQ=3 an hour
    assert query(store_url, "SELECT count(*) FROM changes")[0][0] == 3
    refused = [a for a in out["alerts"] if a["outcome"] == "refused"]
    assert [a["paged"] for a in refused] == [True] + [False] * 8
    assert "reach the limit of 3" in refused[0]["reason"]
    rows = query(store_url, "SELECT action, details FROM audit_events WHERE change_id IS NULL ORDER BY seq")
    assert [r[0] for r in rows].count("remediation_refused") == 9
    pages = query(store_url, "SELECT channel, kind FROM outbox WHERE kind='remediation_refused'")
    assert pages == [("pagerduty", "remediation_refused")]
    # Another worker is another target: its own budget.
    other = receive(ctx, hook(alert(worker="worker-8", fp="b001")), actor="alertmanager")
    assert other["alerts"][0]["outcome"] == "filed"


def test_the_kill_switch_and_a_freeze_page_instead(
    healing: tuple[Context, Path], store_url: str, clock: FakeClock
) -> None:
    ctx, _ = healing
    switch(ctx, on=True, actor="change-manager", reason="INC-1: bad rollouts")
    out = receive(ctx, hook(alert(fp="k1")), actor="alertmanager")
    assert out["alerts"][0]["outcome"] == "refused" and "kill switch" in out["alerts"][0]["reason"]
    switch(ctx, on=False, actor="change-manager", reason="over")
    from cortex_change.services.windows import add_window

    add_window(
        ctx,
        kind="freeze",
        start="2026-01-15T00:00:00Z",
        end="2026-01-16T00:00:00Z",
        scope="all",
        reason="Incident freeze",
        actor="change-manager",
    )
    out = receive(ctx, hook(alert(fp="k2")), actor="alertmanager")
    assert out["alerts"][0]["outcome"] == "refused" and "freeze" in out["alerts"][0]["reason"]
    assert query(store_url, "SELECT count(*) FROM changes")[0][0] == 0


def test_unmatched_bad_labels_and_switched_off(
    healing: tuple[Context, Path], store_url: str, make_ctx: Callable[..., Context]
) -> None:
    ctx, _ = healing
    other = {**alert(fp="u1"), "labels": {"alertname": "DiskFull", "severity": "critical"}}
    out = receive(ctx, hook(other), actor="alertmanager")
    assert out["alerts"][0]["outcome"] == "unmatched" and out["alerts"][0]["remediation"] is None
    bad = receive(ctx, hook(alert(worker="worker 7; rm -rf /", fp="u2")), actor="alertmanager")
    assert bad["alerts"][0]["outcome"] == "refused"
    assert "labels.worker" in bad["alerts"][0]["reason"]
    missing = {**alert(fp="u3"), "labels": {"alertname": "WorkerDown", "severity": "critical"}}
    assert "no such label" in receive(ctx, hook(missing), actor="alertmanager")["alerts"][0]["reason"]
    assert query(store_url, "SELECT count(*) FROM changes")[0][0] == 0
    with pytest.raises(ValidationError, match="version"):
        receive(ctx, {"version": "3", "alerts": []}, actor="alertmanager")
    off = make_ctx(SELF_HEALING="false")
    with pytest.raises(Refused, match="SELF_HEALING=false"):
        receive(off, hook(alert(fp="u4")), actor="alertmanager")


def test_a_bad_remediation_table_names_itself(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    from cortex_change.services.remediation import remediations

    (tmp_path / "cortex-change.toml").write_text(
        '[remediations.x]\nmatch = { alertname = "A" }\nmodel = "ghost"\nrunbook = "kubectl-scale"\n'
        'parameters = { target = "{{ labels.a }}" }\n',
        "utf-8",
    )
    with pytest.raises(ConfigError, match=r"remediations\.x\.model: unknown standard model 'ghost'"):
        remediations(make_ctx().settings)


def test_at_the_default_agent_level_the_change_waits_for_a_person_who_is_paged(
    make_ctx: Callable[..., Context], tmp_path: Path, store_url: str
) -> None:
    (tmp_path / "cortex-change.toml").write_text(TOML.format(marker=tmp_path / "m.log"), "utf-8")
    ctx = make_ctx(PAGERDUTY_ENABLED="true", PAGERDUTY_API_KEY="pd-key")  # AGENT_HUMAN_APPROVAL_LEVEL=medium
    _, token = create_token(ctx, name="alertmanager", agent=True)
    out = receive(ctx.acting(principal(ctx, f"Bearer {token}")), hook(alert()), actor="alertmanager")
    (one,) = out["alerts"]
    assert (one["outcome"], one["state"], one["paged"]) == ("filed", "pending_approval", True)
    assert "a person approves" in one["reason"]
    assert _actions(store_url, one["change_id"])[-1] == "remediation_refused"
    pages = query(store_url, "SELECT change_id FROM outbox WHERE channel='pagerduty'")
    assert (one["change_id"],) in pages
