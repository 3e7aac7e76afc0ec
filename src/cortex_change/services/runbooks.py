"""Runbook steps of a plan being filed: checked against the catalog and stamped with its version."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..domain import plan as plans
from ..domain.runbooks import expand, lookup


def stamp_plan(settings: Settings, field: str, plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """The plan with each runbook step checked (known runbook, version, parameters) and stamped
    with the catalog's current version; plans without runbook steps come back as they are."""
    raw_steps = (plan or {}).get("steps", [])
    if plan is None or not any(isinstance(s, dict) and "runbook" in s for s in raw_steps):
        return plan  # the catalog is read only when a plan names a runbook
    from ..catalog.loader import load_catalog

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
