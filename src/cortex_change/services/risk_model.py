"""The learned risk model (docs/risk-model.md): train on closed changes' recorded features, the
model card, explain a change's prediction, and backtest — train before a date, judge after it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from ..domain import evaluation
from ..domain.codec import fmt_epoch, fmt_time, parse_stored
from ..domain.errors import MissingPackage, NotFound, ValidationError
from ..domain.model import ClosureStatus
from ..domain.prediction import LogisticModel
from ..domain.values import Value
from ..store import risk
from ..store.db import Tx
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

C = 1.0  # L2 regularisation strength's inverse (scikit-learn's default)
HOLDOUT = 0.2  # the newest fifth of the training window judges the model on the card


class Sample(Value):
    """A closed change as a model learns from it: when it was filed and closed, its outcome, the
    features recorded at its assessment and the rules' score."""

    __slots__ = ("closed_at", "created_at", "failed", "features", "score")

    def __init__(
        self, created_at: float, closed_at: float, failed: bool, features: dict[str, float], score: int
    ) -> None:
        self.created_at = created_at
        self.closed_at = closed_at
        self.failed = failed
        self.features = features
        self.score = score


def _samples(tx: Tx, start: float, end: float) -> list[Sample]:
    """Closed changes filed in [start, end) whose assessment recorded features (older records did
    not: they are skipped, never reconstructed after the fact)."""
    out = []
    for created_at, closed_at, status, doc in risk.outcomes(tx, start, end):
        a = parse_stored(doc).get("assessment") or {}
        feats = a.get("features")
        if not isinstance(feats, dict):
            continue
        failed = status != ClosureStatus.SUCCESSFUL.value
        out.append(Sample(float(created_at), float(closed_at), failed, feats, int(a.get("score", 0))))
    return out


def _fit(samples: list[Sample], version: int) -> LogisticModel:
    """A logistic regression on standardized features (scikit-learn, the `ml` extra)."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise MissingPackage("risk train", exc.name or "sklearn", "ml") from None
    names = sorted({n for s in samples for n in s.features})
    rows = [[float(s.features.get(n, 0.0)) for n in names] for s in samples]
    labels = [int(s.failed) for s in samples]
    if len(set(labels)) < 2:
        raise ValidationError("training data", "every change had the same outcome: nothing to learn yet")
    scaler = StandardScaler().fit(rows)
    fitted = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(rows), labels)
    scales = [float(x) if x > 0 else 1.0 for x in scaler.scale_]
    return LogisticModel(
        version,
        float(fitted.intercept_[0]),
        {n: float(w) for n, w in zip(names, fitted.coef_[0], strict=True)},
        {n: float(m) for n, m in zip(names, scaler.mean_, strict=True)},
        dict(zip(names, scales, strict=True)),
    )


def _scores(model: LogisticModel, samples: list[Sample]) -> evaluation.Scores:
    return evaluation.evaluate([(model.predict(s.features).probability, s.failed) for s in samples])


def train(ctx: Context, *, days: int | None = None) -> dict[str, Any]:
    """Train on the closed changes filed in the last `days` (default: all), judged first on the
    newest fifth (trained on the rest), then refitted on all; stored with its model card."""
    now = ctx.clock()
    start = 0.0 if days is None else (now - timedelta(days=days)).timestamp()
    minimum = int(ctx.settings["ML_MIN_SAMPLES"])
    with ctx.db.read() as tx:
        samples = _samples(tx, start, now.timestamp())
    if len(samples) < minimum:
        raise ValidationError(
            "training data",
            f"{len(samples)} closed change(s) with recorded features, fewer than ML_MIN_SAMPLES={minimum}: "
            "no model; the rules alone assess",
        )
    cut = int(len(samples) * (1 - HOLDOUT))
    held = _scores(_fit(samples[:cut], 0), samples[cut:])
    fitted = _fit(samples, 0)
    failures = sum(s.failed for s in samples)
    card: dict[str, Any] = {
        "trained_at": fmt_time(now),
        "algorithm": f"logistic regression (scikit-learn, L2, C={C}) on standardized features",
        "window": {"from": fmt_epoch(samples[0].created_at), "to": fmt_epoch(samples[-1].created_at)},
        "samples": len(samples),
        "failures": failures,
        "failure_share": round(failures / len(samples), 4),
        "features": len(fitted.weights),
        "holdout": {"samples": len(samples) - cut, "trained_on": cut, **_doc(held)},
    }
    with ctx.db.transaction() as tx:  # numbered in the transaction that writes it
        version = risk.next_version(tx)
        card = {"version": version, **card}
        model = fitted.copy_with(version=version)
        risk.insert(tx, version, fmt_time(now) or "", json.dumps(card), json.dumps(model.document()))
    return card


def status(ctx: Context) -> dict[str, Any]:
    """The active model's card, or why there is none."""
    with ctx.db.read() as tx:
        row = risk.latest(tx)
        usable = len(_samples(tx, 0.0, ctx.clock().timestamp())) if row is None else None
    if row is None:
        minimum = int(ctx.settings["ML_MIN_SAMPLES"])
        return {
            "model": None,
            "samples": usable,
            "reason": f"no model trained: the rules alone assess ({usable} closed change(s) with recorded "
            f"features; `risk train` needs ML_MIN_SAMPLES={minimum})",
        }
    card: dict[str, Any] = json.loads(row[2])
    return {"model": card, "mode": ctx.settings["RISK_MODEL"], "shown": ctx.settings["ML_PREDICTION"]}


def explain(ctx: Context, *, change_id: str) -> dict[str, Any]:
    """A change's recorded features and prediction, every feature's contribution under the model
    that made it (or the active one, for a change assessed before any model)."""
    from ..services.unit import load

    change = load(ctx, change_id)
    a = change.assessment
    if a is None or a.features is None:
        raise NotFound(f"{change_id} has no recorded features: it was not assessed since features are kept")
    with ctx.db.read() as tx:
        model = risk.active(tx)
    out: dict[str, Any] = {"change_id": change_id, "rules_score": a.score, "features": a.features}
    out["prediction"] = a.prediction
    if model is not None:
        parts = model.contributions(a.features)
        out["contributions"] = [
            {"feature": n, "log_odds": round(v, 4), "value": a.features.get(n, 0.0)}
            for n, v in sorted(parts.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        ]
        out["explained_by_version"] = model.version
    return out


def backtest(ctx: Context, *, start: datetime, end: datetime) -> dict[str, Any]:
    """Train on changes filed and closed before `start`, judge on those filed in [start, end) —
    the model never sees the future — beside the rules alone (score / 100) on the same changes."""
    if end <= start:
        raise ValidationError("to", "must be after --from")
    with ctx.db.read() as tx:
        before = _samples(tx, 0.0, start.timestamp())
        after = _samples(tx, start.timestamp(), end.timestamp())
    closed_before = [s for s in before if s.closed_at < start.timestamp()]
    if len(closed_before) < int(ctx.settings["ML_MIN_SAMPLES"]):
        raise ValidationError(
            "from",
            f"{len(closed_before)} change(s) closed before it, fewer than ML_MIN_SAMPLES="
            f"{ctx.settings['ML_MIN_SAMPLES']}: pick a later --from",
        )
    if not after:
        raise ValidationError("to", "no closed change with recorded features was filed in the period")
    model = _fit(closed_before, 0)
    rules = [(min(1.0, max(0.0, s.score / 100)), s.failed) for s in after]
    return {
        "trained_on": len(closed_before),
        "tested_on": len(after),
        "model": _doc(_scores(model, after)),
        "rules": _doc(evaluation.evaluate(rules)),
    }


def _doc(scores: evaluation.Scores) -> dict[str, Any]:
    """Scores as the card and the backtest print them (rates rounded; None: n/a)."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "count": scores.count,
        "failures": scores.positives,
        "threshold": scores.threshold,
        "accuracy": r(scores.accuracy),
        "false_positive_rate": r(scores.false_positive_rate),
        "precision": r(scores.precision),
        "recall": r(scores.recall),
        "brier": r(scores.brier),
        "auc": r(scores.auc),
        "reliability": [
            {
                "from": b.lower,
                "to": b.upper,
                "count": b.count,
                "predicted": r(b.mean_predicted),
                "observed": r(b.observed_rate),
            }
            for b in scores.bins
        ],
    }
