"""`cortex-change import ...`: bring changes in from elsewhere, on the local store (docs/moving.md).

Today `import shell-tool DIR` (the seed's shell tool's files); the grammar leaves room for other
sources beside it (`import --jsonl FILE`).
"""

from __future__ import annotations

from ..domain.errors import ValidationError
from .exits import EXIT_OK
from .render import as_json, escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..services.context import Context

SOURCES = ("shell-tool",)


def cmd_import(ctx: Context, a: argparse.Namespace) -> int:
    """Dispatch on what is imported."""
    if a.jsonl is not None:  # an `export --jsonl` file: cli/portability.py
        from .portability import cmd_import_jsonl

        return cmd_import_jsonl(ctx, a)
    if a.source is None:
        raise ValidationError("import", f"name what to import: import {SOURCES[0]} DIR")
    return _shell_tool(ctx, a)


def _shell_tool(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.shelltool import import_shell_tool
    from .operations import _who

    if not a.dir:
        raise ValidationError(
            "DIR", "import shell-tool needs the tool's folder (holding changes/ and audit/)"
        )
    report = import_shell_tool(ctx, path=a.dir, actor=_who(a), salvage=a.salvage, dry_run=a.dry_run)
    print(as_json(report) if a.json else "\n".join(report_lines(report)))
    return EXIT_OK


def report_lines(r: dict[str, Any]) -> list[str]:
    """The report for people: the totals, then every file and line not imported, then notes."""
    verb = "would import" if r["dry_run"] else "imported"
    states = ", ".join(f"{n} {s}" for s, n in r["by_state"].items()) or "none"
    lines = [
        escape(f"import shell-tool {r['source']}: {verb} {r['imported']} change(s) ({states})"),
        f"  already imported: {r['already_imported']}",
    ]
    a = r["audit"]
    written = "to write" if r["dry_run"] else "written"
    lines.append(
        f"  audit: {a['lines']} line(s) read, {a['events']} event(s) {written}"
        + (f", {a['continued']} continuation line(s) joined" if a["continued"] else "")
    )
    if r["skipped"]:
        lines.append(f"skipped files ({len(r['skipped'])}):")
        lines += [escape(f"  {s['file']}: {s['reason']}") for s in r["skipped"]]
    if a["skipped"] or a["not_imported"]:
        lines.append("audit lines not imported:")
        lines += [escape(f"  {s['line']}: {s['reason']}") for s in a["skipped"]]
        lines += [escape(f"  {n['change_id']}: {n['lines']} line(s), {n['why']}") for n in a["not_imported"]]
    noted = [c for c in r["changes"] if c.get("salvaged") or c.get("notes")]
    if noted:
        lines.append("notes:")
    for c in noted:
        if c.get("salvaged"):
            fields = ", ".join(c["salvaged"])
            lines.append(escape(f"  {c['change_id']}: SALVAGED from {c['file']} (repaired: {fields})"))
        lines += [escape(f"  {c['change_id']}: {note}") for note in c.get("notes", [])]
    if r["dry_run"]:
        lines.append("dry run: nothing was written")
    return lines
