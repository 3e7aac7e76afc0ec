"""The learned risk model on generated histories (tests/risk_history.py, its planted signal in its
docstring), on both backends: no model below ML_MIN_SAMPLES; trained, the candidates are judged on
the held-out newest changes and the one with the lower Brier score is kept (AUC >= 0.8);
assessments record features (freeze proximity among them), and with a model its prediction;
RISK_MODEL and ML_PREDICTION govern it; the backtest chooses on the past only and never trains on
the future."""

from __future__ import annotations

import json
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
from cortex_change.services.windows import add_window
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
    held = card["candidates"]
    assert set(held) == {"logistic", "trees", "trees+platt"}
    assert card["chosen"] == risk_model.choose({n: h["brier"] for n, h in held.items()})
    assert card["holdout"]["brier"] == held[card["chosen"]]["brier"]
    assert card["algorithm"].startswith(risk_model.CANDIDATES[card["chosen"]][0])
    assert held["trees"]["auc"] > held["logistic"]["auc"]  # the trees find Friday-and-database
    stored = query(store_url, "SELECT version, params FROM risk_models", ())
    assert [r[0] for r in stored] == [1]
    assert json.loads(stored[0][1])["kind"] == ("logistic" if card["chosen"] == "logistic" else "trees")

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
    for settings, shown in (
        ({"ML_PREDICTION": "false"}, False),
        ({"RISK_MODEL": "rules"}, False),
        ({"AI_RISK_ASSESSMENT": "false"}, False),
        ({}, True),
    ):
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
    picked = out["selection"]  # chosen on the newest fifth of what closed before --from
    assert picked["trained_on"] + picked["samples"] == out["trained_on"]
    assert out["chosen"] == risk_model.choose({n: c["brier"] for n, c in picked["candidates"].items()})
    assert out["model"]["auc"] >= 0.75 and out["model"]["auc"] > out["rules"]["auc"]
    assert out["model"]["brier"] < out["rules"]["brier"]
    with pytest.raises(ValidationError, match="pick a later --from"):
        risk_model.backtest(ctx, start=end - timedelta(days=69), end=end)


@pytest.mark.parametrize(
    ("briers", "chosen"),
    [
        ({"logistic": 0.135, "trees": 0.123, "trees+platt": 0.1151}, "trees+platt"),  # lowest wins
        ({"logistic": 0.135, "trees": 0.123, "trees+platt": 0.136}, "trees"),
        ({"logistic": 0.12, "trees": 0.13, "trees+platt": 0.14}, "logistic"),
        ({"logistic": 0.12001, "trees": 0.11996, "trees+platt": 0.2}, "logistic"),  # equal to 4 places
        ({"logistic": 0.2, "trees": 0.1, "trees+platt": 0.1}, "trees"),  # a tie: the simpler
        ({"logistic": None, "trees": 0.3, "trees+platt": None}, "trees"),  # no score never wins
    ],
)
def test_the_lower_brier_score_is_chosen_a_tie_going_to_the_simpler(
    briers: dict[str, float | None], chosen: str
) -> None:
    assert risk_model.choose(briers) == chosen
    assert risk_model.choose(dict(reversed(briers.items()))) == chosen  # whatever the order given


def test_an_assessment_records_how_near_a_freeze_is(
    make_ctx: Callable[..., Context], clock: FakeClock
) -> None:
    ctx = make_ctx()
    start = clock() + timedelta(days=6)
    add_window(
        ctx,
        kind="freeze",
        start=start.isoformat(),
        end=(start + timedelta(days=5)).isoformat(),
        scope="service:orders-db",
        reason="Year end",
        actor="change-manager",
    )
    near = assess_change(ctx, change_id=file_change(ctx, **RISKY).change_id).assessment
    other = assess_change(
        ctx, change_id=file_change(ctx, **{**RISKY, "affected_services": ["web"]}).change_id
    )
    assert near is not None and near.features is not None
    assert near.features["freeze_proximity"] == pytest.approx(0.8) and near.features["in_freeze"] == 0.0
    assert other.assessment is not None and other.assessment.features is not None
    assert other.assessment.features["freeze_proximity"] == 0.0  # the freeze is not this change's
    clock.set(start + timedelta(hours=1))
    during = assess_change(ctx, change_id=file_change(ctx, **RISKY).change_id).assessment
    assert during is not None and during.features is not None
    assert (during.features["in_freeze"], during.features["freeze_proximity"]) == (1.0, 1.0)


def test_without_scikit_learn_training_names_the_extra(
    make_ctx: Callable[..., Context], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(ML_MIN_SAMPLES="20")
    generate(ctx, clock, 40)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(MissingPackage, match="ml"):
        risk_model.train(ctx)
