"""The field table (domain/fields.py, issue 12): each change field declared once, and the CLI's
grammar, `update`'s rules and the API's request bodies derived from it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from cortex_change.cli import inputs
from cortex_change.cli.parser import build_parser
from cortex_change.domain import fields, workflow
from cortex_change.domain.errors import ValidationError
from cortex_change.domain.fields import FIELDS, ChangeRequest, Kind
from cortex_change.domain.model import ChangeType, Level

REQUIRED = {"type": "normal", "category": "deployment", "title": "Deploy", "requested_by": "alice"}
UPDATABLE = (
    "title, description, impact, urgency, affected_services, affected_cis, dependencies, "
    "implementation_plan, rollback_plan, test_plan, validation, environment, tested_in_staging, "
    "planned_start, planned_end"
)


def test_the_table_holds_the_fields_a_requester_supplies() -> None:
    assert list(FIELDS) == [
        "type",
        "category",
        "title",
        "description",
        "requested_by",
        "impact",
        "urgency",
        "affected_services",
        "affected_cis",
        "dependencies",
        "implementation_plan",
        "rollback_plan",
        "test_plan",
        "validation",
        "environment",
        "tested_in_staging",
        "planned_start",
        "planned_end",
        "standard_model",
        "parameters",
    ]
    assert all(name == f.name for name, f in FIELDS.items())


def test_workflow_rules_are_the_tables() -> None:
    assert workflow.UPDATABLE is fields.UPDATABLE
    assert workflow.AUTHORING is fields.AUTHORING
    assert ", ".join(fields.UPDATABLE) == UPDATABLE
    # a title, the environment or a staging citation is not the change's substance
    assert set(fields.UPDATABLE) - fields.AUTHORING == {
        "title",
        "environment",
        "tested_in_staging",
        "planned_start",
        "planned_end",
    }


def test_create_applies_the_defaults() -> None:
    request = ChangeRequest.of(REQUIRED)
    assert request.type is ChangeType.NORMAL
    assert (request.impact, request.urgency) == (Level.MEDIUM, Level.MEDIUM)
    assert request.description == ""
    assert request.affected_services == request.affected_cis == request.dependencies == []
    assert request.parameters == {}
    assert request.implementation_plan is request.validation is request.standard_model is None
    assert request.to_fields()["requested_by"] == "alice"
    again = ChangeRequest.of(REQUIRED)
    assert again == request and again.affected_services is not request.affected_services  # fresh lists


@pytest.mark.parametrize("missing", ["type", "category", "title", "requested_by"])
def test_create_needs_the_required_fields(missing: str) -> None:
    given = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(ValidationError, match="is required") as refused:
        ChangeRequest.of(given)
    assert refused.value.field == missing


def test_create_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="is not a change field") as refused:
        ChangeRequest.of({**REQUIRED, "state": "approved"})
    assert refused.value.field == "state"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("type", "minor", "type: 'minor' is not allowed; allowed: standard, normal, emergency"),
        ("title", " ", "title: must not be empty (1–200 characters)"),
        ("title", "x" * 201, "title: is 201 characters; at most 200 allowed"),
        ("impact", "huge", "impact: 'huge' is not allowed; allowed: low, medium, high, critical"),
        ("requested_by", "a\nb", "requested_by: must be one line without control characters"),
        ("affected_services", "web", "affected_services: must be a list of names, not str"),
        ("implementation_plan", [], 'implementation_plan: must be a JSON object such as {"steps": ["..."]}'),
        ("validation", [], 'validation: must be a JSON object such as {"health_checks": [...]}'),
        (
            "tested_in_staging",
            "RFC-1",
            "change_id: 'RFC-1' is not a change id (RFC-YYYYMMDDHHMMSS-xxxxxx)",  # the validator's name
        ),
        ("parameters", {"a-b": 1}, "parameters: 'a-b' is not a parameter name (letters, digits, _)"),
    ],
)
def test_create_checks_each_value_with_the_validators_wording(name: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ChangeRequest.of({**REQUIRED, name: value})
    assert str(refused.value) == message


def test_only_standard_requests_name_a_model() -> None:
    with pytest.raises(ValidationError) as refused:
        ChangeRequest.of({**REQUIRED, "standard_model": "autoscale"})
    assert str(refused.value) == "model: only standard changes name a model (this one is normal)"
    request = ChangeRequest.of({**REQUIRED, "type": "standard", "standard_model": "autoscale"})
    assert request.standard_model == "autoscale"


@pytest.mark.parametrize(
    "name", ["type", "category", "requested_by", "standard_model", "parameters", "state"]
)
def test_update_refuses_what_it_may_not_change(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        fields.update_fields({"title": "New", name: "x"})
    assert str(refused.value) == f"{name}: cannot be updated; updatable: {UPDATABLE}"


def test_update_checks_values_and_null_clears_the_optional_names() -> None:
    assert fields.update_fields({"impact": "high", "environment": None, "tested_in_staging": None}) == {
        "impact": Level.HIGH,
        "environment": None,
        "tested_in_staging": None,
    }
    with pytest.raises(ValidationError, match=r"^title: must be text, not NoneType$"):
        fields.update_fields({"title": None})


def _options(command: str) -> dict[str, str]:
    """dest → option string of a command's parser."""
    sub = build_parser(command)._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    return {a.dest: a.option_strings[0] if a.option_strings else a.metavar for a in sub._actions}


def test_every_field_has_a_cli_argument() -> None:
    create, update = _options("create"), _options("update")
    for f in FIELDS.values():
        assert f.name in create or f"{f.name}_pos" in create, f.name
        assert (f.name in update) == f.updatable, f.name
    assert create["impact"] == "--impact" and create["impact_pos"] == "IMPACT"
    assert (create["affected_services"], create["standard_model"], create["parameters"]) == (
        "--service",
        "--model",
        "--param",
    )


def test_cli_arguments_become_the_tables_fields() -> None:
    a = build_parser("create").parse_args(
        [
            "create",
            "standard",
            "infrastructure",
            "Scale",
            "more",
            "--requester",
            "ops",
            "--impact",
            "low",
            "--service",
            "web",
            "--service",
            "db",
            "--implementation-plan",
            '{"steps": ["scale"]}',
            "--model",
            "autoscale",
            "--param",
            "replicas=4",
        ]
    )
    given = inputs.fields_given(a, inputs.PLAN_JSON_MAX, {"affected_services": ["api"]}, append=True)
    assert given == {
        "type": "standard",
        "category": "infrastructure",
        "title": "Scale",
        "description": "more",
        "impact": "low",
        "affected_services": ["api", "web", "db"],
        "implementation_plan": {"steps": ["scale"]},
        "standard_model": "autoscale",
        "parameters": {"replicas": 4},
    }
    request = ChangeRequest.of({**given, "requested_by": a.requested_by})
    assert request.requested_by == "ops" and request.parameters == {"replicas": 4}


def test_details_keys_are_the_tables() -> None:
    with pytest.raises(ValidationError) as refused:
        inputs.details('{"title": "x"}')
    allowed = ", ".join(sorted(f.name for f in FIELDS.values() if f.cli.details))
    assert str(refused.value) == f"details: unknown field(s) title; allowed: {allowed}"


def test_every_field_the_api_takes_is_in_its_request_bodies() -> None:
    from cortex_change.api.schemas import ChangeUpdate, NewChange

    create, update = NewChange.model_json_schema(), ChangeUpdate.model_json_schema()
    assert list(create["properties"]) == [f.name for f in FIELDS.values() if f.api]
    assert "requested_by" not in create["properties"]  # the token's identity
    assert list(update["properties"]) == list(fields.UPDATABLE)
    assert create["required"] == ["type", "category", "title"]
    assert "required" not in update
    assert create["additionalProperties"] is update["additionalProperties"] is False
    kinds = {Kind.NAMES: "array", Kind.PLAN: "object", Kind.PARAMETERS: "object", Kind.TEXT: "string"}
    for f in FIELDS.values():
        if not f.api:
            continue
        prop = create["properties"][f.name]
        types = [prop["type"]] if "type" in prop else [t["type"] for t in prop["anyOf"]]
        assert kinds.get(f.kind, types[0]) == types[0], f.name
        assert prop.get("enum", list(f.choices) or None) == (list(f.choices) or None), f.name
        assert prop.get("maxLength") == f.max_len, f.name
    assert create["properties"]["title"]["minLength"] == 1
    assert create["properties"]["impact"]["default"] == "medium"


def test_the_table_is_cheap_to_import() -> None:
    """Pure domain: no dataclasses (inspect), no typing at run time, nothing outside the domain."""
    probe = (
        "import sys; import cortex_change.domain.fields; "
        "print(sorted(m for m in sys.modules if m in {'dataclasses', 'inspect', 'typing', 'pydantic'} "
        "or m.startswith('cortex_change.') and not m.startswith('cortex_change.domain')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
