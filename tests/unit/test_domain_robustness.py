"""Issue 11 in the domain: reasons, DETAILS, whole-number ranges, identifiers rate limits count by."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_change.domain import validation as v
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.integration import parse_details
from cortex_change.domain.model import ChangeType
from cortex_change.domain.standard import INVISIBLE, Condition, StandardModel, counting_key


@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_an_empty_reason_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match=r"^reason: must not be empty"):
        v.reason("reason", value)


def test_a_reason_is_kept_exactly() -> None:
    assert v.reason("reason", "  ok \n") == "  ok \n"


@pytest.mark.parametrize("text", ["", "   ", "{}", " { } "])
def test_empty_details_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^details: "):
        parse_details(text, "text")


def _autoscale(whole: bool) -> StandardModel:
    condition = Condition(kind="range", field="replicas", minimum=1, maximum=10, whole=whole)
    return StandardModel("autoscale", "", True, condition, ChangeType.NORMAL)


@pytest.mark.parametrize(("replicas", "pre_approved"), [(3, True), (4.0, True), ("5", True), (2.5, False),
                                                       ("2.5", False), (1e-9 + 3, False)])  # fmt: skip
def test_a_whole_range_takes_whole_numbers_only(replicas: Any, pre_approved: bool) -> None:
    decision = _autoscale(True).decide({"replicas": replicas})
    assert decision.pre_approved is pre_approved
    if not pre_approved:
        assert decision.becomes is ChangeType.NORMAL
        assert "not a whole number" in decision.reason
    assert _autoscale(False).decide({"replicas": replicas}).pre_approved  # without the flag: inside


def test_the_whole_flag_is_in_the_models_document() -> None:
    doc = _autoscale(True).document()
    assert doc["condition"]["whole"] is True
    assert doc["rule"].endswith(", whole")


@pytest.mark.parametrize(
    "spelling",
    ["worker-777", "WORKER-777", " worker-777", "worker-777  ", "Ｗｏｒｋｅｒ－７７７", "WoRkEr-777"],
)
def test_spellings_of_one_worker_share_a_key(spelling: str) -> None:
    assert counting_key("target", spelling) == "worker-777"


@pytest.mark.parametrize(
    "hidden",
    ["worker-777\u200b", "wor\u00adker", "\u202eworker", "worker\u2028", "worker\u2029", "w\ue000", "w\u0378",
     "w\tx", "w\x85x"],
)  # fmt: skip
def test_invisible_characters_are_refused(hidden: str) -> None:
    with pytest.raises(ValidationError, match=r"^parameters\.target: holds an invisible"):
        counting_key("parameters.target", hidden)


def test_blank_and_non_text_values() -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        counting_key("target", "   ")
    assert counting_key("target", 777) == "777"


@given(st.text(st.characters(exclude_categories=tuple(INVISIBLE)), min_size=1).filter(str.strip))
def test_a_key_is_its_own_key(text: str) -> None:
    key = counting_key("target", text)
    assert counting_key("target", key) == key
    assert counting_key("target", f" {text.casefold()} ") == key
