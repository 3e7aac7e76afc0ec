"""`backup FILE` and `restore FILE`: the embedded store copied while it runs, and put back (docs/backup.md).

Both are given no store (registry.NO_STORE): `backup` opens the existing one read-only and
`restore` must not create one before it has checked that none is there.
"""

from __future__ import annotations

import argparse
import sys

from . import render
from .exits import EXIT_OK, EXIT_REFUSED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..services.backup import Report


def cmd_backup(_: None, a: argparse.Namespace) -> int:
    from ..config import load
    from ..services import backup

    report = backup.backup(load(a.env).database(), a.file)
    return _say(f"backed up to {report.path}", report)


def cmd_restore(_: None, a: argparse.Namespace) -> int:
    from ..config import load
    from ..services import backup

    report = backup.restore(load(a.env).database(), a.file)
    line = f"restored {a.file} to {report.path}"
    if report.upgraded_from is not None:
        line += f" (schema upgraded from version {report.upgraded_from})"
    return _say(line, report)


def _say(what: str, report: Report) -> int:
    """One line: where, how big, what it holds, and the audit chain's verdict."""
    v = report.verdict
    held = f"{what}: {report.size} bytes, {report.changes} changes, {report.events} audit events"
    if v.ok:
        print(render.escape(f"{held}; audit chain intact: {v.checked} events verified; head {v.head_hash}"))
        return EXIT_OK
    problem = f"audit chain BROKEN after {v.checked} good events: {v.problem}"
    print(render.escape(f"{held}; {problem} (the copy is kept: it is what the store holds)"), file=sys.stderr)
    return EXIT_REFUSED
