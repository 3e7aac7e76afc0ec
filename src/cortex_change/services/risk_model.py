"""The learned risk model (docs/risk-model.md): train on closed changes' recorded features — two
candidates, a logistic regression and gradient-boosted trees, the one with the lower Brier score on
the newest fifth kept —, the model card, explain a change's prediction, and backtest — train
before a date, judge after it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from ..domain import evaluation
from ..domain.codec import fmt_epoch, fmt_time, parse_stored
from ..domain.errors import MissingPackage, NotFound, ValidationError
from ..domain.model import ClosureStatus
from ..domain.prediction import LogisticModel, Tree, TreeModel
from ..domain.values import Value
from ..store import risk
from ..store.db import Tx
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from ..domain.prediction import Model

C = 1.0  # L2 regularisation strength's inverse (scikit-learn's default)
HOLDOUT = 0.2  # the newest fifth of the training window judges the candidates (and the card)
# The boosted candidate: scikit-learn's GradientBoostingClassifier (log-loss), fixed, not searched.
# Depth 2 lets a tree hold a pair of features (database and Friday); measured on the generator's
# seeds 7-9 (700 changes, newest fifth held out), depth 2 beat depth 3 (Brier 0.114-0.123 against
# 0.117-0.144): deeper trees overfit a few hundred changes. Subsample 1.0: no randomness.
BOOSTING: dict[str, Any] = {
    "n_estimators": 150,
    "max_depth": 2,
    "learning_rate": 0.05,
    "min_samples_leaf": 10,
    "subsample": 1.0,
    "random_state": 0,
}
CALIBRATION = 0.2  # the calibrated candidate's Platt scaling is fitted on the newest fifth of its data
PLATT_C = 1e6  # a 1-D logistic fit of the raw log-odds, practically unregularised
CHOICE = (
    "the lowest Brier score on the newest fifth (trained on the older four fifths), compared to 4 "
    "decimal places; a tie goes to the simpler: logistic, then trees, then trees+platt"
)


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


def _learners() -> tuple[Any, Any, Any]:
    """scikit-learn's LogisticRegression, StandardScaler and GradientBoostingClassifier (the `ml`
    extra: only training and backtests need it)."""
    try:
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise MissingPackage("risk train", exc.name or "sklearn", "ml") from None
    return LogisticRegression, StandardScaler, GradientBoostingClassifier


def _matrix(samples: list[Sample]) -> tuple[list[str], list[list[float]], list[int]]:
    """Feature names (sorted), rows and outcomes; refused when there is one outcome only."""
    names = sorted({n for s in samples for n in s.features})
    rows = [[float(s.features.get(n, 0.0)) for n in names] for s in samples]
    labels = [int(s.failed) for s in samples]
    if len(set(labels)) < 2:
        raise ValidationError("training data", "every change had the same outcome: nothing to learn yet")
    return names, rows, labels


def _logistic(samples: list[Sample]) -> LogisticModel:
    """A logistic regression on standardized features."""
    regression, scaler_class, _ = _learners()
    names, rows, labels = _matrix(samples)
    scaler = scaler_class().fit(rows)
    fitted = regression(C=C, max_iter=2000).fit(scaler.transform(rows), labels)
    scales = [float(x) if x > 0 else 1.0 for x in scaler.scale_]
    return LogisticModel(
        0,
        float(fitted.intercept_[0]),
        {n: float(w) for n, w in zip(names, fitted.coef_[0], strict=True)},
        {n: float(m) for n, m in zip(names, scaler.mean_, strict=True)},
        dict(zip(names, scales, strict=True)),
    )


def _tree(fitted: Any, names: list[str]) -> Tree:
    """One fitted regression tree as numbers; an inner node's value is the mean of its leaves'
    outputs weighted by the training changes that reached each (its expected output)."""
    t = fitted.tree_
    left, right = [int(x) for x in t.children_left], [int(x) for x in t.children_right]
    weight = [float(x) for x in t.weighted_n_node_samples]
    value = [float(x) for x in t.value[:, 0, 0]]
    for i in reversed(range(t.node_count)):  # scikit-learn numbers children after their parent
        if left[i] != -1:
            wl, wr = weight[left[i]], weight[right[i]]
            value[i] = (wl * value[left[i]] + wr * value[right[i]]) / (wl + wr)
    leaf = [left[i] == -1 for i in range(t.node_count)]
    return Tree(
        tuple(None if leaf[i] else names[int(f)] for i, f in enumerate(t.feature)),
        tuple(0.0 if leaf[i] else float(x) for i, x in enumerate(t.threshold)),
        tuple(left),
        tuple(right),
        tuple(value),
    )


def _trees(samples: list[Sample]) -> TreeModel:
    """Gradient-boosted trees (BOOSTING), uncalibrated."""
    import math

    _, _, boosting = _learners()
    names, rows, labels = _matrix(samples)
    fitted = boosting(**BOOSTING).fit(rows, labels)
    prior = sum(labels) / len(labels)  # log-loss boosting starts from the log-odds of the prior
    trees = tuple(_tree(e, names) for e in fitted.estimators_[:, 0])
    return TreeModel(0, names, math.log(prior / (1 - prior)), float(fitted.learning_rate), trees)


def _calibrated(samples: list[Sample]) -> TreeModel:
    """Trees fitted on the older four fifths, Platt-scaled on the newest fifth: `a·z + b`, a 1-D
    logistic fit of their raw log-odds z to the outcomes (left unscaled with one outcome there)."""
    regression, _, _ = _learners()
    cut = int(len(samples) * (1 - CALIBRATION))
    model = _trees(samples[:cut])
    slice_ = samples[cut:]
    labels = [int(s.failed) for s in slice_]
    if len(set(labels)) < 2:
        return model
    raw = [[model.log_odds(s.features)] for s in slice_]
    platt = regression(C=PLATT_C, max_iter=2000).fit(raw, labels)
    return model.copy_with(scale=float(platt.coef_[0][0]), shift=float(platt.intercept_[0]))


CANDIDATES: dict[str, tuple[str, Callable[[list[Sample]], Model]]] = {  # simplest first
    "logistic": (f"logistic regression (scikit-learn, L2, C={C}) on standardized features", _logistic),
    "trees": (
        f"gradient-boosted trees (scikit-learn, log-loss: {BOOSTING['n_estimators']} trees of depth "
        f"{BOOSTING['max_depth']}, learning rate {BOOSTING['learning_rate']}, at least "
        f"{BOOSTING['min_samples_leaf']} changes a leaf)",
        _trees,
    ),
    "trees+platt": (
        "the same boosted trees fitted on the older four fifths, Platt-scaled on the newest fifth",
        _calibrated,
    ),
}


def choose(briers: Mapping[str, float | None]) -> str:
    """The candidate to keep (CHOICE): the lowest Brier score to 4 places, a tie to the simpler
    (earlier in CANDIDATES); one without a score only when none has one."""
    order = list(CANDIDATES)

    def key(name: str) -> tuple[bool, float, int]:
        brier = briers[name]
        return brier is None, round(brier or 0.0, 4), order.index(name) if name in order else len(order)

    return min(briers, key=key)


def _select(samples: list[Sample]) -> tuple[str, dict[str, evaluation.Scores], int]:
    """Fit every candidate on the older four fifths, judge each on the newest fifth: the chosen
    one's name, every candidate's scores, and how many changes they were trained on. A candidate
    that cannot be fitted (one outcome only in what it learns from) is left out."""
    _learners()  # the missing extra is named before anything is fitted
    cut = int(len(samples) * (1 - HOLDOUT))
    held: dict[str, evaluation.Scores] = {}
    refused = None
    for name, (_, fit) in CANDIDATES.items():
        try:
            held[name] = _scores(fit(samples[:cut]), samples[cut:])
        except ValidationError as exc:
            refused = exc
    if refused is not None and not held:
        raise refused
    return choose({name: s.brier for name, s in held.items()}), held, cut


def _scores(model: Model, samples: list[Sample]) -> evaluation.Scores:
    return evaluation.evaluate([(model.predict(s.features).probability, s.failed) for s in samples])


def _algorithm(chosen: str, held: dict[str, evaluation.Scores]) -> str:
    """The card's words for the winner and why: its Brier score beside the others'."""

    def brier(name: str) -> str:
        b = held[name].brier
        return "n/a" if b is None else f"{b:.4f}"

    others = ", ".join(f"{n} {brier(n)}" for n in held if n != chosen)
    return f"{CANDIDATES[chosen][0]}; chosen by backtest: held-out Brier {brier(chosen)} ({others})"


def train(ctx: Context, *, days: int | None = None) -> dict[str, Any]:
    """Train on the closed changes filed in the last `days` (default: all): every candidate judged
    on the newest fifth (trained on the rest), the one CHOICE picks refitted on all; stored with
    its model card."""
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
    chosen, held, cut = _select(samples)
    fitted = CANDIDATES[chosen][1](samples)
    failures = sum(s.failed for s in samples)
    card: dict[str, Any] = {
        "trained_at": fmt_time(now),
        "algorithm": _algorithm(chosen, held),
        "chosen": chosen,
        "choice": CHOICE,
        "window": {"from": fmt_epoch(samples[0].created_at), "to": fmt_epoch(samples[-1].created_at)},
        "samples": len(samples),
        "failures": failures,
        "failure_share": round(failures / len(samples), 4),
        "features": len(fitted.features),
        "holdout": {"samples": len(samples) - cut, "trained_on": cut, **_doc(held[chosen])},
        "candidates": {n: {"algorithm": CANDIDATES[n][0], **_doc(sc)} for n, sc in held.items()},
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
        out["explained_by_kind"] = model.kind
        out["intercept"] = round(model.intercept, 4)  # + every contribution = the log-odds
    return out


def backtest(ctx: Context, *, start: datetime, end: datetime) -> dict[str, Any]:
    """Train on changes filed and closed before `start` — the candidates chosen between on the
    newest fifth of those —, judge the chosen one on those filed in [start, end) — the model never
    sees the future — beside the rules alone (score / 100) on the same changes."""
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
    chosen, held, cut = _select(closed_before)  # chosen on the newest fifth of what came before
    model = CANDIDATES[chosen][1](closed_before)
    rules = [(min(1.0, max(0.0, s.score / 100)), s.failed) for s in after]
    return {
        "trained_on": len(closed_before),
        "tested_on": len(after),
        "chosen": chosen,
        "choice": CHOICE,
        "selection": {
            "trained_on": cut,
            "samples": len(closed_before) - cut,
            "candidates": {n: _doc(sc) for n, sc in held.items()},
        },
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
