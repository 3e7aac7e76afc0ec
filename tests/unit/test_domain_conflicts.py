"""Conflicts between planned changes, as a table: same time, same service or CI (or blast radius)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex_change.domain.lifecycle import State
from cortex_change.domain.model import Change, ChangeType, Level, Timeline
from cortex_change.domain.schedule import conflicts

T0 = datetime(2026, 12, 1, 22, tzinfo=UTC)


def _change(cid: str, start_h: float | None, hours: float, services: list[str], **kw: Any) -> Change:
    start = None if start_h is None else T0 + timedelta(hours=start_h)
    return Change(
        change_id=cid,
        type=ChangeType.NORMAL,
        category="deployment",
        title="t",
        description="",
        requested_by="dev",
        impact=Level.LOW,
        urgency=Level.LOW,
        timeline=Timeline(created_at=T0),
        affected_services=services,
        planned_start=start,
        planned_end=None if start is None else start + timedelta(hours=hours),
        state=State.APPROVED,
        **kw,
    )


MINE = _change("RFC-20261201000000-aaaaaa", 0, 4, ["web"])


@pytest.mark.parametrize(
    ("other", "names", "expected"),
    [
        (_change("RFC-20261201000000-bbbbbb", 3, 2, ["Web"]), {"web"}, ["web"]),  # overlaps, any case
        (_change("RFC-20261201000000-bbbbbb", 4, 2, ["web"]), {"web"}, []),  # starts as mine ends
        (_change("RFC-20261201000000-bbbbbb", -2, 2, ["web"]), {"web"}, []),  # ends as mine starts
        (_change("RFC-20261201000000-bbbbbb", 1, 1, ["api"]), {"web"}, []),  # another service
        (_change("RFC-20261201000000-bbbbbb", 1, 1, ["api"]), {"web", "api"}, ["api"]),  # api in my radius
        (_change("RFC-20261201000000-bbbbbb", None, 0, ["web"]), {"web"}, []),  # no window: no conflict
        (_change("RFC-20261201000000-aaaaaa", 1, 1, ["web"]), {"web"}, []),  # itself
    ],
)
def test_conflicts(other: Change, names: set[str], expected: list[str]) -> None:
    found = conflicts(MINE, [other], names)
    assert len(found) == len(expected)
    for line, shared in zip(found, expected, strict=True):
        assert line.startswith(f"{other.change_id} (approved) also changes {shared} from ")


def test_a_change_without_a_window_has_no_conflicts() -> None:
    unplanned = _change("RFC-20261201000000-cccccc", None, 0, ["web"])
    assert conflicts(unplanned, [_change("RFC-20261201000000-bbbbbb", 1, 1, ["web"])], {"web"}) == []
