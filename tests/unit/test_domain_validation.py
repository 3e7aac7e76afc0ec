"""SPEC §1: input rules. Each refusal names the field and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from cortex_change.domain import validation
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.model import ChangeType, ClosureStatus, Level, ReviewOutcome

LONE_SURROGATE = "bad \ud800 text"


@pytest.mark.parametrize(
    "value",
    [
        "x",
        "x" * 200,
        "Fix 'quotes' and \"doubles\"",
        "line one\nline two",
        "$(rm -rf /) `id` ; DROP TABLE changes;--",
        "Ünïcødé ✓ 变更 🚀",
        "🚀" * 200,
    ],
    ids=["one", "exactly-200", "quotes", "newline", "shell", "unicode", "200-emoji"],
)
def test_titles_are_stored_exactly_as_given(value: str) -> None:
    assert validation.title(value) == value


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("", "must not be empty"),
        (" ", "must not be empty"),
        ("\t\n  ", "must not be empty"),
        ("x" * 201, "201 characters; at most 200"),
        (LONE_SURROGATE, "not valid UTF-8"),
    ],
    ids=["empty", "space", "whitespace", "201", "surrogate"],
)
def test_bad_titles(value: str, needle: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validation.title(value)
    assert refused.value.field == "title"
    assert needle in str(refused.value)
    assert str(refused.value).startswith("title: ")


@pytest.mark.parametrize("value", ["", "short", "x" * 20_000, "multi\nline\n" * 100])
def test_descriptions_up_to_twenty_thousand(value: str) -> None:
    assert validation.description(value) == value


@pytest.mark.parametrize(("value", "needle"), [("x" * 20_001, "at most 20000"), (LONE_SURROGATE, "UTF-8")])
def test_bad_descriptions(value: str, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle) as refused:
        validation.description(value)
    assert refused.value.field == "description"


@pytest.mark.parametrize("value", ["alice", "alice@example.com", "Dev Master", "x" * 200])
def test_good_identities(value: str) -> None:
    assert validation.identity("requested_by", value) == value


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("alice\nbob", "one line"),
        ("alice\rbob", "one line"),
        ("alice\x00", "one line"),
        ("tab\there", "one line"),
        ("del\x7f", "one line"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 201, "at most 200"),
        (LONE_SURROGATE, "UTF-8"),
    ],
)
def test_bad_identities(value: str, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle) as refused:
        validation.identity("requested_by", value)
    assert refused.value.field == "requested_by"


def test_names_are_deduplicated_in_order() -> None:
    assert validation.names("affected_services", ["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_too_many_names_are_refused() -> None:
    assert len(validation.names("affected_services", [f"s{i}" for i in range(100)])) == 100
    with pytest.raises(ValidationError, match="at most 100"):
        validation.names("affected_services", [f"s{i}" for i in range(101)])


def test_a_bad_name_in_a_list_names_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        validation.names("affected_cis", ["ok", "bad\nname"])
    assert refused.value.field == "affected_cis"


@pytest.mark.parametrize(
    ("field", "enum", "value", "allowed"),
    [
        ("type", ChangeType, "urgent", "standard, normal, emergency"),
        ("type", ChangeType, "Normal", "standard, normal, emergency"),
        ("impact", Level, "severe", "low, medium, high, critical"),
        ("urgency", Level, "", "low, medium, high, critical"),
        ("status", ClosureStatus, "done", "successful, failed, rolled_back, cancelled"),
        ("outcome", ReviewOutcome, "ok", "accepted, concerns"),
    ],
)
def test_wrong_enum_values_list_the_allowed_ones(field: str, enum: Any, value: str, allowed: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validation.choice(field, value, enum)
    assert refused.value.field == field
    assert repr(value) in str(refused.value)
    assert f"allowed: {allowed}" in str(refused.value)


@pytest.mark.parametrize(
    ("enum", "value"), [(ChangeType, "emergency"), (Level, "low"), (ReviewOutcome, "concerns")]
)
def test_enum_values_are_accepted(enum: Any, value: str) -> None:
    assert validation.choice("f", value, enum) == enum(value)


def test_one_of_lists_allowed_values() -> None:
    assert validation.one_of("category", "patch", ["patch", "update"]) == "patch"
    with pytest.raises(ValidationError, match="allowed: patch, update"):
        validation.one_of("category", "network", ["patch", "update"])


@pytest.mark.parametrize("value", ["RFC-20250303090000-abcdef", "RFC-19991231235959-000000"])
def test_good_change_ids(value: str) -> None:
    assert validation.change_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "RFC-20250303090000-ABCDEF",
        "RFC-2025030309000-abcdef",
        "RFC-20250303090000-abcdefa",
        "rfc-20250303090000-abcdef",
        "RFC-20250303090000-abcdef\n",
        "RFC-20250303090000-abcdeg",
        "RFC-" + "\u0662" * 14 + "-abcdef",  # Arabic-Indic digits
        "",
    ],
)
def test_bad_change_ids(value: str) -> None:
    with pytest.raises(ValidationError, match="RFC-YYYYMMDDHHMMSS-xxxxxx"):
        validation.change_id(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"steps": ["announce", {"run": "kubectl rollout restart deployment/x", "timeout": "2m"}]},
        {"steps": [], "estimated_duration": "15m"},
        {"automated": True, "max_duration": "5m"},
    ],
)
def test_good_plans(value: Any) -> None:
    assert validation.plan("rollback_plan", value) == value


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (["step"], "JSON object"),
        ("do it", "JSON object"),
        ({"steps": "do it"}, "steps must be a list"),
        ({"steps": ["ok", 3]}, "step 2 must be text or an object"),
        ({"steps": [""]}, "must not be empty"),
        ({"steps": ["x"] * 501}, "at most 500"),
    ],
)
def test_bad_plans(value: Any, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle) as refused:
        validation.plan("implementation_plan", value)
    assert refused.value.field.startswith("implementation_plan")


def test_parameters_accept_scalars_and_lists() -> None:
    values = {"replicas": 4, "ratio": 0.5, "dry_run": False, "worker": "w-1", "tags": ["a", 1], "x": None}
    assert validation.parameters(values) == values


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"bad-name": 1}, "parameters"),
        ({"1st": 1}, "parameters"),
        ({"nested": {"a": 1}}, "parameters.nested"),
        ({"deep": [[1]]}, "parameters.deep"),
        ({"text": LONE_SURROGATE}, "parameters.text"),
    ],
)
def test_bad_parameters(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validation.parameters(values)
    assert refused.value.field == field
