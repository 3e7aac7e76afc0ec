"""`cortex-change cmdb ...`: import, export, show, list, impact, graph (on the local store)."""

from __future__ import annotations

import json
import sys

from .exits import EXIT_OK
from .operations import _who
from .render import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse

    from ..services.context import Context


def _json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def cmd_cmdb_import(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.cmdb import import_file

    summary = import_file(ctx, path=a.file, actor=_who(a), dry_run=a.dry_run, prune=a.prune, fmt=a.format)
    if a.json:
        _json(summary)
        return EXIT_OK
    verb = "would" if a.dry_run else "did"
    for name in summary["added"]:
        print(escape(f"+ {name}"))
    for c in summary["changed"]:
        print(escape(f"~ {c['name']} ({', '.join(c['fields'])})"))
    for name in summary["removed"]:
        print(escape(f"- {name}"))
    counts = ", ".join(f"{len(summary[k])} {k}" for k in ("added", "changed", "removed"))
    print(
        f"cmdb import {verb}: {counts}, {summary['unchanged']} unchanged"
        + (" (dry run)" if a.dry_run else "")
    )
    return EXIT_OK


def cmd_cmdb_export(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.cmdb import export

    sys.stdout.write(export(ctx))
    return EXIT_OK


def cmd_cmdb_show(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.cmdb import show

    ci = show(ctx, name=a.name)
    if a.json:
        _json(ci)
        return EXIT_OK
    head = f"{ci['name']}: {ci['type']}, tier {ci['tier']}, data {ci['data']}"
    extra = ", ".join(f"{k} {ci[k]}" for k in ("owner", "environment") if ci.get(k))
    print(escape(head + (f", {extra}" if extra else "")))
    for d in ci["dependencies"]:
        print(escape(f"  {d['kind'].replace('_', ' ')} {d['name']}"))
    for d in ci["dependents"]:
        print(escape(f"  {d['name']} {d['kind'].replace('_', ' ')} it"))
    return EXIT_OK


def cmd_cmdb_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.cmdb import listing

    rows = listing(ctx, type_=a.type, tier=a.tier, owner=a.owner)
    if a.json:
        _json(rows)
        return EXIT_OK
    for r in rows:
        print(escape(f"{r['name']}  {r['type']}  tier {r['tier']}  {r['owner'] or '-'}  {r['data']}"))
    if not rows:
        print("no CIs (cmdb import FILE adds them)", file=sys.stderr)
    return EXIT_OK


def cmd_cmdb_impact(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.cmdb import impact

    rows = impact(ctx, names=a.names)
    if a.json:
        _json(rows)
        return EXIT_OK
    for r in rows:
        print(escape(f"{r['depth']}  {r['name']}  tier {r['tier']}  {r['data']}  {r['path']}"))
    print(f"blast radius: {len(rows)} CI(s), CMDB_MAX_DEPTH {ctx.settings['CMDB_MAX_DEPTH']}")
    return EXIT_OK


def cmd_cmdb_graph(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.cmdb import graph

    sys.stdout.write(graph(ctx, name=a.name, fmt=a.format))
    return EXIT_OK
