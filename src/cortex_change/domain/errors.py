"""One exception hierarchy for every rule the domain enforces; each door maps it once."""

from __future__ import annotations


class CortexError(Exception):
    """Base of every error the program reports to a user."""


class ValidationError(CortexError):
    """Bad input: a field's value is not allowed. Nothing is written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ConfigError(ValidationError):
    """A configuration key's value does not parse or contradicts another key."""


class NotFound(CortexError):
    """The named change (or other record) does not exist."""


class Refused(CortexError):
    """A rule forbids the request (state, role, segregation of duties, documentation)."""


class Forbidden(Refused):
    """The identity does not hold a role the action is allowed to (SPEC §11); nothing is written."""


class InvalidTransition(Refused):
    """The change's current state does not allow the requested action."""

    def __init__(self, change_id: str, action: str, state: str, allowed: list[str]) -> None:
        needs = " or ".join(allowed) if allowed else "no state (the action is never allowed)"
        super().__init__(f"cannot {action} {change_id}: it is {state} ({action} needs {needs})")
        self.action = action
        self.state = state


class ApprovalRefused(Refused):
    """An approval, rejection or review was refused by a rule; the record is unchanged."""


class MissingPackage(CortexError):
    """An optional package (a pip extra) is not installed: exit 5 / HTTP 503, naming the install line."""

    def __init__(self, what: str, package: str, extra: str) -> None:
        super().__init__(f"{what} needs the {package} package: pip install 'cortex-change[{extra}]'")


class StoreError(CortexError):
    """The database could not be opened or used (exit 5 / HTTP 503)."""


class Conflict(CortexError):
    """Another writer changed the record first; nothing of this attempt was written."""


class PreconditionFailed(Conflict):
    """The caller's view of the record (If-Match) is stale; nothing was written."""


class RateLimited(CortexError):
    """An identity went over its requests a minute (api/ratelimit.py): nothing was done (HTTP 429);
    `retry_after` is the whole seconds until a request would be allowed again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
