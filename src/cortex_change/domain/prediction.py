"""A learned P(failure or rollback) for a change (docs/risk-model.md), pure: a logistic model over
standardized features or gradient-boosted trees, both stored as numbers (never a pickle), so
predicting needs no library and every prediction explains itself — each feature's contribution to
the log-odds, which with the intercept sum to it exactly."""

from __future__ import annotations

import math

from .errors import ValidationError
from .features import Facts
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ClassVar, Final

FACTORS_SHOWN = 5


class Prediction(Frozen):
    """A probability of failure, the model that made it, and the largest contributions."""

    __slots__ = ("factors", "probability", "version")

    def __init__(self, probability: float, version: int, factors: list[tuple[str, float]]) -> None:
        self.probability: Final = probability
        self.version: Final = version
        self.factors: Final = factors  # (feature, log-odds contribution), largest first

    def document(self) -> dict[str, Any]:
        return {
            "probability": round(self.probability, 4),
            "model_version": self.version,
            "factors": [{"feature": n, "log_odds": round(c, 4)} for n, c in self.factors],
        }


def _prediction(intercept: float, parts: dict[str, float], version: int) -> Prediction:
    """The probability of `intercept + Σ parts` (the log-odds), with the largest parts."""
    z = intercept + math.fsum(parts.values())
    probability = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
    ranked = sorted(parts.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:FACTORS_SHOWN]
    return Prediction(probability, version, ranked)


def _malformed(exc: Exception) -> ValidationError:
    words = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, whatever the cause said
    return ValidationError("risk model", f"the stored model is malformed ({words})")


def _finite(numbers: list[float] | tuple[float, ...]) -> None:
    total = sum(numbers)  # NaN or infinite when any is (or when they overflow: refused alike)
    if total - total != 0:
        raise ValidationError("risk model", "the stored model holds a non-finite number")


class LogisticModel(Frozen):
    """`P = 1 / (1 + exp(-(intercept + Σ w_i · (x_i - mean_i) / scale_i)))`."""

    __slots__ = ("intercept", "means", "scales", "version", "weights")
    kind: ClassVar[str] = "logistic"

    def __init__(
        self,
        version: int,
        intercept: float,
        weights: dict[str, float],
        means: dict[str, float],
        scales: dict[str, float],
    ) -> None:
        self.version: Final = version
        self.intercept: Final = intercept
        self.weights: Final = weights
        self.means: Final = means
        self.scales: Final = scales

    @property
    def features(self) -> list[str]:
        return list(self.weights)

    def contributions(self, features: Mapping[str, float]) -> dict[str, float]:
        """Each feature's share of the log-odds (a feature the change lacks counts as 0)."""
        return {
            name: w * (float(features.get(name, 0.0)) - self.means[name]) / (self.scales[name] or 1.0)
            for name, w in self.weights.items()
        }

    def log_odds(self, features: Mapping[str, float]) -> float:
        return self.intercept + math.fsum(self.contributions(features).values())

    def predict(self, features: Mapping[str, float]) -> Prediction:
        return _prediction(self.intercept, self.contributions(features), self.version)

    def document(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "intercept": self.intercept,
            "weights": self.weights,
            "means": self.means,
            "scales": self.scales,
        }

    @classmethod
    def of_document(cls, doc: Mapping[str, Any]) -> LogisticModel:
        try:
            weights = {str(k): float(v) for k, v in doc["weights"].items()}
            means = {k: float(doc["means"][k]) for k in weights}
            scales = {k: float(doc["scales"][k]) for k in weights}
            model = cls(int(doc["version"]), float(doc["intercept"]), weights, means, scales)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _malformed(exc) from None
        _finite([model.intercept, *weights.values(), *means.values(), *scales.values()])
        return model


class Tree(Frozen):
    """One regression tree as parallel arrays over its nodes (node 0 the root): an inner node sends
    a change left when its `feature` is at most `threshold`, else right; a leaf has no feature and
    children -1. `value` is a leaf's output, and an inner node's expected output (the mean of its
    leaves' outputs over the training changes that reached it): what path attribution reads."""

    __slots__ = ("feature", "left", "right", "threshold", "value")

    def __init__(
        self,
        feature: tuple[str | None, ...],
        threshold: tuple[float, ...],
        left: tuple[int, ...],
        right: tuple[int, ...],
        value: tuple[float, ...],
    ) -> None:
        self.feature: Final = feature
        self.threshold: Final = threshold
        self.left: Final = left
        self.right: Final = right
        self.value: Final = value

    def walk(self, features: Mapping[str, float], parts: dict[str, float], rate: float) -> float:
        """The leaf's output for `features`; adds to `parts` each split's change in expected value
        (times `rate`) under the split's feature (Saabas)."""
        i = 0
        name = self.feature[0]
        while name is not None:
            j = self.left[i] if float(features.get(name, 0.0)) <= self.threshold[i] else self.right[i]
            parts[name] = parts.get(name, 0.0) + rate * (self.value[j] - self.value[i])
            i = j
            name = self.feature[i]
        return self.value[i]

    def document(self) -> dict[str, Any]:
        return {
            "feature": list(self.feature),
            "threshold": list(self.threshold),
            "left": list(self.left),
            "right": list(self.right),
            "value": list(self.value),
        }

    @classmethod
    def of_document(cls, doc: Mapping[str, Any], known: set[str]) -> Tree:
        """A tree from its document, refused unless every child comes after its parent (so a walk
        ends) and every split names a known feature."""
        feature = tuple(None if f is None else str(f) for f in doc["feature"])
        tree = cls(
            feature,
            tuple(map(float, doc["threshold"])),
            tuple(map(int, doc["left"])),
            tuple(map(int, doc["right"])),
            tuple(map(float, doc["value"])),
        )
        n = len(feature)
        if n == 0 or any(len(a) != n for a in (tree.threshold, tree.left, tree.right, tree.value)):
            raise ValueError("a tree's arrays are empty or of different lengths")
        for i, name in enumerate(feature):
            if name is None and (tree.left[i], tree.right[i]) != (-1, -1):
                raise ValueError(f"leaf {i} has children")
            if name is not None and not (name in known and i < tree.left[i] < n and i < tree.right[i] < n):
                raise ValueError(f"node {i} splits on an unknown feature or has a bad child")
        _finite(tree.threshold)
        _finite(tree.value)
        return tree


class TreeModel(Frozen):
    """Gradient-boosted trees: raw log-odds `r = init + rate · Σ_t tree_t(x)`, calibrated
    (Platt scaling; identity unless fitted) to `z = scale · r + shift`, `P = 1 / (1 + exp(-z))`.
    Contributions are path attributions (Saabas): walking each tree, the change in the node's
    expected value at each split goes to the split's feature; the intercept is every tree's root
    expectation, so intercept + Σ contributions = z exactly."""

    __slots__ = ("features", "init", "rate", "scale", "shift", "trees", "version")
    kind: ClassVar[str] = "trees"

    def __init__(
        self,
        version: int,
        features: list[str],
        init: float,
        rate: float,
        trees: tuple[Tree, ...],
        scale: float = 1.0,
        shift: float = 0.0,
    ) -> None:
        self.version: Final = version
        self.features: Final = features  # every feature it was trained on (contributions list each)
        self.init: Final = init
        self.rate: Final = rate
        self.trees: Final = trees
        self.scale: Final = scale
        self.shift: Final = shift

    @property
    def intercept(self) -> float:
        raw = self.init + self.rate * math.fsum(t.value[0] for t in self.trees)
        return self.scale * raw + self.shift

    def raw(self, features: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        """The uncalibrated log-odds (the leaves' sum) and each feature's raw share of it."""
        parts = dict.fromkeys(self.features, 0.0)
        leaves = math.fsum(t.walk(features, parts, self.rate) for t in self.trees)
        return self.init + self.rate * leaves, parts

    def log_odds(self, features: Mapping[str, float]) -> float:
        """The calibrated log-odds, from the leaves (not from the contributions)."""
        return self.scale * self.raw(features)[0] + self.shift

    def contributions(self, features: Mapping[str, float]) -> dict[str, float]:
        """Each feature's share of the calibrated log-odds (a feature the change lacks counts as 0)."""
        return {name: self.scale * part for name, part in self.raw(features)[1].items()}

    def predict(self, features: Mapping[str, float]) -> Prediction:
        return _prediction(self.intercept, self.contributions(features), self.version)

    def document(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "features": self.features,
            "init": self.init,
            "learning_rate": self.rate,
            "calibration": {"scale": self.scale, "shift": self.shift},
            "trees": [t.document() for t in self.trees],
        }

    @classmethod
    def of_document(cls, doc: Mapping[str, Any]) -> TreeModel:
        try:
            names = [str(n) for n in doc["features"]]
            known = set(names)
            trees = tuple(Tree.of_document(t, known) for t in doc["trees"])
            calibration = doc.get("calibration") or {}
            model = cls(
                int(doc["version"]),
                names,
                float(doc["init"]),
                float(doc["learning_rate"]),
                trees,
                float(calibration.get("scale", 1.0)),
                float(calibration.get("shift", 0.0)),
            )
        except ValidationError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise _malformed(exc) from None
        _finite([model.init, model.rate, model.scale, model.shift])
        return model


if TYPE_CHECKING:
    Model = LogisticModel | TreeModel

KINDS: dict[str, Any] = {"logistic": LogisticModel, "trees": TreeModel}


def of_document(doc: object) -> Model:
    """The model a stored document holds, by its `kind` (none: logistic, as stored before trees)."""
    if not isinstance(doc, dict):
        raise ValidationError("risk model", f"the stored model is malformed (a {type(doc).__name__})")
    kind = doc.get("kind", "logistic")
    if kind not in KINDS:
        raise ValidationError("risk model", f"the stored model is of an unknown kind {kind!r}")
    model: Model = KINDS[kind].of_document(doc)
    return model


class Learned(Frozen):
    """What an assessment adds from learning: the store's facts for the features, the model (None:
    none trained, ML_PREDICTION=false or RISK_MODEL=rules), and whether its prediction may raise
    the route (RISK_MODEL=blend) at or above `threshold`. A replay (`policy simulate`) gives the
    features its change `recorded` at its assessment instead of facts: what the model saw then,
    with only the rules' score taken anew."""

    __slots__ = ("blend", "facts", "model", "recorded", "threshold")

    def __init__(
        self,
        facts: Facts,
        model: Model | None = None,
        blend: bool = False,
        threshold: float = 0.5,
        recorded: Mapping[str, float] | None = None,
    ) -> None:
        self.facts: Final = facts
        self.model: Final = model
        self.blend: Final = blend
        self.threshold: Final = threshold
        self.recorded: Final = recorded
