"""The change fields a requester supplies (SPEC §1), each declared once: the field table.

Each `Field` says what the field holds (`Kind`, its choices), how a value is checked (the
functions of `validation.py` and `plan.py`, with their wording), whether `update` may change
it and whether changing it makes the editor an author, and how the doors offer it: the CLI's
flag or positional argument and help (`Cli`), the API's description, length limits and example.
`FIELDS` (name → Field) is the table; the CLI's create/update grammar (`cli/parser.py`,
`cli/commands.py`, the `--details` keys), the API's request bodies (`api/schemas.py`),
`workflow.UPDATABLE`/`AUTHORING` and the checks below derive from it.

`ChangeRequest.of(mapping, limits)` checks a whole request to file a change (unknown fields
refused, required ones present, defaults applied, each value checked in table order, a standard
model named only by a standard request); the request carries `requested_by`, the identity the
door established (the CLI's requester, the API's token). `services.changes.create_change(ctx,
request)` takes it and does what needs the store or the catalog: the model's existence, runbook
stamping of plans, the staging citation, the category against the policy. `update_fields`
checks the fields of an `update` (only updatable ones, each value checked).
"""

from __future__ import annotations

from . import validation as v
from .errors import ValidationError
from .model import ChangeType, Level
from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime
    from typing import Any, Final

    from .model import Plan

    Check = Callable[[str, Any, v.Limits], Any]


class Kind:
    """What a field's value is: the doors choose their input and schema type from it (plain
    strings: an enum class costs start-up time)."""

    TEXT = "text"  # free text (title, description)
    CHOICE = "choice"  # one of `Field.choices`
    CATEGORY = "category"  # one of the policy's categories (checked at filing)
    IDENTITY = "identity"  # who asks
    NAME = "name"  # a one-line name; null clears it on update
    NAMES = "names"  # a list of names
    PLAN = "plan"  # a plan document ({"steps": [...]})
    DOCUMENT = "document"  # another JSON object (the validation block)
    CHANGE_ID = "change_id"  # an earlier change; null clears it on update
    MODEL = "model"  # a standard change model of the catalog (checked at filing)
    TIME = "time"  # an ISO 8601 time with an offset; null clears it on update
    PARAMETERS = "parameters"  # a standard request's named values


class Cli(Frozen):
    """How the command line offers a field.

    `option` (e.g. `--service`) is offered by the commands in `commands` (create and, when the
    field is updatable, update); `repeat` makes it one value per use (a list). `positional`
    is create's positional argument of the seed's grammar (`create TYPE CATEGORY TITLE …`).
    `details`: the field may be given in a `--details` JSON object.
    """

    __slots__ = (
        "commands",
        "details",
        "help",
        "metavar",
        "option",
        "positional",
        "positional_help",
        "repeat",
    )

    def __init__(
        self,
        option: str | None = None,
        metavar: str | None = None,
        help: str | None = None,
        *,
        repeat: bool = False,
        positional: str | None = None,
        positional_help: str | None = None,
        commands: tuple[str, ...] = ("create", "update"),
        details: bool = False,
    ) -> None:
        self.option: Final = option
        self.metavar: Final = metavar
        self.help: Final = help
        self.repeat: Final = repeat
        self.positional: Final = positional
        self.positional_help: Final = positional_help
        self.commands: Final = commands
        self.details: Final = details


class Field(Frozen):
    """One change field: its kind, check, rules and how each door offers it.

    `check(name, value, limits)` returns the value to store or raises `ValidationError`;
    without `required`, an absent value is `default` (checked like a given one). `api`:
    whether the API's body takes it (`requested_by` comes from the token); `doc`, `example`,
    `min_len`/`max_len` are what the API's schema documents (the check enforces them).
    """

    __slots__ = (
        "api",
        "authoring",
        "check",
        "choices",
        "cli",
        "default",
        "doc",
        "example",
        "kind",
        "max_len",
        "min_len",
        "name",
        "required",
        "updatable",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        check: Check,
        cli: Cli,
        *,
        doc: str,
        choices: tuple[str, ...] = (),
        required: bool = False,
        default: Any = None,
        updatable: bool = False,
        authoring: bool = False,
        api: bool = True,
        max_len: int | None = None,
        min_len: int = 0,
        example: str | None = None,
    ) -> None:
        self.name: Final = name
        self.kind: Final = kind
        self.check: Final = check
        self.cli: Final = cli
        self.doc: Final = doc
        self.choices: Final = choices
        self.required: Final = required
        self.default: Final = default
        self.updatable: Final = updatable
        self.authoring: Final = authoring
        self.api: Final = api
        self.max_len: Final = max_len
        self.min_len: Final = min_len
        self.example: Final = example


# --- checks: the validation functions, called with the field's name and the configured limits ---


def _as_given(field: str, value: Any, limits: v.Limits) -> Any:
    return value


def _type(field: str, value: Any, limits: v.Limits) -> ChangeType:
    return v.choice(field, value, ChangeType)


def _level(field: str, value: Any, limits: v.Limits) -> Level:
    return v.choice(field, value, Level)


def _title(field: str, value: Any, limits: v.Limits) -> str:
    return v.title(value)


def _description(field: str, value: Any, limits: v.Limits) -> str:
    return v.description(value)


def _identity(field: str, value: Any, limits: v.Limits) -> str:
    return v.identity(field, value)


def _names(field: str, value: Any, limits: v.Limits) -> list[str]:
    return v.names(field, value)


def _plan(field: str, value: Any, limits: v.Limits) -> Plan | None:
    return v.plan(field, value, limits)


def _validation(field: str, value: Any, limits: v.Limits) -> dict[str, Any] | None:
    from .plan import check_validation

    return check_validation(v.document(field, value, limits.json_bytes))


def _name_or_none(field: str, value: Any, limits: v.Limits) -> str | None:
    return None if value is None else v.name(field, value)


def _change_id_or_none(field: str, value: Any, limits: v.Limits) -> str | None:
    return None if value is None else v.change_id(value)


def _time_or_none(field: str, value: Any, limits: v.Limits) -> datetime | None:
    if value is None:
        return None
    from .schedule import instant

    return instant(field, value)


def _parameters(field: str, value: Any, limits: v.Limits) -> dict[str, Any]:
    return v.parameters(value or {}, limits.json_bytes)


_LEVELS = tuple(level.value for level in Level)
_TYPES = tuple(t.value for t in ChangeType)
_JSON = "JSON|@FILE"

FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field(
            "type",
            Kind.CHOICE,
            _type,
            Cli(positional="TYPE", positional_help=" | ".join(_TYPES)),
            doc="standard, normal or emergency",
            choices=_TYPES,
            required=True,
            example="normal",
        ),
        Field(
            "category",
            Kind.CATEGORY,
            _as_given,  # one of the policy's categories: workflow.created checks it
            Cli(positional="CATEGORY", positional_help="deployment, security, infrastructure, ..."),
            doc="one of the configured categories (deployment, security, infrastructure, ...)",
            required=True,
            example="deployment",
        ),
        Field(
            "title",
            Kind.TEXT,
            _title,
            Cli("--title", positional="TITLE", commands=("update",)),
            doc="1–200 characters, stored exactly as given",
            required=True,
            updatable=True,
            max_len=v.TITLE_MAX,
            min_len=1,
            example="Deploy new feature X",
        ),
        Field(
            "description",
            Kind.TEXT,
            _description,
            Cli("--description", positional="DESCRIPTION", commands=("update",)),
            doc="0–20 000 characters",
            default="",
            updatable=True,
            authoring=True,
            max_len=v.DESCRIPTION_MAX,
        ),
        Field(
            "requested_by",
            Kind.IDENTITY,
            _identity,
            Cli("--requester", "NAME", positional="REQUESTER", commands=("create",)),
            doc="the requester's identity",
            required=True,
            api=False,  # the API's requester is the token's identity
        ),
        Field(
            "impact",
            Kind.CHOICE,
            _level,
            Cli("--impact", "|".join(_LEVELS), positional="IMPACT", details=True),
            doc="low, medium, high or critical",
            choices=_LEVELS,
            default="medium",
            updatable=True,
            authoring=True,
        ),
        Field(
            "urgency",
            Kind.CHOICE,
            _level,
            Cli("--urgency", "|".join(_LEVELS), positional="URGENCY", details=True),
            doc="low, medium, high or critical",
            choices=_LEVELS,
            default="medium",
            updatable=True,
            authoring=True,
        ),
        Field(
            "affected_services",
            Kind.NAMES,
            _names,
            Cli("--service", "NAME", "affected service (repeat)", repeat=True, details=True),
            doc="the services the change touches",
            default=[],
            updatable=True,
            authoring=True,
        ),
        Field(
            "affected_cis",
            Kind.NAMES,
            _names,
            Cli("--ci", "NAME", "affected configuration item (repeat)", repeat=True, details=True),
            doc="the configuration items the change touches",
            default=[],
            updatable=True,
            authoring=True,
        ),
        Field(
            "dependencies",
            Kind.NAMES,
            _names,
            Cli("--dependency", "NAME", "dependency (repeat)", repeat=True, details=True),
            doc="what the change depends on",
            default=[],
            updatable=True,
            authoring=True,
        ),
        Field(
            "implementation_plan",
            Kind.PLAN,
            _plan,
            Cli("--implementation-plan", _JSON, details=True),
            doc='the plan: {"steps": [text or run/http/runbook steps], ...}',
            updatable=True,
            authoring=True,
        ),
        Field(
            "rollback_plan",
            Kind.PLAN,
            _plan,
            Cli("--rollback-plan", _JSON, details=True),
            doc='how to undo it: {"steps": [...], ...}',
            updatable=True,
            authoring=True,
        ),
        Field(
            "test_plan",
            Kind.PLAN,
            _plan,
            Cli("--test-plan", _JSON, details=True),
            doc='how it was tested: {"steps": [...], ...}',
            updatable=True,
            authoring=True,
        ),
        Field(
            "validation",
            Kind.DOCUMENT,
            _validation,
            Cli(
                "--validation",
                _JSON,
                "post-change checks: health_checks, period, interval, ...",
                details=True,
            ),
            doc="post-change checks: health_checks, period, interval, failures_to_trip, prometheus",
            updatable=True,
            authoring=True,
        ),
        Field(
            "environment",
            Kind.NAME,
            _name_or_none,
            Cli("--environment", "NAME", "e.g. staging, production", details=True),
            doc="e.g. staging, production (null clears it)",
            updatable=True,
        ),
        Field(
            "tested_in_staging",
            Kind.CHANGE_ID,
            _change_id_or_none,
            Cli("--tested-in-staging", "CHANGE_ID", details=True),
            doc="the change that tested this one in staging (null clears it)",
            updatable=True,
        ),
        Field(
            "planned_start",
            Kind.TIME,
            _time_or_none,
            Cli(
                "--planned-start",
                "TIME",
                "start of the window it may be carried out in (ISO 8601)",
                details=True,
            ),
            doc="start of the window implementation may happen in: ISO 8601 with an offset, kept in UTC "
            "(null clears it)",
            updatable=True,
            example="2026-12-01T22:00:00+01:00",
        ),
        Field(
            "planned_end",
            Kind.TIME,
            _time_or_none,
            Cli("--planned-end", "TIME", "end of that window (ISO 8601)", details=True),
            doc="end of that window (after planned_start, at most 30 days later; null clears it)",
            updatable=True,
            example="2026-12-02T02:00:00+01:00",
        ),
        Field(
            "standard_model",
            Kind.MODEL,
            _as_given,  # a model of the catalog: services.changes checks it
            Cli(
                "--model", "NAME", "the standard change model a standard change follows", commands=("create",)
            ),
            doc="the standard change model a standard change follows",
        ),
        Field(
            "parameters",
            Kind.PARAMETERS,
            _parameters,
            Cli("--param", "KEY=VALUE", "a model parameter (repeat)", repeat=True, commands=("create",)),
            doc="the standard model's parameters: text, numbers, true/false or lists of those",
            default={},
        ),
    )
}
UPDATABLE = tuple(f.name for f in FIELDS.values() if f.updatable)
# Editing any updatable field but the title, the environment or a staging citation makes the
# editor an author: segregation of duties then covers them (those are not the change's substance).
AUTHORING = frozenset(f.name for f in FIELDS.values() if f.authoring)
DETAILS = frozenset(f.name for f in FIELDS.values() if f.cli.details)  # the CLI's --details keys


def not_updatable(name: str) -> ValidationError:
    return ValidationError(name, f"cannot be updated; updatable: {', '.join(UPDATABLE)}")


def update_fields(fields: Mapping[str, Any], limits: v.Limits = v.DEFAULT_LIMITS) -> dict[str, Any]:
    """The checked values of an update, in the order given (the first bad one is refused)."""
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        field = FIELDS.get(name)
        if field is None or not field.updatable:
            raise not_updatable(name)
        clean[name] = field.check(name, value, limits)
    return clean


class ChangeRequest(Frozen):
    """A checked request to file a change: build it with `of`, which checks every field."""

    __slots__ = (
        "affected_cis",
        "affected_services",
        "category",
        "dependencies",
        "description",
        "environment",
        "impact",
        "implementation_plan",
        "parameters",
        "planned_end",
        "planned_start",
        "requested_by",
        "rollback_plan",
        "standard_model",
        "test_plan",
        "tested_in_staging",
        "title",
        "type",
        "urgency",
        "validation",
    )

    def __init__(
        self,
        *,
        type: ChangeType,
        category: str,
        title: str,
        description: str,
        requested_by: str,
        impact: Level,
        urgency: Level,
        affected_services: list[str],
        affected_cis: list[str],
        dependencies: list[str],
        implementation_plan: Plan | None,
        rollback_plan: Plan | None,
        test_plan: Plan | None,
        validation: dict[str, Any] | None,
        environment: str | None,
        tested_in_staging: str | None,
        standard_model: str | None,
        parameters: dict[str, Any],
        planned_start: datetime | None = None,
        planned_end: datetime | None = None,
    ) -> None:
        self.type: Final = type
        self.category: Final = category
        self.title: Final = title
        self.description: Final = description
        self.requested_by: Final = requested_by
        self.impact: Final = impact
        self.urgency: Final = urgency
        self.affected_services: Final = affected_services
        self.affected_cis: Final = affected_cis
        self.dependencies: Final = dependencies
        self.implementation_plan: Final = implementation_plan
        self.rollback_plan: Final = rollback_plan
        self.test_plan: Final = test_plan
        self.validation: Final = validation
        self.environment: Final = environment
        self.tested_in_staging: Final = tested_in_staging
        self.standard_model: Final = standard_model
        self.parameters: Final = parameters
        self.planned_start: Final = planned_start
        self.planned_end: Final = planned_end

    @classmethod
    def of(cls, fields: Mapping[str, Any], limits: v.Limits = v.DEFAULT_LIMITS) -> ChangeRequest:
        """Check a request given as a mapping of field names (SPEC §1's) to values, within the
        configured `limits` (PLAN_JSON_MAX, STEP_TIMEOUT_MAX)."""
        unknown = [name for name in fields if name not in FIELDS]
        if unknown:
            raise ValidationError(unknown[0], f"is not a change field; fields: {', '.join(FIELDS)}")
        clean: dict[str, Any] = {}
        for name, field in FIELDS.items():
            if name in fields:
                value = fields[name]
            elif field.required:
                raise ValidationError(name, "is required")
            else:
                value = field.default
            clean[name] = field.check(name, value, limits)
        if clean["standard_model"] is not None and clean["type"] is not ChangeType.STANDARD:
            raise ValidationError(
                "model", f"only standard changes name a model (this one is {clean['type'].value})"
            )
        request: ChangeRequest = cls(**clean)
        return request

    def to_fields(self) -> dict[str, Any]:
        """The request's values by field name (what `Change` takes)."""
        return {name: getattr(self, name) for name in self._fields}
