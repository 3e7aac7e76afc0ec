"""The new-change form: its state between round trips, and the request it files.

The form is the field table (`domain/fields.py`) laid out for a browser; a plan is a list of
step rows (text, a catalog runbook with its parameters, or a JSON step object) that the browser
adds and removes by round trips (or htmx). Values are checked by `ChangeRequest.of`, exactly as
the CLI's and the API's are; this module only reshapes what the browser sent.
"""

from __future__ import annotations

import json
from typing import Any

from ..domain.errors import ValidationError
from ..domain.fields import FIELDS, Kind

PLANS = ("implementation_plan", "rollback_plan", "test_plan")
LISTS = tuple(name for name, f in FIELDS.items() if f.kind == Kind.NAMES)
STEPS_SHOWN_MIN = 1
STEP_ROWS_MAX = 100


class Step:
    """One step row as the browser shows it: `kind` is text, json or runbook:NAME."""

    __slots__ = ("kind", "value")

    def __init__(self, kind: str = "text", value: str = "") -> None:
        self.kind = kind
        self.value = value


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0] if values else default


def rows(form: dict[str, list[str]], plan: str) -> list[Step]:
    kinds = form.get(f"{plan}.kind", [])
    values = form.get(f"{plan}.value", [])
    steps = [Step(k, v) for k, v in zip(kinds, values, strict=False)][:STEP_ROWS_MAX]
    return steps


def state(form: dict[str, list[str]] | None) -> dict[str, Any]:
    """What the form shows: the values sent back (or the defaults), plans as rows, after the
    add/remove-step button that was pressed (`op`: add:PLAN or remove:PLAN:INDEX)."""
    form = form or {}
    values: dict[str, Any] = {
        name: first(form, name, "" if f.default in (None, [], {}) else str(f.default))
        for name, f in FIELDS.items()
        if f.kind not in (Kind.PLAN, Kind.IDENTITY)
    }
    plans = {plan: rows(form, plan) for plan in PLANS}
    op = first(form, "op")
    if op.startswith("add:") and op[4:] in plans and len(plans[op[4:]]) < STEP_ROWS_MAX:
        plans[op[4:]].append(Step())
    elif op.startswith("remove:"):
        _, plan, index = [*op.split(":"), "", ""][:3]
        if plan in plans and index.isdigit() and int(index) < len(plans[plan]):
            del plans[plan][int(index)]
    for plan in PLANS:
        if len(plans[plan]) < STEPS_SHOWN_MIN:
            plans[plan].append(Step())
    values["plans"] = plans
    return values


def _names(text: str) -> list[str]:
    return [p.strip() for p in text.replace("\n", ",").split(",") if p.strip()]


def _pairs(field: str, text: str) -> dict[str, str]:
    """`key=value` pairs, one per line or comma-separated."""
    out: dict[str, str] = {}
    for part in text.replace("\n", ",").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValidationError(field, f"{part.strip()[:60]!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _step(plan: str, i: int, row: Step) -> Any:
    where = f"{plan} step {i}"
    if row.kind == "text":
        return row.value.strip()
    if row.kind == "json":
        try:
            value = json.loads(row.value)
        except ValueError:
            raise ValidationError(where, "is not a JSON object (a run, http or runbook step)") from None
        return value
    if row.kind.startswith("runbook:"):
        return {"runbook": row.kind[len("runbook:") :], "params": _pairs(f"{where} parameters", row.value)}
    raise ValidationError(where, f"kind {row.kind[:40]!r} is not text, json or runbook:NAME")


def request_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The form's state as the fields of a request (`ChangeRequest.of` checks them)."""
    out: dict[str, Any] = {}
    for name, f in FIELDS.items():
        if f.kind in (Kind.PLAN, Kind.IDENTITY):
            continue
        text = str(values.get(name, ""))
        if f.kind == Kind.NAMES:
            out[name] = _names(text)
        elif f.kind == Kind.PARAMETERS:
            out[name] = _pairs(name, text)
        elif f.kind == Kind.DOCUMENT:
            if text.strip():
                try:
                    out[name] = json.loads(text)
                except ValueError:
                    raise ValidationError(name, "is not a JSON object") from None
        elif text.strip() or f.required or f.kind in (Kind.TEXT,):
            out[name] = text if f.kind == Kind.TEXT else text.strip()
    for plan in PLANS:
        steps = [
            _step(plan, i, row)
            for i, row in enumerate(values["plans"][plan], 1)
            if row.value.strip() or row.kind != "text"
        ]
        if steps:
            out[plan] = {"steps": steps}
    if out.get("type") != "standard":
        out.pop("standard_model", None)
        if not out.get("parameters"):
            out.pop("parameters", None)
    return out
