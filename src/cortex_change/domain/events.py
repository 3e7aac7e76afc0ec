"""What the domain says happened: audit events, returned as values and written by the caller."""

from __future__ import annotations

from .values import Frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Final


class Event(Frozen):
    __slots__ = ("action", "actor", "details")

    def __init__(self, action: str, actor: str, details: dict[str, Any] | None = None) -> None:
        self.action: Final = action
        self.actor: Final = actor
        self.details: Final = {} if details is None else details
