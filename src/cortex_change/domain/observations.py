"""Observed changes (docs/schedule.md): what really changed, matched to the change that authorised
it. An observation no change covers is an unauthorized change (the seed's KPI). Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from .lifecycle import State

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .model import Change

# A rollout is seen a little after a change's implementation ends (a deploy webhook, a watcher's
# poll): that much later still counts as the change's.
GRACE = timedelta(minutes=15)
CARRIED_OUT = frozenset({State.IMPLEMENTING, State.IMPLEMENTED, State.ROLLING_BACK, State.CLOSED})


def covers(change: Change, service: str, environment: str | None, at: datetime) -> bool:
    """Whether `change` authorised a change to `service` (in `environment`) seen at `at`: it names
    the service, was being carried out then (from its implementation's start to its end plus
    GRACE), within its planned window if it has one, for that environment if both name one."""
    if service not in {s.strip().lower() for s in change.affected_services}:
        return False
    t = change.timeline
    began = t.implementation_started_at
    if change.state not in CARRIED_OUT or began is None:
        return False
    if environment is not None and change.environment not in (None, environment):
        return False
    end = t.closed_at or t.implemented_at
    if at < began or (end is not None and at > end + GRACE):
        return False
    start, stop = change.planned_start, change.planned_end
    return start is None or stop is None or start <= at <= stop + GRACE


def match(candidates: Iterable[Change], service: str, environment: str | None, at: datetime) -> str | None:
    """The change that covers the observation (the latest to start), or None: unauthorized."""
    covering = [c for c in candidates if covers(c, service, environment, at)]
    if not covering:
        return None
    best = max(covering, key=lambda c: c.timeline.implementation_started_at or at)
    return best.change_id
