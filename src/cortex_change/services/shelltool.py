"""Import from the seed's shell tool (docs/moving.md): its `changes/` records and `audit/` lines into
the store, in one transaction (all or nothing), each change once (a second run imports nothing new).

The files are read here; what they mean is `domain/shelltool.py`'s. A record is read when its
change's turn comes, so 100 000 of them are never all in memory; the audit lines are, as text.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime

from ..domain import compliance
from ..domain import shelltool as tool
from ..domain.errors import ValidationError
from ..store import audit, changes
from ..store.db import Tx
from . import unit
from .context import Context

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

RECORD_MAX = 16 * 1024 * 1024  # bytes: the tool's records are a few KiB
BATCH = 500  # changes written a statement (their records, services, events)


def import_shell_tool(
    ctx: Context, *, path: str, actor: str, salvage: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    """Import the shell tool's store at `path` (unless `dry_run`), `actor` running it; the report
    either way: counts by state, every file and audit line not imported with why, salvaged
    records, notes."""
    records, log, skipped = _scan(path)
    report = Report(path, dry_run, salvage, log, skipped)
    policy = ctx.policy
    now = ctx.clock()
    ids = sorted(records)
    with ctx.db.read() if dry_run else ctx.db.transaction() as tx:
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            present = changes.existing(tx, chunk)
            batch: list[tool.Imported] = []
            for change_id in chunk:
                if change_id in present:
                    report.already.append(change_id)
                    continue
                lines, bad_lines = log.lines_of(change_id)
                report.log_skipped.extend(bad_lines)
                copies = [tool.parse_record(f, _read(path, f), salvage) for f in sorted(records[change_id])]
                imported, skips = tool.plan_change(copies, lines, policy, actor)
                report.skipped.extend(skips)
                if imported is not None:
                    batch.append(imported)
                    report.add(imported)
            if batch and not dry_run:
                if len(report.imported) == len(batch):  # the first write: the rules it runs
                    unit.audit_config(tx, ctx, now)  # under, as every write records them
                _write(tx, ctx, batch, now)
    return report.as_dict(set(records))


def _write(tx: Tx, ctx: Context, batch: list[tool.Imported], now: datetime) -> None:
    """The records and their histories, as the chain's next events in id order (stamped now: the
    chain is in the order it was written; each event's details keep the tool's time)."""
    policy = ctx.policy
    records = []
    for imported in batch:
        actions = [e.action for e in imported.events]
        results = compliance.evaluate(imported.change, policy, policy.frameworks or ("soc2",), actions, now)
        records.append((imported.change, compliance.complete(results)))
    changes.insert_many(tx, records)
    audit.append_many(tx, [(i.change.change_id, i.events) for i in batch], now)


# --------------------------------------------------------------------------- reading


def _scan(path: str) -> tuple[dict[str, list[str]], tool.Log, list[tool.Skipped]]:
    """The records by change id (paths relative to `path`), the audit lines, the files neither."""
    if not os.path.isdir(path):
        raise ValidationError(
            "DIR", f"{path!r} is not a folder (the shell tool's, holding changes/ and audit/)"
        )
    folders = os.path.join(path, "changes")
    known = os.path.isdir(folders) and any(os.path.isdir(os.path.join(folders, f)) for f in tool.FOLDERS)
    if not known:
        raise ValidationError(
            "DIR",
            f"{path!r} is not a shell-tool store: it has no changes/ folder with the tool's state "
            f"folders ({', '.join(tool.FOLDERS)})",
        )
    records: dict[str, list[str]] = {}
    skipped: list[tool.Skipped] = []
    for rel, size in _files(path, "changes"):
        reason = tool.skip_reason(rel)
        if reason is None and size > RECORD_MAX:
            reason = f"over {RECORD_MAX // 2**20} MiB: not a record the tool writes"
        if reason is None:
            records.setdefault(tool.record_id(rel), []).append(rel)
        else:
            skipped.append(tool.Skipped(rel, reason))
    log = tool.Log()
    audit_files = _files(path, "audit") if os.path.isdir(os.path.join(path, "audit")) else []
    for rel, _ in sorted(audit_files):
        reason = tool.skip_reason(rel)
        if reason is not None:
            skipped.append(tool.Skipped(rel, reason))
            continue
        try:
            with open(os.path.join(path, rel), encoding="utf-8", errors="replace", newline="\n") as f:
                log.read(rel, f)
        except OSError as exc:
            raise _unreadable(path, rel, exc) from None
    return records, log, skipped


def _files(path: str, top: str) -> list[tuple[str, int]]:
    """Every file under `path`/`top`, as (path relative to `path` with `/`, size), in name order;
    a folder deeper than the tool's layout (`changes/FOLDER/`) as itself, `name/`, not entered
    (nor is a link looping back)."""
    found: list[tuple[str, int]] = []
    pending = [(top, 0)]
    while pending:
        rel, depth = pending.pop()
        name = rel
        try:
            with os.scandir(os.path.join(path, rel)) as entries:
                for entry in entries:
                    name = f"{rel}/{entry.name}"
                    if not entry.is_dir():
                        found.append((name, entry.stat().st_size))
                    elif depth == 0 and top == "changes":
                        pending.append((name, depth + 1))
                    else:
                        found.append((f"{name}/", 0))
        except OSError as exc:  # the folder, or one of its files (a dangling link, no permission)
            raise _unreadable(path, name, exc) from None
    return sorted(found)


def _read(path: str, rel: str) -> bytes:
    try:
        with open(os.path.join(path, rel), "rb") as f:
            return f.read()  # its size was checked by _scan (read(n) would allocate n bytes first)
    except OSError as exc:
        raise _unreadable(path, rel, exc) from None


def _unreadable(path: str, rel: str, exc: OSError) -> ValidationError:
    why = exc.strerror or str(exc)
    return ValidationError("DIR", f"cannot read {os.path.join(path, rel)!r}: {why}; nothing was imported")


# --------------------------------------------------------------------------- the report


class Report:
    """What an import did (or, dry, would do)."""

    __slots__ = (
        "already",
        "dry_run",
        "events",
        "imported",
        "log",
        "log_skipped",
        "path",
        "salvage",
        "skipped",
    )

    def __init__(
        self, path: str, dry_run: bool, salvage: bool, log: tool.Log, skipped: list[tool.Skipped]
    ) -> None:
        self.path, self.dry_run, self.salvage, self.log = path, dry_run, salvage, log
        self.skipped = skipped
        self.log_skipped: list[tool.Skipped] = list(log.skipped)
        self.imported: list[dict[str, Any]] = []
        self.already: list[str] = []
        self.events = 0

    def add(self, imported: tool.Imported) -> None:
        change = imported.change
        entry: dict[str, Any] = {
            "change_id": change.change_id,
            "state": change.state.value,
            "file": imported.file,
            "events": len(imported.events),
        }
        if change.closure_status is not None:
            entry["closure_status"] = change.closure_status.value
        if imported.salvaged:
            entry["salvaged"] = imported.salvaged
        if imported.notes:
            entry["notes"] = imported.notes
        self.imported.append(entry)
        self.events += len(imported.events)

    def as_dict(self, with_records: set[str]) -> dict[str, Any]:
        done = {e["change_id"] for e in self.imported} | set(self.already)
        unimported = []
        for change_id, lines in sorted(self.log.by_change.items()):
            if change_id in done:
                continue
            why = "its record was not imported" if change_id in with_records else "no record of this change"
            unimported.append({"change_id": change_id, "lines": len(lines), "why": why})
        return {
            "source": self.path,
            "dry_run": self.dry_run,
            "salvage": self.salvage,
            "imported": len(self.imported),
            "by_state": dict(sorted(Counter(e["state"] for e in self.imported).items())),
            "already_imported": len(self.already),
            "salvaged": [e["change_id"] for e in self.imported if "salvaged" in e],
            "skipped": [{"file": s.file, "reason": s.reason} for s in sorted(self.skipped, key=_by_file)],
            "audit": {
                "lines": self.log.lines,
                "continued": self.log.continued,
                "events": self.events,
                "skipped": [{"line": s.file, "reason": s.reason} for s in self.log_skipped],
                "not_imported": unimported,
            },
            "changes": self.imported,
        }


def _by_file(skipped: tool.Skipped) -> str:
    return skipped.file
