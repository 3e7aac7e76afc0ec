"""The attacks a database administrator can mount on the audit trail, for the checkpoint tests
(tests/services/test_checkpoints.py, tests/e2e/test_cli_checkpoints.py), on either backend."""

from __future__ import annotations

import json
from typing import Any

from cortex_change.store.audit import event_hash
from support import execute, query


def _run(store: str, *statements: str) -> None:
    for sql in statements:
        execute(store, sql)


def _unguard(store: str) -> None:
    """What a database administrator does first: the append-only triggers go."""
    if store.startswith("postgresql://"):
        _run(
            store,
            "DROP TRIGGER audit_events_no_update ON audit_events",
            "DROP TRIGGER audit_events_no_delete ON audit_events",
            "DROP TRIGGER audit_head_forward_only ON audit_head",
        )
    else:
        _run(
            store,
            "DROP TRIGGER audit_events_no_update",
            "DROP TRIGGER audit_events_no_delete",
            "DROP TRIGGER audit_head_forward_only",
        )


def rewrite(store: str, seq: int, details: dict[str, Any]) -> None:
    """The attack: edit event `seq`'s details, recompute every later hash with the chain's own
    function, and move the head to the new last hash — the bare chain verifies again."""
    _unguard(store)
    rows = query(
        store,
        "SELECT seq, event_id, at, change_id, action, actor, details, prev_hash FROM audit_events "
        "WHERE seq >= ? ORDER BY seq",
        (seq,),
    )
    prev = str(rows[0][7])
    for n, event_id, at, change_id, action, actor, stored, _ in rows:
        text = json.dumps(details, sort_keys=True, separators=(",", ":")) if n == seq else stored
        digest = event_hash(prev, n, event_id, at, change_id, action, actor, text)
        execute(
            store,
            "UPDATE audit_events SET details=?, prev_hash=?, hash=? WHERE seq=?",
            (text, prev, digest, n),
        )
        prev = digest
    execute(store, "UPDATE audit_head SET hash=? WHERE id=1", (prev,))


def truncate(store: str, keep: int) -> None:
    """Remove every event after `keep` and move the head back to match."""
    _unguard(store)
    (last_hash,) = query(store, "SELECT hash FROM audit_events WHERE seq=?", (keep,))[0]
    execute(store, "DELETE FROM audit_events WHERE seq > ?", (keep,))
    execute(store, "UPDATE audit_head SET seq=?, hash=? WHERE id=1", (keep, last_hash))
