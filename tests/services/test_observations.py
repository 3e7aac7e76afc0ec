"""Observed changes on both backends: matched to the change that covers them, or unauthorized —
audited, notified through the outbox, counted by the KPI (n/a until anything is observed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from cortex_change.domain.errors import ValidationError
from cortex_change.services.changes import approve_change, assess_change, close_change
from cortex_change.services.context import Context
from cortex_change.services.implementation import implement_change
from cortex_change.services.observations import list_observations, observe
from cortex_change.services.reports import metrics_report
from support import FakeClock, file_change, query


def _kpi(ctx: Context) -> dict[str, object]:
    return {k["key"]: k for k in metrics_report(ctx, period_text="today")["kpis"]}["unauthorized_changes"]


def _carried_out(ctx: Context, service: str = "web", **kw: object) -> str:
    change = file_change(
        ctx,
        type="normal",
        category="deployment",
        title="Deploy",
        requested_by="dev",
        impact="low",
        affected_services=[service],
        rollback_plan={"steps": ["undo"]},
        implementation_plan={"steps": ["Deploy it"]},
        **kw,
    )
    assess_change(ctx, change_id=change.change_id)
    approve_change(ctx, change_id=change.change_id, approver="tech-lead", reason="ok")
    implement_change(ctx, change_id=change.change_id, actor="dev")
    return change.change_id


def test_an_observation_is_matched_to_the_change_being_carried_out(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx()
    assert _kpi(ctx)["value"] is None  # nothing observed yet: n/a, not a made-up 0
    cid = _carried_out(ctx, environment="production")
    seen = observe(
        ctx,
        service="Web",
        environment="production",
        at=None,
        source="argocd",
        reference="r1",
        actor="cortex-deployer",
    )
    assert (seen["authorized"], seen["change_id"]) == (True, cid)
    trail = [
        r[0]
        for r in query(store_url, "SELECT action FROM audit_events WHERE change_id=? ORDER BY seq", (cid,))
    ]
    assert trail[-1] == "change_observed"
    assert (_kpi(ctx)["value"], _kpi(ctx)["met"]) == (0.0, True)

    close_change(ctx, change_id=cid, status="successful", notes="done", actor="dev")
    clock.advance(minutes=10)  # within the grace after it ended
    assert observe(
        ctx,
        service="web",
        environment=None,
        at=None,
        source="argocd",
        reference="r2",
        actor="cortex-deployer",
    )["authorized"]
    clock.advance(minutes=10)  # 20 minutes after: nothing covers it
    late = observe(
        ctx,
        service="web",
        environment=None,
        at=None,
        source="argocd",
        reference="r3",
        actor="cortex-deployer",
    )
    assert late["authorized"] is False


@pytest.mark.parametrize(
    ("service", "environment", "offset_minutes"),
    [("api", None, 0), ("web", "staging", 0), ("web", None, -30)],  # another service; env; before it began
)
def test_what_no_change_covers_is_unauthorized(
    make_ctx: Callable[..., Context],
    clock: FakeClock,
    store_url: str,
    service: str,
    environment: str | None,
    offset_minutes: int,
) -> None:
    ctx = make_ctx(WEBHOOK_URL="http://127.0.0.1:9/hook")
    _carried_out(ctx, environment="production")
    at = (clock() + timedelta(minutes=offset_minutes)).isoformat()
    seen = observe(
        ctx,
        service=service,
        environment=environment,
        at=at,
        source="watcher",
        reference="x",
        actor="cortex-deployer",
    )
    assert seen["authorized"] is False
    event = query(
        store_url, "SELECT action, change_id, actor FROM audit_events ORDER BY seq DESC LIMIT 1", ()
    )[0]
    assert tuple(event) == ("unauthorized_change", None, "cortex-deployer")
    rows = query(store_url, "SELECT kind, payload FROM outbox WHERE kind='unauthorized_change'", ())
    assert len(rows) == 1 and "Unauthorized change" in json.loads(rows[0][1])["subject"]
    assert [o["observation_id"] for o in list_observations(ctx, unmatched=True)] == [seen["observation_id"]]
    assert (_kpi(ctx)["value"], _kpi(ctx)["met"]) == (1.0, False)


def test_bad_observations_write_nothing(make_ctx: Callable[..., Context], store_url: str) -> None:
    ctx = make_ctx()
    for kw, field in (
        ({"service": ""}, "service"),
        ({"at": "yesterday"}, "at"),
        ({"source": "a\nb"}, "source"),
        ({"reference": ""}, "reference"),
    ):
        args = {
            "service": "web",
            "environment": None,
            "at": None,
            "source": "s",
            "reference": "r",
            "actor": "cortex-deployer",
            **kw,
        }
        with pytest.raises(ValidationError) as refused:
            observe(ctx, **args)  # type: ignore[arg-type]
        assert refused.value.field == field
    assert query(store_url, "SELECT count(*) FROM observations", ())[0][0] == 0


def test_only_the_deploy_tooling_and_change_managers_report_observations(
    make_ctx: Callable[..., Context],
) -> None:
    from cortex_change.domain.errors import Forbidden

    ctx = make_ctx()
    with pytest.raises(Forbidden) as refused:
        observe(ctx, service="web", environment=None, at=None, source="s", reference="r", actor="eve")
    assert "eve may not report observed changes" in str(refused.value)
    assert observe(
        ctx, service="web", environment=None, at=None, source="s", reference="r", actor="change-manager"
    )
