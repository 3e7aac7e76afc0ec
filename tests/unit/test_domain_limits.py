"""The domain's document limits (SPEC §11): PLAN_JSON_MAX, finite numbers, STEP_TIMEOUT_MAX."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cortex_change.domain import plan as plans
from cortex_change.domain import validation as v
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.integration import parse_details


def _refused(call: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        call(*args, **kw)
    return str(caught.value)


def test_document_size_is_its_compact_utf8_json() -> None:
    doc = {"steps": ["é" * 10]}  # 2 bytes each in UTF-8
    size = len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())
    assert v.document("plan", doc, size) == doc
    assert _refused(v.document, "plan", doc, size - 1) == (
        f"plan: is {size} bytes of JSON; at most {size - 1} allowed (PLAN_JSON_MAX)"
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_document_refuses_non_finite_numbers_anywhere(bad: float) -> None:
    doc = {"steps": [{"run": "x", "extra": [1, {"deep": bad}]}]}
    message = _refused(v.document, "rollback_plan", doc)
    assert message == "rollback_plan: numbers must be finite (NaN and Infinity are not allowed)"


def test_document_refuses_what_json_cannot_hold() -> None:
    nested: list[Any] = []
    for _ in range(5000):
        nested = [nested]
    assert _refused(v.document, "plan", nested) == "plan: is nested too deeply"
    assert _refused(v.document, "plan", {"x": object()}).startswith("plan: is not a JSON document")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": NaN}', "f: NaN is not allowed: numbers must be finite"),
        ("[Infinity]", "f: Infinity is not allowed: numbers must be finite"),
        ("[-Infinity]", "f: -Infinity is not allowed: numbers must be finite"),
        ("[1e999]", "f: 1e999 is out of range: numbers must be finite"),
        ("[" * 100_000, "f: is nested too deeply"),
        ("[1,", "f: malformed JSON: Expecting value (line 1 column 4)"),
        ("1" * 5000, "f: malformed JSON: Exceeds the limit (4300 digits)"),
    ],
)
def test_json_text_takes_finite_numbers_only(text: str, message: str) -> None:
    assert _refused(v.json_text, "f", text).startswith(message)
    assert v.json_text("f", '{"a": [1.5, -2, 1e300]}') == {"a": [1.5, -2, 1e300]}


def test_plan_checks_size_numbers_and_step_timeouts() -> None:
    limits = v.Limits(json_bytes=200, step_timeout=60)
    ok = {"steps": [{"run": "true", "timeout": "1m"}, {"http": {"url": "http://h/", "timeout": 60}}]}
    assert v.plan("implementation_plan", ok, limits) == ok
    over = {"steps": ["a", {"http": {"url": "http://h/", "timeout": "61s"}}]}
    assert _refused(v.plan, "implementation_plan", over, limits) == (
        "implementation_plan step 2 timeout: 61s is more than STEP_TIMEOUT_MAX (60s)"
    )
    assert "PLAN_JSON_MAX" in _refused(v.plan, "rollback_plan", {"steps": ["x" * 300]}, limits)
    assert "must be finite" in _refused(v.plan, "test_plan", {"steps": [], "n": float("nan")}, limits)


def test_stored_plans_parse_whatever_maximum_they_were_filed_under() -> None:
    two_hours = {"steps": [{"run": "true", "timeout": "2h"}]}
    assert "STEP_TIMEOUT_MAX (3600s)" in _refused(v.plan, "p", two_hours)  # the key's default
    (step,) = plans.steps("p", two_hours)  # at run time: clamped by the runner, not refused
    assert isinstance(step, plans.RunStep) and step.timeout == 7200


def test_parameters_are_finite_and_within_the_size() -> None:
    assert v.parameters({"replicas": 3, "ratio": 0.5}) == {"replicas": 3, "ratio": 0.5}
    assert "must be finite" in _refused(v.parameters, {"replicas": float("inf")})
    assert "PLAN_JSON_MAX" in _refused(v.parameters, {"a": "x" * 2000}, 1024)


def test_integration_details_are_within_the_size_and_finite() -> None:
    assert parse_details('{"service": "web", "n": 2}', "text")["n"] == 2
    assert _refused(parse_details, "x" * 2000, "text", 1024) == (
        "details: is 2000 bytes; at most 1024 allowed (PLAN_JSON_MAX)"
    )
    assert (
        _refused(parse_details, '{"n": NaN}', "text") == "details: NaN is not allowed: numbers must be finite"
    )
