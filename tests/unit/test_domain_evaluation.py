"""domain/evaluation.py: scores of probability predictions against outcomes, from small cases
computed by hand, properties over random ones, and scikit-learn's AUC when it is installed."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_change.domain.errors import ValidationError
from cortex_change.domain.evaluation import Bin, Scores, evaluate

Pairs = list[tuple[float, bool]]

PERFECT: Pairs = [(0.9, True), (0.8, True), (0.2, False), (0.1, False)]
INVERTED: Pairs = [(0.1, True), (0.2, True), (0.8, False), (0.9, False)]
CONSTANT: Pairs = [(0.5, True), (0.5, False), (0.5, False), (0.5, False)]
# Failures 0.7, 0.4, 0.2 against successes 0.4, 0.2, 0.1: 0.7 beats all three (3); 0.4 ties one
# and beats two (2.5); 0.2 loses to 0.4, ties 0.2 and beats 0.1 (1.5): 7 of 9 pairs.
TIES: Pairs = [(0.7, True), (0.4, True), (0.4, False), (0.2, False), (0.2, True), (0.1, False)]


def figures(scores: Scores) -> dict[str, Any]:
    return {
        "count": scores.count,
        "positives": scores.positives,
        "confusion": (
            scores.true_positives,
            scores.false_positives,
            scores.true_negatives,
            scores.false_negatives,
        ),
        "accuracy": scores.accuracy,
        "false_positive_rate": scores.false_positive_rate,
        "precision": scores.precision,
        "recall": scores.recall,
        "brier": scores.brier,
        "auc": scores.auc,
    }


CASES: list[tuple[str, Pairs, float, dict[str, Any]]] = [
    (
        "perfect",
        PERFECT,
        0.5,
        {
            "count": 4,
            "positives": 2,
            "confusion": (2, 0, 2, 0),
            "accuracy": 1.0,
            "false_positive_rate": 0.0,
            "precision": 1.0,
            "recall": 1.0,
            "brier": (0.01 + 0.04 + 0.04 + 0.01) / 4,
            "auc": 1.0,
        },
    ),
    (
        "inverted",
        INVERTED,
        0.5,
        {
            "count": 4,
            "positives": 2,
            "confusion": (0, 2, 0, 2),
            "accuracy": 0.0,
            "false_positive_rate": 1.0,
            "precision": 0.0,
            "recall": 0.0,
            "brier": (0.81 + 0.64 + 0.64 + 0.81) / 4,
            "auc": 0.0,
        },
    ),
    (
        "constant at the threshold: all predicted failure",
        CONSTANT,
        0.5,
        {
            "count": 4,
            "positives": 1,
            "confusion": (1, 3, 0, 0),
            "accuracy": 0.25,
            "false_positive_rate": 1.0,
            "precision": 0.25,
            "recall": 1.0,
            "brier": 0.25,
            "auc": 0.5,
        },
    ),
    (
        "constant below the threshold: nothing predicted, precision n/a",
        CONSTANT,
        0.6,
        {
            "count": 4,
            "positives": 1,
            "confusion": (0, 0, 3, 1),
            "accuracy": 0.75,
            "false_positive_rate": 0.0,
            "precision": None,
            "recall": 0.0,
            "brier": 0.25,
            "auc": 0.5,
        },
    ),
    (
        "ties averaged",
        TIES,
        0.4,
        {
            "count": 6,
            "positives": 3,
            "confusion": (2, 1, 2, 1),
            "accuracy": 4 / 6,
            "false_positive_rate": 1 / 3,
            "precision": 2 / 3,
            "recall": 2 / 3,
            "brier": (0.09 + 0.36 + 0.16 + 0.04 + 0.64 + 0.01) / 6,
            "auc": 7 / 9,
        },
    ),
    (
        "only failures: no false positive rate, no AUC",
        [(0.9, True), (0.3, True)],
        0.5,
        {
            "count": 2,
            "positives": 2,
            "confusion": (1, 0, 0, 1),
            "accuracy": 0.5,
            "false_positive_rate": None,
            "precision": 1.0,
            "recall": 0.5,
            "brier": (0.01 + 0.49) / 2,
            "auc": None,
        },
    ),
    (
        "only successes: no recall, no AUC",
        [(0.0, False), (0.6, False)],
        0.5,
        {
            "count": 2,
            "positives": 0,
            "confusion": (0, 1, 1, 0),
            "accuracy": 0.5,
            "false_positive_rate": 0.5,
            "precision": 0.0,
            "recall": None,
            "brier": 0.18,
            "auc": None,
        },
    ),
    (
        "nothing to evaluate",
        [],
        0.5,
        {
            "count": 0,
            "positives": 0,
            "confusion": (0, 0, 0, 0),
            "accuracy": None,
            "false_positive_rate": None,
            "precision": None,
            "recall": None,
            "brier": None,
            "auc": None,
        },
    ),
    (
        "certain and right: Brier 0",
        [(1.0, True), (0.0, False)],
        0.5,
        {
            "count": 2,
            "positives": 1,
            "confusion": (1, 0, 1, 0),
            "accuracy": 1.0,
            "false_positive_rate": 0.0,
            "precision": 1.0,
            "recall": 1.0,
            "brier": 0.0,
            "auc": 1.0,
        },
    ),
    (
        "certain and wrong: Brier 1",
        [(0.0, True), (1.0, False)],
        0.5,
        {
            "count": 2,
            "positives": 1,
            "confusion": (0, 1, 0, 1),
            "accuracy": 0.0,
            "false_positive_rate": 1.0,
            "precision": 0.0,
            "recall": 0.0,
            "brier": 1.0,
            "auc": 0.0,
        },
    ),
]


def _approx(expected: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if v is None or isinstance(v, (int, tuple)) else pytest.approx(v) for k, v in expected.items()
    }


@pytest.mark.parametrize(
    ("pairs", "threshold", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_scores_computed_by_hand(pairs: Pairs, threshold: float, expected: dict[str, Any]) -> None:
    scores = evaluate(pairs, threshold)
    assert figures(scores) == _approx(expected)
    assert scores.negatives == scores.count - scores.positives
    assert scores.threshold == threshold


def test_default_threshold_is_one_half() -> None:
    assert evaluate(CONSTANT).true_positives == 1  # 0.5 >= 0.5: predicted failure
    assert evaluate([(0.4999, True)]).true_positives == 0


def test_reliability_table_has_ten_equal_bins_and_omits_empty_ones() -> None:
    pairs: Pairs = [
        (0.0, False),
        (0.05, True),
        (0.1, False),  # a boundary belongs to the bin above it
        (0.3, True),
        (0.35, False),
        (0.95, True),
        (1.0, True),  # the last bin is closed
    ]
    bins = evaluate(pairs).bins
    assert [(b.lower, b.upper, b.count) for b in bins] == [
        (0.0, 0.1, 2),
        (0.1, 0.2, 1),
        (0.3, 0.4, 2),
        (0.9, 1.0, 2),
    ]
    assert bins[0] == Bin(0.0, 0.1, 2, 0.025, 0.5)
    assert bins[1].observed_rate == 0.0
    assert bins[2].mean_predicted == pytest.approx(0.325)
    assert bins[3].mean_predicted == pytest.approx(0.975)
    assert bins[3].observed_rate == 1.0
    assert evaluate([]).bins == ()


def test_boundaries_land_in_the_bin_they_open() -> None:
    for k in range(10):
        (row,) = evaluate([(k / 10, False)]).bins
        assert row.lower == k / 10, k


@pytest.mark.parametrize(
    ("pairs", "threshold", "field"),
    [
        ([(1.5, True)], 0.5, "pairs[0].probability"),
        ([(0.2, False), (-0.1, True)], 0.5, "pairs[1].probability"),
        ([(math.nan, True)], 0.5, "pairs[0].probability"),
        ([(math.inf, True)], 0.5, "pairs[0].probability"),
        ([("0.5", True)], 0.5, "pairs[0].probability"),
        ([(None, True)], 0.5, "pairs[0].probability"),
        ([(0.5, "yes")], 0.5, "pairs[0].outcome"),
        ([(0.5, 2)], 0.5, "pairs[0].outcome"),
        ([(0.5, True)], 1.5, "threshold"),
        ([(0.5, True)], math.nan, "threshold"),
    ],
)
def test_bad_input_is_refused_naming_the_field(pairs: Any, threshold: float, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        evaluate(pairs, threshold)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


def test_outcomes_given_as_zero_and_one_are_accepted() -> None:
    assert evaluate([(0.9, 1), (0.1, 0)]).auc == 1.0  # type: ignore[list-item]


def test_scores_are_values() -> None:
    assert evaluate(PERFECT) == evaluate(list(PERFECT))
    assert hash(evaluate(PERFECT)) == hash(evaluate(PERFECT))
    assert evaluate(PERFECT) != evaluate(INVERTED)


# Probabilities on a grid of thousandths: 1 - p then keeps every order and tie of p exactly
# (distinct floats very close to 0 could all become 1.0 and tie).
probabilities = st.integers(0, 1000).map(lambda k: k / 1000)
pair_lists = st.lists(st.tuples(probabilities, st.booleans()), max_size=60)


@given(pair_lists)
def test_auc_of_the_complement_is_one_minus_auc(pairs: Pairs) -> None:
    scores = evaluate(pairs)
    flipped = evaluate([(1 - p, failed) for p, failed in pairs])
    if scores.positives and scores.negatives:
        assert scores.auc is not None and flipped.auc is not None
        assert 0.0 <= scores.auc <= 1.0
        assert flipped.auc == pytest.approx(1 - scores.auc)
    else:
        assert scores.auc is None and flipped.auc is None


@given(pair_lists, probabilities)
def test_figures_stay_in_their_ranges(pairs: Pairs, threshold: float) -> None:
    scores = evaluate(pairs, threshold)
    if pairs:
        assert scores.brier is not None and 0.0 <= scores.brier <= 1.0
    for rate in (scores.accuracy, scores.false_positive_rate, scores.precision, scores.recall):
        assert rate is None or 0.0 <= rate <= 1.0
    assert sum(b.count for b in scores.bins) == len(pairs)
    assert (
        scores.true_positives + scores.false_positives + scores.true_negatives + scores.false_negatives
        == len(pairs)
    )
    for b in scores.bins:
        assert b.lower <= b.mean_predicted <= b.upper


def pairwise_auc(pairs: Pairs) -> float:
    """The definition itself: over every (failure, success) pair, 1 when the failure got the
    higher probability, one half when they tie."""
    failures = [p for p, failed in pairs if failed]
    successes = [p for p, failed in pairs if not failed]
    wins = sum(1.0 if f > s else 0.5 if f == s else 0.0 for f in failures for s in successes)
    return wins / (len(failures) * len(successes))


@given(pair_lists)
def test_auc_is_the_share_of_pairs_ranked_right(pairs: Pairs) -> None:
    scores = evaluate(pairs)
    if scores.auc is not None:
        assert scores.auc == pytest.approx(pairwise_auc(pairs))


def test_auc_matches_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(17)
    for _ in range(200):
        pairs = [(rng.randrange(21) / 20, rng.random() < 0.3) for _ in range(rng.randrange(2, 40))]
        scores = evaluate(pairs)
        if scores.auc is None:
            continue
        expected = metrics.roc_auc_score([int(failed) for _, failed in pairs], [p for p, _ in pairs])
        assert scores.auc == pytest.approx(expected), pairs
