"""`audit keygen`, `audit keys`, `audit checkpoint` and `audit verify --checkpoints`: signed audit
checkpoints (docs/checkpoints.md), on the store's host."""

from __future__ import annotations

import argparse
import sys

from ..domain.errors import ValidationError
from . import render
from .exits import EXIT_OK, EXIT_REFUSED

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from ..services.checkpoints import Report
    from ..services.context import Context
    from .gateway import Gateway


def cmd_audit_keygen(ctx: Context | None, a: argparse.Namespace) -> int:
    from ..services.checkpoints import keygen

    made = keygen(a.file)
    print(f"key id {made['key_id']}")
    print(f"public key {made['public_key']}")
    print(render.escape(f"private key: {made['file']} (mode 0600; set AUDIT_SIGNING_KEY to it)"))
    print(render.escape(f"public key file: {made['public_file']} (give it to verifiers: --key)"))
    return EXIT_OK


def cmd_audit_keys_list(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.checkpoints import list_keys

    keys = list_keys(ctx)
    if a.json:
        print(render.as_json(keys))
        return EXIT_OK
    for k in keys:
        end = k["valid_to"] or "-"
        print(f"{k['key_id']}  from {k['valid_from']}  to {end}  {k['public_key']}")
    if not keys:
        print("no audit keys (the first checkpoint registers AUDIT_SIGNING_KEY's)")
    return EXIT_OK


def cmd_audit_keys_add(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.checkpoints import add_key

    key = add_key(ctx, public_file=a.public_file, valid_from=a.valid_from, valid_to=a.valid_to)
    print(f"key {key.key_id} added: {key.period()}")
    return EXIT_OK


def cmd_audit_keys_retire(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.checkpoints import retire_key

    at = retire_key(ctx, key_id=a.key_id, at=a.at)
    print(render.escape(f"key {a.key_id} retired at {at}: checkpoints it signed before then still verify"))
    return EXIT_OK


def cmd_audit_checkpoint(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.checkpoints import checkpoint, list_checkpoints, publish_due
    from ..services.worker import default_name

    signed = checkpoint(ctx)
    assert signed is not None
    publish_due(ctx, default_name())
    doc = next(c for c in list_checkpoints(ctx) if c["number"] == signed.number)
    if a.json:
        print(render.as_json(doc))
        return EXIT_OK
    print(f"{signed.name()} signed; head {signed.head}")
    for r in doc["receipts"]:
        why = f" ({r['last_error']})" if r["last_error"] else ""
        state = "published" if r["state"] == "delivered" else "pending, retried by the worker"
        print(render.escape(f"  witness {r['witness']}: {state}{why}"))
    if not doc["receipts"]:
        print("  no witness configured (AUDIT_WITNESS_FILE, AUDIT_WITNESS_WEBHOOK): stored only")
    return EXIT_OK


def verify(gw: Gateway | None, a: argparse.Namespace) -> int:
    """`audit verify --checkpoints …` (with --export: offline, no database)."""
    from ..services import checkpoints

    if a.export:
        report = checkpoints.verify_offline(a.export, sources=a.checkpoints, key_files=a.key or ())
    else:
        from .gateway import Local

        if not isinstance(gw, Local):
            raise ValidationError("--checkpoints", "runs on the store's host: unset CORTEX_CHANGE_URL")
        report = checkpoints.verify(gw.ctx, sources=a.checkpoints, key_files=a.key or ())
    return _report(report)


def _report(report: Report) -> int:
    chain = report.chain
    if chain.ok:
        print(f"audit chain intact: {chain.checked} events verified; head {render.escape(chain.head_hash)}")
    else:
        problem = render.escape(chain.problem)
        print(f"audit chain BROKEN after {chain.checked} good events: {problem}", file=sys.stderr)
    for note in report.notes:
        print(render.escape(f"note: {note}"))
    for f in report.findings:
        print(render.escape(f"checkpoint FAILED: {f.message}"), file=sys.stderr)
    latest = report.latest.name() if report.latest is not None else "none"
    line = f"checkpoints: {len(report.verified)} with good signatures ({report.keys_from}); latest {latest}"
    print(render.escape(line))
    if not report.verified:
        print("no checkpoint with a good signature was given: nothing proven", file=sys.stderr)
        return EXIT_REFUSED
    if report.ok:
        print("the chain extends every checkpoint")
        return EXIT_OK
    return EXIT_REFUSED
