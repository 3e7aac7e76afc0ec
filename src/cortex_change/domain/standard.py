"""The outcome of matching a standard request against the standard change models (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass

from .model import ChangeType


@dataclass(frozen=True)
class StandardDecision:
    """`pre_approved` by `model`, or the request `becomes` another type, with the reason."""

    model: str | None
    pre_approved: bool
    becomes: ChangeType
    reason: str


NO_MODEL = StandardDecision(
    model=None,
    pre_approved=False,
    becomes=ChangeType.NORMAL,
    reason="no enabled standard change model matches this request",
)
