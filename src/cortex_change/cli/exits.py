"""Exit codes: one place maps the domain's errors to the CLI's codes."""

from __future__ import annotations

from ..domain.errors import (
    Conflict,
    CortexError,
    MissingPackage,
    NotFound,
    Refused,
    StoreError,
    ValidationError,
)

EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_STORE = 0, 1, 2, 3, 4, 5
EXIT_CODES = """exit codes:
  0  ok
  1  refused by a rule (state, role, segregation of duties, documentation) or the token refused
  2  bad input (unknown type, category, state; empty or over-long fields; bad JSON)
  3  not found (unknown change id)
  4  conflict (another writer changed the change first; nothing was written)
  5  the database, the server (CORTEX_CHANGE_URL), kubectl (k8s watch) or the output could not
     be used, or an optional package is missing (the message names the pip install line)"""


def for_error(exc: CortexError) -> int:
    for kind, code in (
        (ValidationError, EXIT_BAD_INPUT),
        (NotFound, EXIT_NOT_FOUND),
        (Conflict, EXIT_CONFLICT),
        (Refused, EXIT_REFUSED),
        (StoreError, EXIT_STORE),  # also the server's: remote.ServerUnavailable
        (MissingPackage, EXIT_STORE),
    ):
        if isinstance(exc, kind):
            return code
    return EXIT_REFUSED
