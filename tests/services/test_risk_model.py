"""The learned risk model on generated histories (tests/risk_history.py, its planted signal in its
docstring), on both backends: no model below ML_MIN_SAMPLES; trained, it finds the signal on the
held-out newest changes (AUC >= 0.8); assessments record features, and with a model its
prediction; RISK_MODEL and ML_PREDICTION govern it; the backtest never trains on the future."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta

import pytest

from cortex_change.domain.errors import MissingPackage, ValidationError
from cortex_change.services import risk_model
from cortex_change.services.changes import assess_change
from cortex_change.services.context import Context
from cortex_change.services.queries import get_change
from cortex_change.services.reports import metrics_report
from risk_history import generate
from support import FakeClock, file_change, query

pytest.importorskip("sklearn", reason="the `ml` extra (scikit-learn) trains the model")

RISKY = {
    "type": "normal",
    "category": "configuration",
    "title": "Change the orders database's pool",
    "requested_by": "dana",
    "impact": "medium",
    "affected_services": ["orders-db"],
    "implementation_plan": {"steps": ["apply the change"]},
}


def _friday(clock: FakeClock) -> None:
    while clock().weekday() != 4:
        clock.advance(days=1)
    clock.set(clock().replace(hour=11))


def test_below_ml_min_samples_the_rules_alone_assess(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx(ML_MIN_SAMPLES="50")
    generate(ctx, clock, 30)
    with pytest.raises(ValidationError, match="fewer than ML_MIN_SAMPLES=50: no model"):
        risk_model.train(ctx)
    state = risk_model.status(ctx)
    assert state["model"] is None and "the rules alone assess" in state["reason"]
    c = file_change(ctx, **RISKY)
    a = assess_change(ctx, change_id=c.change_id).assessment
    assert a is not None and a.prediction is None
    assert a.features is not None and a.features["database"] == 1.0  # recorded for later training


def test_the_model_finds_the_planted_signal_and_explains_itself(
    make_ctx: Callable[..., Context], clock: FakeClock, store_url: str
) -> None:
    ctx = make_ctx(ML_MIN_SAMPLES="200")
    generate(ctx, clock, 700)
    card = risk_model.train(ctx)
    assert card["samples"] == 700 and card["version"] == 1
    assert card["holdout"]["auc"] >= 0.8, card["holdout"]
    stored = query(store_url, "SELECT version, card FROM risk_models", ())
    assert [r[0] for r in stored] == [1]

    _friday(clock)
    c = file_change(ctx, **RISKY)
    a = assess_change(ctx, change_id=c.change_id).assessment
    assert a is not None and a.prediction is not None
    assert a.prediction["model_version"] == 1 and a.prediction["probability"] > 0.4
    safe = file_change(ctx, **{**RISKY, "affected_services": ["web"], "rollback_plan": {"steps": ["revert"]}})
    b = assess_change(ctx, change_id=safe.change_id).assessment
    assert b is not None and b.prediction is not None
    assert b.prediction["probability"] < a.prediction["probability"] / 2
    assert a.route == b.route  # advisory (the default): the route is the rules'

    explained = risk_model.explain(ctx, change_id=c.change_id)
    top = {p["feature"] for p in explained["contributions"][:4]}
    assert {"database", "day_fri"} & top and "rollback_plan" in top, explained["contributions"][:6]
    doc = get_change(ctx, change_id=c.change_id)
    assert doc["assessment"]["prediction"]["factors"][0]["feature"] in top

    # The KPIs judge the predictions recorded at assessment against the outcomes, in SQL.
    before = metrics_report(ctx, period_text="today")["kpis"]
    start = clock()
    generate(ctx, clock, 120, seed=11)  # assessed with the model: predictions recorded
    period = f"{start:%Y-%m-%d} to {clock():%Y-%m-%d}"
    kpis = {k["key"]: k for k in metrics_report(ctx, period_text=period)["kpis"]}
    rows = query(
        store_url,
        "SELECT predicted_failure, closure_status FROM changes WHERE predicted_failure IS NOT NULL "
        "AND closed_at >= ?",
        (start.timestamp(),),
    )
    assert len(rows) >= 100
    right = sum((p >= 0.5) == (s != "successful") for p, s in rows)
    assert kpis["risk_prediction_accuracy"]["value"] == round(100 * right / len(rows), 2)
    false_alarms = sum(p >= 0.5 for p, s in rows if s == "successful")
    successes = sum(s == "successful" for _, s in rows)
    assert kpis["false_positive_rate"]["value"] == round(100 * false_alarms / successes, 2)
    assert any(k["key"] == "risk_prediction_accuracy" and k["value"] is None for k in before)


def test_risk_model_and_ml_prediction_govern_it(make_ctx: Callable[..., Context], clock: FakeClock) -> None:
    ctx = make_ctx(ML_MIN_SAMPLES="200")
    generate(ctx, clock, 600)
    risk_model.train(ctx)
    _friday(clock)
    for settings, shown in (({"ML_PREDICTION": "false"}, False), ({"RISK_MODEL": "rules"}, False)):
        other = make_ctx(**settings)
        a = assess_change(other, change_id=file_change(other, **RISKY).change_id).assessment
        assert a is not None and (a.prediction is not None) is shown and a.features is not None
    blend = make_ctx(RISK_MODEL="blend", ML_BLEND_THRESHOLD="30")
    advisory = assess_change(ctx, change_id=file_change(ctx, **RISKY).change_id).assessment
    raised = assess_change(blend, change_id=file_change(blend, **RISKY).change_id).assessment
    assert advisory is not None and raised is not None and raised.prediction is not None
    assert raised.prediction["probability"] >= 0.3
    assert "RISK_MODEL=blend" in raised.route_reason and raised.route != advisory.route


def test_the_backtest_never_trains_on_the_future(make_ctx: Callable[..., Context], clock: FakeClock) -> None:
    ctx = make_ctx(ML_MIN_SAMPLES="200")
    generate(ctx, clock, 700)
    end = clock()
    start = end - timedelta(days=20)
    out = risk_model.backtest(ctx, start=start, end=end)
    rows = query(
        str(ctx.settings.database()),
        "SELECT count(*) FROM changes WHERE state='closed' AND closed_at < ? AND created_at < ?",
        (start.timestamp(), start.timestamp()),
    )
    assert out["trained_on"] == rows[0][0]  # only what was closed before --from
    tested = query(
        str(ctx.settings.database()),
        "SELECT count(*) FROM changes WHERE state='closed' AND created_at >= ? AND created_at < ?",
        (start.timestamp(), end.timestamp()),
    )
    assert out["tested_on"] == tested[0][0]
    assert out["model"]["auc"] >= 0.75 and out["model"]["auc"] > out["rules"]["auc"]
    assert out["model"]["brier"] < out["rules"]["brier"]
    with pytest.raises(ValidationError, match="pick a later --from"):
        risk_model.backtest(ctx, start=end - timedelta(days=69), end=end)


def test_without_scikit_learn_training_names_the_extra(
    make_ctx: Callable[..., Context], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(ML_MIN_SAMPLES="20")
    generate(ctx, clock, 40)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(MissingPackage, match="ml"):
        risk_model.train(ctx)
