"""Request bodies. Field names are SPEC §1's; the domain validates values (one wording)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, create_model

from ..domain import fields
from ..domain import validation as v
from ..domain.lifecycle import State
from ..domain.model import ChangeType, ClosureStatus, Decision, Level, ReviewOutcome, Route


def _values(enum: type[StrEnum]) -> list[str]:
    return [e.value for e in enum]


def _one_of(enum: type[StrEnum], **kw: Any) -> Any:
    """A field documented as an enum but validated by the domain (so errors read as the CLI's)."""
    extra: dict[str, Any] = {"enum": _values(enum)}
    return Field(json_schema_extra=extra, **kw)


def _text(max_len: int, min_len: int = 0, **kw: Any) -> Any:
    """Length documented; enforced by the domain with the CLI's wording."""
    extra: dict[str, Any] = {"maxLength": max_len}
    if min_len:
        extra["minLength"] = min_len
    return Field(json_schema_extra=extra, **kw)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _annotation(field: fields.Field) -> Any:
    """The JSON type of a field's kind; the domain checks the value (with the CLI's wording)."""
    kinds = fields.Kind
    if field.kind == kinds.NAMES:
        return list[str]
    if field.kind in (kinds.PLAN, kinds.DOCUMENT, kinds.PARAMETERS):
        return dict[str, Any]
    return str


def _change_body(name: str, doc: str, update: bool) -> type[Body]:
    """A request body from the field table (domain/fields.py): create's fields (those the API
    takes: the requester is the token's identity), or update's, each optional."""
    declared: dict[str, Any] = {}
    for field in fields.FIELDS.values():
        if not field.api or (update and not field.updatable):
            continue
        extra: dict[str, Any] = {}
        if field.choices:
            extra["enum"] = list(field.choices)
        if field.max_len is not None:
            extra["maxLength"] = field.max_len
        if field.min_len:
            extra["minLength"] = field.min_len
        kw: dict[str, Any] = {"description": field.doc, "json_schema_extra": extra or None}
        annotation = _annotation(field)
        if update or (not field.required and field.default is None):
            annotation = annotation | None
        if update:
            kw["default"] = None
        else:
            if not field.required:
                kw["default"] = field.default
            if field.example is not None:
                kw["examples"] = [field.example]
        declared[field.name] = (annotation, Field(**kw))
    model: type[Body] = create_model(name, __base__=Body, __doc__=doc, __module__=__name__, **declared)
    return model


if TYPE_CHECKING:  # built at run time; the routes only dump them
    NewChange = Body
    ChangeUpdate = Body
else:
    NewChange = _change_body(
        "NewChange", "A request for change (SPEC §1); the requester is the token's.", False
    )
    ChangeUpdate = _change_body(
        "ChangeUpdate", "Descriptive fields to change before approval; only those given are changed.", True
    )


class Identity(BaseModel):
    name: str
    agent: bool = Field(description="an agent's identity (token create --agent), not a person's")
    scopes: dict[str, Any] = Field(
        description="what the token allows (docs/agents.md): components, categories, types, max_level, "
        "rate (absent: anything), read_only, worker"
    )


class Assess(Body):
    reassess: bool = False
    reason: str | None = Field(
        None,
        min_length=1,
        max_length=v.REASON_MAX,
        description="with reassess: a CHANGE_MANAGERS member lets the route fall below the highest reached",
    )


class Decide(Body):
    reason: str = _text(v.REASON_MAX, 1, examples=["Approved for deployment"])
    role: str | None = Field(None, description="the role to count this vote under (cab, ciso, cto, …)")


class Close(Body):
    status: str = _one_of(ClosureStatus, examples=["successful"])
    notes: str = _text(v.DESCRIPTION_MAX, default="")


class Cancel(Body):
    reason: str = _text(v.REASON_MAX, 1, examples=["superseded by a later change"])


class Review(Body):
    outcome: str = _one_of(ReviewOutcome, examples=["accepted"])
    notes: str = _text(v.DESCRIPTION_MAX, default="")


class Integrate(Body):
    details: str | dict[str, Any] | None = None
    args: list[str] = []


class PirFindings(Body):
    """The findings of a post-implementation review (docs/pir.md)."""

    findings: str = _text(v.DESCRIPTION_MAX, 1, examples=["Root cause: the config drifted from Git."])


class PirAction(Body):
    """An action item: what, who, by when (YYYY-MM-DD, UTC, today or later)."""

    title: str = _text(v.TITLE_MAX, 1, examples=["Alert on config drift"])
    owner: str = _text(v.IDENTITY_MAX, 1, examples=["ops-lead"])
    due: str = Field(examples=["2026-12-31"], json_schema_extra={"format": "date"})


# --- responses: what the routes answer (documented; the routes build the documents) -------------


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(Out):
    """RFC 9457 problem details; `detail` has the CLI's wording."""

    type: str = Field(examples=["https://cortex-change.dev/problems/invalid-transition"])
    title: str
    status: int
    detail: str
    instance: str


class RiskComponent(Out):
    points: int | float
    reason: str


class BlastRadius(Out):
    """What the CMDB said at assessment (docs/cmdb.md): the radius's size, its nearest CIs with
    their paths, the most critical one, PHI/PCI found in it, names the CMDB does not know."""

    size: int
    cis: list[dict[str, Any]]
    most_critical: str | None
    sensitive: list[dict[str, Any]]
    unknown: list[str]


class Assessment(Out):
    score: int | float
    level: str = _one_of(Level)
    priority: str
    route: str = _one_of(Route)
    route_reason: str
    components: dict[str, RiskComponent]
    history_used: list[str]
    testing_required: str
    assigned_to: str
    assessed_at: str
    staging_evidence: str | None
    blast_radius: BlastRadius | None = Field(None, description="null without a CMDB")
    features: dict[str, float] | None = Field(
        None, description="what a learned risk model may know of the change at this assessment"
    )
    prediction: dict[str, Any] | None = Field(
        None,
        description="the learned model's P(failure or rollback), its version and largest factors "
        "(null without a model, ML_PREDICTION=false or RISK_MODEL=rules; docs/risk-model.md)",
    )
    forecast: dict[str, Any] | None = Field(
        None,
        description="the expected change in error rate and latency (median, 80 % interval) from "
        "earlier changes' statistical validation of the same services, or no history (docs/canary.md)",
    )


class Approval(Out):
    approver: str
    role: str
    decision: str = _one_of(Decision)
    reason: str
    at: str
    active: bool


class ReviewRecord(Out):
    due_at: str | None
    reviewed_at: str | None
    reviewer: str | None
    outcome: str | None
    notes: str | None


class Timeline(Out):
    created_at: str
    assessed_at: str | None
    approved_at: str | None
    implementation_started_at: str | None
    implemented_at: str | None
    closed_at: str | None
    mtta_seconds: int | float | None
    mtti_seconds: int | float | None


class Control(Out):
    control: str
    status: str
    reason: str


class AuditEvent(Out):
    seq: int
    timestamp: str
    action: str
    actor: str
    details: dict[str, Any]
    hash: str


class ChangeDocument(Out):
    """SPEC §1's document: exactly what `cortex-change show ID` prints."""

    change_id: str
    type: str = _one_of(ChangeType)
    category: str
    title: str
    description: str
    requested_by: str
    impact: str = _one_of(Level)
    urgency: str = _one_of(Level)
    implementation_plan: dict[str, Any] | None
    rollback_plan: dict[str, Any] | None
    test_plan: dict[str, Any] | None
    validation: dict[str, Any] | None
    affected_services: list[str]
    affected_cis: list[str]
    dependencies: list[str]
    environment: str | None
    tested_in_staging: str | None
    planned_start: str | None = Field(description="the window it may be carried out in (UTC)")
    planned_end: str | None
    priority: str | None
    risk_score: int | float | None
    risk_level: str | None
    approval_required: str | None
    assigned_to: str | None
    assessment: Assessment | None
    state: str = _one_of(State)
    closure_status: str | None
    closure_notes: str | None
    approvals: list[Approval]
    review: ReviewRecord | None
    reclassified_from: str | None
    standard_model: str | None
    parameters: dict[str, Any]
    authors: list[str] = Field(
        description="the requester and everyone who edited plans, services, impact or description"
    )
    route_floor: str | None = Field(
        description="the highest route a human had to decide; re-assessment never goes below it"
    )
    origin: str = Field(
        description="who filed it: a person (human) or an agent's identity (agent); docs/agents.md",
        json_schema_extra={"enum": ["human", "agent"]},
    )
    agent_max_level: str | None = Field(
        description="the filing agent token's max-level: above it a person co-signs (null: none)"
    )
    metrics: Timeline
    version: int
    compliance: dict[str, list[Control]]
    audit_trail: list[AuditEvent]


class ChangeSummary(Out):
    change_id: str
    state: str = _one_of(State)
    type: str = _one_of(ChangeType)
    category: str
    risk_level: str | None
    risk_score: int | float | None
    title: str
    created_at: str


class ChangePage(Out):
    items: list[ChangeSummary]
    next: str | None = Field(description="pass as `before` for the next page; null on the last page")


class PirActionItem(Out):
    action_id: str
    title: str
    owner: str
    due: str
    status: str = Field(json_schema_extra={"enum": ["open", "done"]})
    overdue: bool
    added_at: str
    added_by: str
    done_at: str | None
    done_by: str | None


class PirDocument(Out):
    """A change's post-implementation review (`pir show`; docs/pir.md)."""

    change_id: str
    title: str | None
    status: str = Field(json_schema_extra={"enum": ["open", "completed"]})
    reason: str
    owner: str
    implementer: str | None
    opened_at: str
    due_at: str
    overdue: bool
    findings: str | None
    findings_by: str | None
    findings_at: str | None
    completed_at: str | None
    completed_by: str | None
    actions: list[PirActionItem]


class OverdueReview(Out):
    """An emergency change whose retrospective review is past due (`review overdue`)."""

    change_id: str
    title: str
    state: str = _one_of(State)
    type: str = _one_of(ChangeType)
    category: str
    risk_level: str | None
    requested_by: str
    created_at: str
    approved_at: str | None
    due_at: str
    overdue_seconds: int


class Health(Out):
    status: str


class Ready(Out):
    status: str
    schema_version: int
    automation_halted: dict[str, Any] | None = Field(
        description="the kill switch (freeze on): reason, by, since; null while automation runs"
    )
    change_management: str = Field(
        "enabled",
        json_schema_extra={"enum": ["enabled", "disabled"]},
        description="disabled: CHANGE_MGMT_ENABLED=false, nothing approved by itself, no deploy gated",
    )


class ModelCondition(Out):
    kind: str
    field: str
    limit: int | None
    window_seconds: int | None
    min: int | float | None
    max: int | float | str | None
    absolute: bool
    scale: list[str]
    whole: bool = Field(description="range: whole numbers only")


class StandardModel(Out):
    name: str
    description: str
    enabled: bool
    rule: str
    condition: ModelCondition
    otherwise: str = _one_of(ChangeType)
    max_level: str = _one_of(Level, description="the highest assessed risk level it pre-approves")


class Verdict(Out):
    ok: bool
    checked: int
    head_hash: str | None
    problem: str | None
    first_bad_seq: int | None


class Kpi(Out):
    key: str
    name: str
    value: int | float | None
    unit: str
    target: str
    met: bool | None
    note: str


class Period(Out):
    label: str
    start: str
    end: str


class PirFigures(Out):
    """Post-implementation reviews in the period (docs/pir.md)."""

    opened: int
    completed: int
    overdue: int
    actions_open: int
    actions_overdue: int


class MetricsReport(Out):
    period: Period
    changes_created: int
    changes_by_state: dict[str, int]
    changes_by_type: dict[str, int]
    closures: dict[str, int]
    kpis: list[Kpi]
    dora: list[Kpi]
    post_implementation_reviews: PirFigures


class ChainVerdict(Out):
    ok: bool
    checked: int
    head_hash: str
    first_broken: int | None
    problem: str | None


class ControlCounts(Out):
    control: str
    title: str
    reference: str
    passed: int = Field(alias="pass")
    fail: int
    pending: int
    not_applicable: int


class NotAssessed(Out):
    control: str
    title: str
    reference: str
    why: str


class EvidenceEvent(Out):
    seq: int
    action: str
    hash: str


class Finding(Control):
    evidence: list[EvidenceEvent]


class Approver(Out):
    approver: str
    role: str
    decision: str = _one_of(Decision)
    at: str


class CitedCheckpoint(Out):
    """The last witnessed checkpoint, when it vouches for all of a change's events (docs/checkpoints.md)."""

    number: int
    length: int
    head: str
    at: str
    witnesses: list[str]


class WitnessTaken(Out):
    witness: str
    delivered_at: str
    detail: str  # the TSA's genTime, the S3 object; "" for the others


class WitnessedCheckpoint(Out):
    """The chain's last checkpoint a witness took, and whether the chain still holds its head."""

    number: int
    length: int
    head: str
    at: str
    matches_chain: bool
    witnesses: list[WitnessTaken]


class ChangeFindings(Out):
    change_id: str
    title: str
    type: str = _one_of(ChangeType)
    state: str = _one_of(State)
    closure_status: str | None
    risk_level: str | None
    requested_by: str
    created_at: str
    phi: list[str]
    incidents: list[str]
    approvers: list[Approver]
    last_hash: str | None
    checkpoint: CitedCheckpoint | None
    controls: list[Finding]


class ComplianceReport(Out):
    framework: str
    framework_name: str
    period: Period
    generated_at: str
    audit_chain: ChainVerdict
    checkpoint: WitnessedCheckpoint | None
    notes: list[str]
    controls: list[ControlCounts]
    not_assessed: list[NotAssessed]
    changes: list[ChangeFindings]


class Schedule(Out):
    """The window a change may be carried out in (ISO 8601 with an offset; kept in UTC)."""

    planned_start: str = Field(json_schema_extra={"example": "2026-12-01T22:00:00+01:00"})
    planned_end: str = Field(json_schema_extra={"example": "2026-12-02T02:00:00+01:00"})


class GateVerdict(Out):
    """May a deploy go ahead now: the change that allows it, or each reason it may not."""

    allowed: bool
    change_id: str | None
    reasons: list[str]
    at: str


class NewWindow(Body):
    """A freeze or maintenance window (`windows add`): dates, or recurring with cron + duration."""

    kind: str = Field(json_schema_extra={"enum": ["freeze", "maintenance"]})
    start: str | None = Field(None, description="ISO 8601 (with cron: default now)")
    end: str | None = Field(None, description="ISO 8601 (with cron: default start + 360 days)")
    scope: str = Field("all", description="all, environment:NAME, service:NAME or tier:N")
    reason: str = _text(5000, 1)
    cron: str | None = Field(None, description="recurring: at these times (UTC)")
    duration: str | None = Field(None, description="each occurrence's length, e.g. 4h")
    policy: str | None = Field(None, json_schema_extra={"enum": ["refuse", "cab"]})


class ChangeWindow(Out):
    """A freeze (no changes but emergencies; FREEZE_POLICY=cab: the CAB decides) or a
    maintenance window, with its scope (docs/schedule.md)."""

    window_id: str
    kind: str = Field(json_schema_extra={"enum": ["freeze", "maintenance"]})
    starts_at: str
    ends_at: str
    scope: str = Field(json_schema_extra={"enum": ["all", "environment", "service", "tier"]})
    scope_value: str | None
    reason: str
    created_by: str
    cron: str | None = Field(
        description="recurring: a window of duration_seconds at each of these times (UTC)"
    )
    duration_seconds: float | None
    policy: str | None = Field(description="a freeze's own policy: refuse or cab (null: FREEZE_POLICY)")


class Observation(Body):
    """What really changed: a rollout, a deploy webhook, a config push."""

    service: str = _text(200, 1)
    environment: str | None = None
    observed_at: str | None = Field(None, description="ISO 8601 (default: now)")
    source: str = _text(200, 1, description="who saw it: argocd, github, a watcher")
    reference: str = _text(5000, 1, description="a revision, a run URL, an id")


class ObservationResult(Out):
    observation_id: str
    service: str
    environment: str | None
    observed_at: str
    source: str
    reference: str
    change_id: str | None = Field(description="the change that covers it; null: an unauthorized change")
    authorized: bool


CI_TYPES: list[JsonValue] = ["service", "database", "queue", "host", "cluster", "network", "saas", "other"]
CI_DATA: list[JsonValue] = ["none", "pii", "phi", "pci"]
RELATIONS: list[JsonValue] = ["depends_on", "runs_on", "part_of"]


class CISummary(Out):
    """A configuration item as `cmdb list` shows it."""

    name: str
    type: str = Field(json_schema_extra={"enum": CI_TYPES})
    tier: int = Field(ge=0, le=3, description="0 is the most critical")
    owner: str | None
    environment: str | None
    data: str = Field(json_schema_extra={"enum": CI_DATA})


class Relation(Out):
    kind: str = Field(json_schema_extra={"enum": RELATIONS})
    name: str


class CIDetail(CISummary):
    """A CI with its free attributes, what it relies on and what relies on it directly."""

    attributes: dict[str, Any]
    dependencies: list[Relation]
    dependents: list[Relation]


class Reached(Out):
    """A CI in a blast radius, with the path to a CI asked about."""

    name: str
    depth: int
    type: str = Field(json_schema_extra={"enum": CI_TYPES})
    tier: int
    data: str = Field(json_schema_extra={"enum": CI_DATA})
    owner: str | None
    path: str


class CalendarEntry(Out):
    """A planned change on the calendar (any state), its window in UTC."""

    change_id: str
    title: str
    state: str
    type: str
    risk_level: str | None
    services: list[str]
    environment: str | None
    requested_by: str
    planned_start: str
    planned_end: str


class CalendarWindow(Out):
    """A freeze or maintenance window over the span asked about."""

    window_id: str
    kind: str = Field(json_schema_extra={"enum": ["freeze", "maintenance"]})
    starts_at: str
    ends_at: str
    scope: str = Field(json_schema_extra={"enum": ["all", "environment", "service", "tier"]})
    scope_value: str | None
    reason: str


class Calendar(Out):
    """Planned changes whose windows overlap [from, to), soonest first, and the windows over it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    changes: list[CalendarEntry]
    windows: list[CalendarWindow]


class HaltOn(Body):
    """Turn the kill switch on (`freeze on`): why, in words the banner and notifications show."""

    reason: str = _text(v.REASON_MAX, 1, examples=["INC-2041: bad rollouts"])


class Halt(Out):
    """The kill switch (`freeze status`, docs/agents.md)."""

    halted: bool
    reason: str | None
    by: str | None = Field(description="who turned it on (or off) last")
    since: str | None
    changed: bool | None = Field(None, description="after on/off: whether this request changed it")
