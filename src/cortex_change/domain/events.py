"""What the domain says happened: audit events, returned as values and written by the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    action: str
    actor: str
    details: dict[str, Any] = field(default_factory=dict)
