"""How good probability predictions are against what happened (issue 17, risk intelligence).

`evaluate(pairs, threshold)` takes (predicted probability of failure, failed?) pairs and gives
`Scores`: the confusion counts at the threshold (a prediction is "failure" when its probability
is at least the threshold) and what they imply — accuracy, false positive rate, precision,
recall —, the Brier score (mean squared error of the probabilities), the ROC AUC (the
Mann-Whitney statistic: the chance that a failed change was given a higher probability than a
successful one, ties counting one half), and a reliability table over ten equal-width bins.

A figure that cannot be computed is None rather than a made-up number: the false positive rate
without negatives, precision when nothing is predicted positive, recall without positives, the
AUC when only one class occurs, accuracy and Brier without any pair.

Standard library only (no numpy): the domain imports nothing outside itself.
"""

from __future__ import annotations

import math
from numbers import Real

from .errors import ValidationError
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final

BINS = 10  # the reliability table's equal-width bins over [0, 1]


class Bin(Frozen):
    """One row of the reliability table: the predictions in [lower, upper) (the last bin
    includes 1), how many, their mean probability and the share of them that failed."""

    __slots__ = ("count", "lower", "mean_predicted", "observed_rate", "upper")

    def __init__(
        self, lower: float, upper: float, count: int, mean_predicted: float, observed_rate: float
    ) -> None:
        self.lower: Final = lower
        self.upper: Final = upper
        self.count: Final = count
        self.mean_predicted: Final = mean_predicted
        self.observed_rate: Final = observed_rate


class Scores(Frozen):
    """What `evaluate` found. Positives are failures; rates are fractions in [0, 1]."""

    __slots__ = (
        "accuracy",
        "auc",
        "bins",
        "brier",
        "count",
        "false_negatives",
        "false_positive_rate",
        "false_positives",
        "positives",
        "precision",
        "recall",
        "threshold",
        "true_negatives",
        "true_positives",
    )

    def __init__(
        self,
        count: int,
        positives: int,
        threshold: float,
        true_positives: int,
        false_positives: int,
        true_negatives: int,
        false_negatives: int,
        accuracy: float | None,
        false_positive_rate: float | None,
        precision: float | None,
        recall: float | None,
        brier: float | None,
        auc: float | None,
        bins: tuple[Bin, ...],
    ) -> None:
        self.count: Final = count
        self.positives: Final = positives
        self.threshold: Final = threshold
        self.true_positives: Final = true_positives
        self.false_positives: Final = false_positives
        self.true_negatives: Final = true_negatives
        self.false_negatives: Final = false_negatives
        self.accuracy: Final = accuracy  # None without pairs
        self.false_positive_rate: Final = false_positive_rate  # FP / (FP + TN); None without negatives
        self.precision: Final = precision  # TP / (TP + FP); None when nothing is predicted positive
        self.recall: Final = recall  # TP / (TP + FN); None without positives
        self.brier: Final = brier  # mean of (p - outcome)²; None without pairs
        self.auc: Final = auc  # ROC AUC, ties averaged; None unless both classes occur
        self.bins: Final = bins  # the reliability table, empty bins left out

    @property
    def negatives(self) -> int:
        return self.count - self.positives


def _probability(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValidationError(field, f"a probability is a number in [0, 1], not {value!r}")
    p = float(value)
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValidationError(field, f"a probability is a number in [0, 1], not {value!r}")
    return p


def _outcome(field: str, value: object) -> bool:
    if value is True or value is False or value in (0, 1):  # bool, or 0/1 as another library gives it
        return bool(value)
    raise ValidationError(field, f"an outcome is true (failed) or false (succeeded), not {value!r}")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def auc(pairs: Sequence[tuple[float, bool]]) -> float | None:
    """ROC AUC of checked pairs: (sum of the positives' ranks - n1(n1+1)/2) / (n1 n0), the
    probabilities ranked in ascending order, tied ones each given their average rank."""
    n1 = sum(1 for _, failed in pairs if failed)
    n0 = len(pairs) - n1
    if n1 == 0 or n0 == 0:
        return None
    ordered = sorted(pairs, key=lambda pair: pair[0])
    rank_sum = 0.0
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1][0] == ordered[i][0]:
            j += 1
        average = (i + j) / 2 + 1  # ranks i+1 .. j+1
        rank_sum += average * sum(1 for _, failed in ordered[i : j + 1] if failed)
        i = j + 1
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0)


def _bin_index(p: float) -> int:
    index = min(int(p * BINS), BINS - 1)
    while index > 0 and p < index / BINS:  # p * BINS rounded up across a boundary
        index -= 1
    return index


def reliability(pairs: Sequence[tuple[float, bool]]) -> tuple[Bin, ...]:
    """Ten equal-width bins over [0, 1] (the last one closed): count, mean predicted probability
    and observed failure rate of each bin that holds a prediction."""
    groups: dict[int, list[tuple[float, bool]]] = {}
    for p, failed in pairs:
        groups.setdefault(_bin_index(p), []).append((p, failed))
    rows = []
    for index in sorted(groups):
        members = groups[index]
        n = len(members)
        rows.append(
            Bin(
                index / BINS,
                (index + 1) / BINS,
                n,
                math.fsum(p for p, _ in members) / n,
                sum(1 for _, failed in members if failed) / n,
            )
        )
    return tuple(rows)


def evaluate(pairs: Sequence[tuple[float, bool]], threshold: float = 0.5) -> Scores:
    """Score (probability of failure, failed?) pairs; a prediction is "failure" when its
    probability is at least `threshold`. A probability outside [0, 1] or NaN, an outcome that is
    not true or false, or a threshold outside [0, 1] is refused (ValidationError naming it)."""
    cut = _probability("threshold", threshold)
    checked = [
        (_probability(f"pairs[{i}].probability", p), _outcome(f"pairs[{i}].outcome", failed))
        for i, (p, failed) in enumerate(pairs)
    ]
    tp = fp = tn = fn = 0
    for p, failed in checked:
        predicted = p >= cut
        if predicted and failed:
            tp += 1
        elif predicted:
            fp += 1
        elif failed:
            fn += 1
        else:
            tn += 1
    n = len(checked)
    brier = math.fsum((p - failed) ** 2 for p, failed in checked) / n if n else None
    return Scores(
        count=n,
        positives=tp + fn,
        threshold=cut,
        true_positives=tp,
        false_positives=fp,
        true_negatives=tn,
        false_negatives=fn,
        accuracy=_ratio(tp + tn, n),
        false_positive_rate=_ratio(fp, fp + tn),
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        brier=brier,
        auc=auc(checked),
        bins=reliability(checked),
    )
