"""The learned models as the domain holds them (docs/risk-model.md), pure: boosted trees and the
logistic model behind one interface; path attributions that sum to the log-odds exactly; stored
documents that round-trip, old ones (no `kind`) that still load, malformed ones refused on one
line; and the freeze-proximity features."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_change.domain import features
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.features import Facts
from cortex_change.domain.model import Change, ChangeType, Level, Timeline
from cortex_change.domain.prediction import LogisticModel, Tree, TreeModel, of_document
from cortex_change.domain.windows import Window

# Two hand-built trees. Tree A: database? then friday?; tree B: rollback_plan only. An inner node's
# value is its expected output (here: the plain mean of its two children, as if equally reached).
A = Tree(
    ("database", "day_fri", None, None, None),
    (0.5, 0.5, 0.0, 0.0, 0.0),
    (2, 3, -1, -1, -1),
    (1, 4, -1, -1, -1),
    (1.0, 2.0, -1.0, 0.5, 3.5),
)
B = Tree(("rollback_plan", None, None), (0.5, 0.0, 0.0), (1, -1, -1), (2, -1, -1), (0.25, 1.5, -1.0))
NAMES = ["database", "day_fri", "rollback_plan", "weekend"]


def _model(scale: float = 1.0, shift: float = 0.0) -> TreeModel:
    return TreeModel(3, NAMES, -2.0, 0.1, (A, B), scale, shift)


def test_a_tree_walk_gives_the_leaf_and_attributes_each_split() -> None:
    model = _model()
    x = {"database": 1.0, "day_fri": 1.0, "rollback_plan": 0.0}
    # Leaves: A → right, right (3.5); B → left (1.5). Raw log-odds = -2 + 0.1 · (3.5 + 1.5).
    assert model.log_odds(x) == pytest.approx(-1.5)
    assert model.intercept == pytest.approx(-2.0 + 0.1 * (1.0 + 0.25))
    parts = model.contributions(x)
    assert parts == pytest.approx(
        {
            "database": 0.1 * (2.0 - 1.0),
            "day_fri": 0.1 * (3.5 - 2.0),
            "rollback_plan": 0.1 * (1.5 - 0.25),
            "weekend": 0.0,
        }
    )
    p = model.predict(x)
    assert p.version == 3 and p.probability == pytest.approx(1 / (1 + math.exp(1.5)))
    assert [name for name, _ in p.factors][:3] == ["day_fri", "rollback_plan", "database"]


@given(
    st.dictionaries(
        st.sampled_from(NAMES), st.floats(min_value=-5, max_value=5, allow_nan=False), max_size=len(NAMES)
    ),
    st.floats(min_value=-3, max_value=3),
    st.floats(min_value=-3, max_value=3),
)
def test_intercept_plus_contributions_is_the_log_odds(
    x: dict[str, float], scale: float, shift: float
) -> None:
    model = _model(scale, shift)
    total = model.intercept + math.fsum(model.contributions(x).values())
    assert math.isclose(total, model.log_odds(x), rel_tol=1e-12, abs_tol=1e-12)
    assert model.predict(x).probability == pytest.approx(1 / (1 + math.exp(-model.log_odds(x))))


def test_a_tree_document_round_trips_through_json() -> None:
    model = _model(0.8, -0.3)
    doc = json.loads(json.dumps(model.document()))
    assert doc["kind"] == "trees" and doc["calibration"] == {"scale": 0.8, "shift": -0.3}
    back = of_document(doc)
    assert back == model and isinstance(back, TreeModel)
    assert back.copy_with(version=9).version == 9


def test_logistic_documents_stored_before_trees_still_load() -> None:
    old = {"version": 2, "intercept": -1.0, "weights": {"database": 2.0}, "means": {"database": 0.25},
           "scales": {"database": 0.5}}  # fmt: skip
    model = of_document(old)
    assert isinstance(model, LogisticModel) and model.kind == "logistic"
    assert of_document(model.document()) == model
    x = {"database": 1.0}
    assert model.intercept + sum(model.contributions(x).values()) == pytest.approx(model.log_odds(x))
    assert model.log_odds(x) == pytest.approx(-1.0 + 2.0 * 0.75 / 0.5)


def _broken(**changes: Any) -> dict[str, Any]:
    doc = _model().document()
    tree = {**doc["trees"][0], **changes.pop("tree", {})}
    return {**doc, "trees": [tree, *doc["trees"][1:]], **changes}


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ("not a model", "malformed (a str)"),
        ({"kind": "forest", "version": 1}, "unknown kind 'forest'"),
        (_broken(init="NaN"), "non-finite number"),
        (_broken(learning_rate=None), "malformed"),
        (_broken(trees=None), "malformed"),
        ({k: v for k, v in _model().document().items() if k != "init"}, "malformed (KeyError: 'init')"),
        (_broken(tree={"left": [0, 3, -1, -1, -1]}), "bad child"),  # a loop: the root its own child
        (_broken(tree={"right": [1, 9, -1, -1, -1]}), "bad child"),  # out of range
        (_broken(tree={"feature": ["secret", "day_fri", None, None, None]}), "unknown feature"),
        (_broken(tree={"left": [2, 3, 1, -1, -1]}), "leaf 2 has children"),
        (_broken(tree={"value": [1.0, 2.0]}), "different lengths"),
        (_broken(tree={"threshold": [0.5, "half", 0, 0, 0]}), "malformed (ValueError"),
        (_broken(tree={"value": [1.0, 2.0, -1.0, 0.5, float("inf")]}), "non-finite number"),
        ({"version": 1, "intercept": 0.0, "weights": {"a": 1.0}, "means": {}, "scales": {}}, "malformed"),
    ],
)
def test_a_malformed_document_is_refused_on_one_line(doc: Any, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        of_document(doc)
    message = str(refused.value)
    assert message.startswith("risk model: ") and words in message and "\n" not in message


def test_the_trees_match_scikit_learn_and_explain_exactly() -> None:
    """Fitted by the service's own conversion, the pure-Python trees give scikit-learn's log-odds."""
    pytest.importorskip("sklearn", reason="the `ml` extra fits the trees")
    from cortex_change.services.risk_model import Sample, _matrix, _trees

    rng = random.Random(3)
    samples = []
    for i in range(300):
        x = {
            "database": float(rng.random() < 0.3),
            "day_fri": float(rng.random() < 0.2),
            "load": rng.random(),
        }
        p = 0.9 if x["database"] and x["day_fri"] else 0.1 + 0.2 * x["load"]
        samples.append(Sample(float(i), float(i), rng.random() < p, x, 0))
    model = _trees(samples)
    from sklearn.ensemble import GradientBoostingClassifier

    from cortex_change.services.risk_model import BOOSTING

    _, rows, labels = _matrix(samples)
    reference = GradientBoostingClassifier(**BOOSTING).fit(rows, labels).decision_function(rows)
    for s, z in zip(samples, reference, strict=True):
        assert model.log_odds(s.features) == pytest.approx(float(z), abs=1e-9)
        total = model.intercept + math.fsum(model.contributions(s.features).values())
        assert total == pytest.approx(model.log_odds(s.features), abs=1e-12)
    both = {"database": 1.0, "day_fri": 1.0, "load": 0.5}
    top = [name for name, _ in model.predict(both).factors[:2]]
    assert set(top) == {"database", "day_fri"}  # the interaction, attributed to its two parts
    assert of_document(json.loads(json.dumps(model.document()))) == model


T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _change(services: list[str]) -> Change:
    return Change(
        change_id="RFC-20261201090000-abcdef",
        type=ChangeType.NORMAL,
        category="deployment",
        title="t",
        description="",
        requested_by="dev",
        impact=Level.LOW,
        urgency=Level.LOW,
        timeline=Timeline(created_at=T0),
        affected_services=services,
        environment="production",
    )


def _window(start_days: float, days: float = 5, scope: str = "all", value: str | None = None) -> Window:
    start = T0 + timedelta(days=start_days)
    return Window("W-1", "freeze", start, start + timedelta(days=days), scope, value, "year end", "cm")


@pytest.mark.parametrize(
    ("windows", "services", "in_freeze", "proximity"),
    [
        ((), ["web"], 0.0, 0.0),
        ((_window(6),), ["web"], 0.0, 0.8),  # 6 days ahead of 30
        ((_window(45),), ["web"], 0.0, 0.0),  # beyond the horizon: none near
        ((_window(-1),), ["web"], 1.0, 1.0),  # in force at the assessment
        ((_window(-10),), ["web"], 0.0, 0.0),  # over before it
        ((_window(3, scope="service", value="orders-db"),), ["web"], 0.0, 0.0),  # not this change's
        ((_window(3, scope="service", value="orders-db"), _window(15)), ["orders-db"], 0.0, 0.9),
        (
            (Window("M-1", "maintenance", T0, T0 + timedelta(days=1), "all", None, "m", "cm"),),
            ["web"],
            0.0,
            0.0,
        ),
    ],
)
def test_freeze_proximity_reads_the_freezes_known_at_assessment(
    windows: tuple[Window, ...], services: list[str], in_freeze: float, proximity: float
) -> None:
    feats = features.extract(_change(services), Facts(freezes=windows), 30, T0, ["deployment"])
    assert feats["in_freeze"] == in_freeze
    assert feats["freeze_proximity"] == pytest.approx(proximity)
