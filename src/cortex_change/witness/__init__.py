"""Witnesses outside the database that a signed audit checkpoint is published to (issue 19):
`tsa.py` (an RFC 3161 timestamp authority) and `s3.py` (an S3-compatible bucket). Each is I/O the
services call, like notify/; their packages are the `witness` extra, imported only when used.
"""

from __future__ import annotations

from ..domain.errors import CortexError, MissingPackage


class WitnessError(CortexError):
    """A witness could not take or prove a checkpoint: one line, no credentials. `retry` says
    whether trying again later may succeed (unreachable, busy) or not (refused, a bad token)."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(" ".join(message.split()))
        self.retry = retry


def missing(what: str, exc: ImportError) -> MissingPackage:
    """The `witness` extra's package that `exc` could not import, as the project's error."""
    return MissingPackage(what, exc.name or "asn1crypto", "witness")
