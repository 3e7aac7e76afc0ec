"""`cortex-change export --jsonl FILE`, `import --jsonl FILE` and `migrate-store --to URL` (on the
local store; docs/portability.md)."""

from __future__ import annotations

import sys

from ..domain.errors import ValidationError
from .exits import EXIT_OK
from .render import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse

    from ..services.context import Context


def _tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n)


def cmd_export(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.portability import export_jsonl

    result = export_jsonl(ctx, path=a.jsonl, credentials=not a.without_credentials)
    left_out = "" if result["credentials"] else "; tokens and calendar feeds left out"
    print(
        escape(
            f"exported {_tally(result['counts']) or 'an empty store'} to {result['file']} "
            f"({result['lines']} lines, sha256 {result['sha256']}{left_out})"
        )
    )
    return EXIT_OK


def cmd_import_jsonl(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.portability import import_jsonl

    if a.source is not None or a.dir or a.dry_run or a.salvage:
        raise ValidationError("--jsonl", "goes alone: import --jsonl FILE (no DIR, --dry-run or --salvage)")
    result = import_jsonl(ctx, path=a.jsonl)
    print(escape(f"imported {_tally(result['counts']) or 'an empty store'} from {result['file']}"))
    print(f"audit chain intact: {result['events']} events verified; head {escape(result['head'])}")
    return EXIT_OK


def cmd_migrate_store(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.portability import migrate_store

    def progress(line: str) -> None:
        print(escape(line), file=sys.stderr, flush=True)

    result = migrate_store(ctx, to=a.to, progress=progress)
    print(escape(f"copied to {result['target']}: {_tally(result['counts'])}; every count matches"))
    print(f"audit chain intact: {result['events']} events verified; head {escape(result['head'])}")
    masked = result["target"] != a.to
    if masked:
        print("the password is masked below: put it back, or leave it out and use ~/.pgpass or PGPASSWORD")
    print("switch to it with:")
    print(escape("export CORTEX_CHANGE_DB='" + result["target"].replace("'", "'\"'\"'") + "'"))
    return EXIT_OK
