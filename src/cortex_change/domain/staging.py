"""Staging before production: which earlier change may be cited as `tested_in_staging`.

Rule (docs/catalog.md): the cited change must be a staging deployment of the same category,
touch at least one of the citing change's services, and have closed successful. A valid
citation is recorded as evidence in the assessment; it lowers no risk points.
"""

from __future__ import annotations

from .lifecycle import State
from .model import Change, ClosureStatus


def problem(change: Change, cited: Change) -> str | None:
    """Why `cited` cannot vouch for `change`, or None when it can."""
    if cited.change_id == change.change_id:
        return "a change cannot cite itself"
    if (cited.environment or "").lower() != "staging":
        return f"{cited.change_id} was not a staging change (environment {cited.environment or 'unset'})"
    if cited.category != change.category:
        return f"{cited.change_id} is a {cited.category} change, not {change.category}"
    shared = set(cited.affected_services) & set(change.affected_services)
    if change.affected_services and not shared:
        touched = ", ".join(cited.affected_services) or "no service"
        return f"{cited.change_id} touched {touched}, none of this change's services"
    if cited.state is not State.CLOSED or cited.closure_status is not ClosureStatus.SUCCESSFUL:
        status = cited.closure_status.value if cited.closure_status else cited.state.value
        return f"{cited.change_id} did not close successful (it is {status})"
    return None


def evidence(cited: Change) -> str:
    closed = cited.timeline.closed_at
    when = f" at {closed:%Y-%m-%dT%H:%M:%SZ}" if closed else ""
    services = ", ".join(cited.affected_services) or "no service"
    return f"{cited.change_id}: staging {cited.category} of {services} closed successful{when}"
