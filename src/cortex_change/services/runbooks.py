"""Runbook steps of a plan being filed: checked against the catalog and stamped with its version."""

from __future__ import annotations

from ..config import Settings
from ..domain import plan as plans

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


def stamp_plan(settings: Settings, field: str, plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """The plan with each runbook step checked (known runbook, version, parameters) and stamped
    with the catalog's current version; plans without runbook steps come back as they are."""
    raw_steps = (plan or {}).get("steps", [])
    if plan is None or not any(isinstance(s, dict) and "runbook" in s for s in raw_steps):
        return plan  # the catalog is read only when a plan names a runbook
    from ..catalog.loader import load_catalog
    from ..domain.runbooks import expand, lookup

    books = load_catalog(settings).runbooks
    stamped: list[Any] = []
    for i, (raw, step) in enumerate(zip(raw_steps, plans.steps(field, plan), strict=True), 1):
        if not isinstance(step, plans.RunbookStep):
            stamped.append(raw)
            continue
        where = f"{field} step {i}"
        book = lookup(books, step, where)
        expand(book, dict(step.params), where)
        stamped.append({**raw, "version": book.version})
    return {**plan, "steps": stamped}


def expanded_plan(settings: Settings, plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """The plan as an external worker carries it out: each runbook step replaced by the command
    or request it expands to now (with `runbook` and `runbook_version` beside it); a runbook gone
    or changed since filing is handed over as `{"refused": why}`, to be reported as a failure."""
    raw_steps = (plan or {}).get("steps", [])
    if plan is None or not any(isinstance(s, dict) and "runbook" in s for s in raw_steps):
        return plan
    from ..catalog.loader import load_catalog
    from ..domain.errors import ValidationError
    from ..domain.runbooks import approved

    books = load_catalog(settings).runbooks
    out: list[Any] = []
    for raw, step in zip(raw_steps, plans.steps("plan", plan), strict=True):
        if not isinstance(step, plans.RunbookStep):
            out.append(raw)
            continue
        tags = {"runbook": step.name, "runbook_version": step.version}
        try:
            ready = approved(books, step)
        except ValidationError as exc:
            out.append({"refused": str(exc), **tags})
            continue
        if isinstance(ready, plans.RunStep):
            out.append({"run": list(ready.command), "timeout": ready.timeout, **tags})
        else:
            request = {"method": ready.method, "url": ready.url, "expect_status": list(ready.expect_status)}
            out.append({"http": {**request, "headers": dict(ready.headers), "body": ready.body}, **tags})
    return {**plan, "steps": out}
