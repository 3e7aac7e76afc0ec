"""What the domain says happened: audit events, returned as values and written by the caller."""

from __future__ import annotations

from enum import StrEnum  # already loaded on every command line (argparse → re → enum)

from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final


class EventKind(StrEnum):
    """Every audit action the project writes. The value is the action string stored in the chain
    and shown (a StrEnum: it compares equal to the stored strings, and prints and encodes as one)."""

    # The lifecycle (domain/workflow.py).
    CREATED = "created"
    ASSESSED = "assessed"
    REASSESSED = "reassessed"
    RECLASSIFIED = "reclassified"
    ROUTE_FLOOR_LOWERED = "route_floor_lowered"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_GRANTED = "approval_granted"
    APPROVED = "approved"
    APPROVALS_DISCARDED = "approvals_discarded"
    REJECTED = "rejected"
    UPDATED = "updated"
    CANCELLED = "cancelled"
    CLOSED = "closed"
    REVIEW_RECORDED = "review_recorded"
    # Carrying out (services/dispatch.py, implementation.py, workers.py).
    IMPLEMENTATION_QUEUED = "implementation_queued"
    IMPLEMENTATION_STARTED = "implementation_started"
    IMPLEMENTATION_RESUMED = "implementation_resumed"
    BASELINE_MEASURED = "baseline_measured"
    LEASE_TAKEN_OVER = "lease_taken_over"
    LEASE_EXPIRED = "lease_expired"
    STEP_MANUAL = "step_manual"
    STEP_STARTED = "step_started"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    IMPLEMENTED = "implemented"
    # Post-change verification: one round of checks (the stored name predates "verification").
    VERIFICATION_CHECK = "validation_check"
    # The statistical decision at the period's end (AUTO_ROLLBACK_DECISION; docs/canary.md): the
    # figures; an inconclusive one extends the period once, then asks a person to keep or roll back.
    CANARY_JUDGED = "canary_judged"
    VALIDATION_EXTENDED = "validation_extended"
    ROLLBACK_DECISION_REQUESTED = "rollback_decision_requested"
    # The failure path.
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_SKIPPED = "rollback_skipped"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    INCIDENT_OPENED = "incident_opened"
    # Timers (services/worker.py, cab.py).
    APPROVAL_ESCALATED = "approval_escalated"
    REVIEW_DUE = "review_due"
    REVIEW_OVERDUE = "review_overdue"
    CAB_AGENDA_SENT = "cab_agenda_sent"
    # Post-implementation reviews (domain/pir.py, services/pir.py; docs/pir.md).
    PIR_OPENED = "pir_opened"
    PIR_FINDINGS_RECORDED = "pir_findings_recorded"
    PIR_ACTION_ADDED = "pir_action_added"
    PIR_ACTION_DONE = "pir_action_done"
    PIR_COMPLETED = "pir_completed"
    PIR_OVERDUE = "pir_overdue"
    PIR_ACTION_OVERDUE = "pir_action_overdue"
    # Outside any change: tokens, configuration.
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_ROTATED = "token_rotated"  # a new secret; the old one works for a grace period
    RATE_LIMITED = "rate_limited"  # an identity went over its requests a minute (api/ratelimit.py)
    AUTOMATION_HALTED = "automation_halted"  # the kill switch (services/automation.py)
    AUTOMATION_RESUMED = "automation_resumed"
    IMPLEMENTATION_PAUSED = "implementation_paused"  # stopped between steps by the kill switch
    SIGNED_IN = "signed_in"  # a portal session began (services/sessions.py)
    SIGNED_OUT = "signed_out"
    CMDB_IMPORTED = "cmdb_imported"  # services/cmdb.py
    WINDOW_ADDED = "window_added"  # freeze and maintenance windows (services/windows.py)
    WINDOW_REMOVED = "window_removed"
    CALENDAR_FEED_CREATED = "calendar_feed_created"  # services/calendar.py
    CALENDAR_FEED_REVOKED = "calendar_feed_revoked"
    RESCHEDULED = "rescheduled"  # an approved change's window moved (workflow.reschedule)
    CHANGE_OBSERVED = "change_observed"  # an observation matched to its change (services/observations.py)
    UNAUTHORIZED_CHANGE = "unauthorized_change"  # an observation no change covers
    CONFIG_CHANGED = "config_changed"
    WEBHOOK_IGNORED = "webhook_ignored"  # a signed Git/CI event that filed nothing (services/cicd.py)
    # Signed audit checkpoints (services/checkpoints.py): alerts only; a checkpoint is its own row.
    CHECKPOINT_FAILED = "checkpoint_failed"  # the worker could not sign (key, clock, chain)
    WITNESS_FAILED = "witness_failed"  # a witness kept failing; it is still retried
    # Self-healing (services/remediation.py; docs/self-healing.md).
    REMEDIATION_FILED = "remediation_filed"  # on the change an Alertmanager alert filed
    REMEDIATION_REFUSED = "remediation_refused"  # refused by the rules: a person is paged instead
    ALERT_RESOLVED = "alert_resolved"  # the alert that filed a change resolved (on its trail)
    # Refusals (services/unit.py): a rule refused, or the state did not allow the action.
    REFUSED = "refused"
    UNAUTHORIZED_ATTEMPT = "unauthorized_attempt"


class Event(Frozen):
    __slots__ = ("action", "actor", "details")

    def __init__(self, action: EventKind, actor: str, details: dict[str, Any] | None = None) -> None:
        self.action: Final = action
        self.actor: Final = actor
        self.details: Final = {} if details is None else details
