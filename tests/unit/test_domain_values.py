"""The plain value classes that replaced `@dataclass` (issue 12): what callers relied on still holds."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from cortex_change.domain.events import Event, EventKind
from cortex_change.domain.model import Change, ChangeType, Level, RiskComponent, Timeline
from cortex_change.domain.plan import HttpStep, RunStep
from cortex_change.domain.policy import DEFAULT_CATEGORY_WEIGHTS, Policy

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _change(**extra: object) -> Change:
    return Change(
        "RFC-20260102030405-abcdef",
        ChangeType.NORMAL,
        "deployment",
        "t",
        "d",
        "alice",
        Level.LOW,
        Level.LOW,
        Timeline(AT),
        **extra,  # type: ignore[arg-type]
    )


def test_fields_are_the_constructor_parameters_in_order() -> None:
    assert Event._fields == ("action", "actor", "details")
    assert Change._fields[:3] == ("change_id", "type", "category")
    assert Change._fields[-1] == "version"


def test_equality_compares_every_field_and_the_class() -> None:
    assert RiskComponent(5, "r") == RiskComponent(5, "r")
    assert RiskComponent(5, "r") != RiskComponent(6, "r")
    assert RunStep("true") != HttpStep("GET", "true")
    assert _change() == _change()
    assert _change() != _change(version=1)


def test_frozen_values_hash_and_mutable_ones_do_not() -> None:
    assert len({RiskComponent(5, "r"), RiskComponent(5, "r"), RiskComponent(1, "r")}) == 2
    assert hash(RunStep(("a", "b"))) == hash(RunStep(("a", "b")))
    with pytest.raises(TypeError):
        hash(_change())
    with pytest.raises(TypeError):  # a frozen value holding a dict, as with the dataclass
        hash(Event(EventKind.CREATED, "b", {"k": 1}))


def test_repr_names_the_class_and_its_fields() -> None:
    assert repr(RiskComponent(5, "r")) == "RiskComponent(points=5, reason='r')"


def test_mutable_defaults_are_fresh_per_instance() -> None:
    a, b = _change(), _change()
    a.affected_services.append("web")
    assert b.affected_services == []
    assert Policy().category_weights == DEFAULT_CATEGORY_WEIGHTS
    assert Policy().category_weights is not DEFAULT_CATEGORY_WEIGHTS
    assert Event(EventKind.CREATED, "b").details == {}


def test_slots_refuse_unknown_attributes() -> None:
    with pytest.raises(AttributeError):
        _change().colour = "red"  # type: ignore[attr-defined]


def test_copy_with_replaces_the_named_fields_and_leaves_the_original() -> None:
    original = _change(affected_services=["web"])
    copy = original.copy_with(title="new", version=3)
    assert (copy.title, copy.version, original.title, original.version) == ("new", 3, "t", 0)
    assert copy.affected_services is original.affected_services  # shared, as dataclasses.replace did
    assert Policy().copy_with(emergency_auto_approve=False).emergency_auto_approve is False
    with pytest.raises(TypeError):
        original.copy_with(colour="red")


def test_the_cli_path_builds_no_dataclass() -> None:
    probe = (
        "import sys, cortex_change.domain.codec, cortex_change.domain.workflow, cortex_change.config,"
        " cortex_change.services.context; print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
