"""A learned P(failure or rollback) for a change (docs/risk-model.md), pure: a logistic model over
standardized features, stored as numbers (never a pickle), so predicting needs no library and
every prediction explains itself — each feature's contribution to the log-odds."""

from __future__ import annotations

import math

from .errors import ValidationError
from .features import Facts
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final

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


class LogisticModel(Frozen):
    """`P = 1 / (1 + exp(-(intercept + Σ w_i · (x_i - mean_i) / scale_i)))`."""

    __slots__ = ("intercept", "means", "scales", "version", "weights")

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

    def contributions(self, features: Mapping[str, float]) -> dict[str, float]:
        """Each feature's share of the log-odds (a feature the change lacks counts as 0)."""
        return {
            name: w * (float(features.get(name, 0.0)) - self.means[name]) / (self.scales[name] or 1.0)
            for name, w in self.weights.items()
        }

    def predict(self, features: Mapping[str, float]) -> Prediction:
        parts = self.contributions(features)
        z = self.intercept + sum(parts.values())
        probability = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
        ranked = sorted(parts.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:FACTORS_SHOWN]
        return Prediction(probability, self.version, ranked)

    def document(self) -> dict[str, Any]:
        return {
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
            raise ValidationError("risk model", f"the stored model is malformed ({exc})") from None
        numbers = [model.intercept, *weights.values(), *means.values(), *scales.values()]
        if not all(math.isfinite(x) for x in numbers):
            raise ValidationError("risk model", "the stored model holds a non-finite number")
        return model


class Learned(Frozen):
    """What an assessment adds from learning: the store's facts for the features, the model (None:
    none trained, ML_PREDICTION=false or RISK_MODEL=rules), and whether its prediction may raise
    the route (RISK_MODEL=blend) at or above `threshold`."""

    __slots__ = ("blend", "facts", "model", "threshold")

    def __init__(
        self, facts: Facts, model: LogisticModel | None = None, blend: bool = False, threshold: float = 0.5
    ) -> None:
        self.facts: Final = facts
        self.model: Final = model
        self.blend: Final = blend
        self.threshold: Final = threshold
