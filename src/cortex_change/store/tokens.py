"""API tokens and idempotency keys."""

from __future__ import annotations

from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .db import Row


def insert(
    tx: Tx,
    token_id: str,
    name: str,
    secret_hash: str,
    created_at: str,
    agent: bool = False,
    scopes: str | None = None,
    expires_at: str | None = None,
) -> None:
    """A token: `scopes` is the JSON of `agents.Scopes.document()` (None: unrestricted)."""
    tx.run(
        "INSERT INTO api_tokens (token_id, name, secret_hash, created_at, agent, scopes, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (token_id, name, secret_hash, created_at, int(agent), scopes, expires_at),
    )


COLUMNS = "token_id, name, created_at, revoked_at, agent, scopes, expires_at, retires_at"


def find(tx: Tx, token_id: str) -> Row | None:
    """(name, secret_hash, revoked_at, agent, scopes, expires_at, retires_at) of a token, or None."""
    return tx.one(
        "SELECT name, secret_hash, revoked_at, agent, scopes, expires_at, retires_at "
        "FROM api_tokens WHERE token_id=?",
        (token_id,),
    )


def get(tx: Tx, token_id: str) -> Row | None:
    """The COLUMNS of one token."""
    return tx.one(f"SELECT {COLUMNS} FROM api_tokens WHERE token_id=?", (token_id,))


def listing(tx: Tx) -> list[Row]:
    """The COLUMNS of every token."""
    return tx.all(f"SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, token_id")


def kinds(tx: Tx, name: str) -> set[bool]:
    """Whether the tokens ever made for identity `name` are agents' (empty: none made)."""
    return {bool(r[0]) for r in tx.all("SELECT DISTINCT agent FROM api_tokens WHERE name=?", (name,))}


def retire(tx: Tx, token_id: str, at: str) -> int:
    """A rotated-out token stops working at `at`."""
    return tx.run(
        "UPDATE api_tokens SET retires_at=? WHERE token_id=? AND revoked_at IS NULL AND retires_at IS NULL",
        (at, token_id),
    )


def revoke(tx: Tx, token_id: str, at: str) -> int:
    return tx.run(
        "UPDATE api_tokens SET revoked_at=? WHERE token_id=? AND revoked_at IS NULL", (at, token_id)
    )


def idempotent_result(tx: Tx, identity: str, key: str) -> Row | None:
    """(request_hash, change_id) recorded for this caller's key, or None."""
    return tx.one(
        "SELECT request_hash, change_id FROM idempotency_keys WHERE identity=? AND idem_key=?",
        (identity, key),
    )


def claim(tx: Tx, identity: str, key: str, request_hash: str, change_id: str, at: str) -> bool:
    """Record this caller's key for `change_id`; False if a request took the key first.

    A concurrent first request holding the same key makes this wait until it commits (then
    False: its row is there to read, in the same transaction, as PostgreSQL reads committed
    rows) or rolls back (then True): never a unique violation.
    """
    return (
        tx.run(
            "INSERT INTO idempotency_keys (identity, idem_key, request_hash, change_id, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (identity, idem_key) DO NOTHING",
            (identity, key, request_hash, change_id, at),
        )
        == 1
    )
