"""Readiness: the store answers and its schema is current."""

from __future__ import annotations

from ..store.db import current_version
from .context import Context


def schema_version(ctx: Context) -> int:
    """The store's schema version (reading it proves the store is reachable)."""
    with ctx.db.read() as tx:
        return current_version(tx)
