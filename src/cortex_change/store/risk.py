"""Learned risk models and the closed changes they learn from (services/risk_model.py)."""

from __future__ import annotations

from ..domain.lifecycle import State
from ..domain.model import ClosureStatus
from .db import Tx

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from ..domain.prediction import Model
    from .db import Row


def latest(tx: Tx) -> Row | None:
    """(version, trained_at, card, params) of the newest model, or None."""
    return tx.one("SELECT version, trained_at, card, params FROM risk_models ORDER BY version DESC LIMIT 1")


def active(tx: Tx) -> Model | None:
    """The newest trained model (logistic or boosted trees), or None (the rules alone assess)."""
    import json

    from ..domain.prediction import of_document

    row = latest(tx)
    return None if row is None else of_document(json.loads(row[3]))


def freezes_ahead(tx: Tx, after: float) -> bool:
    """Whether a stored freeze is not over by `after` (else an assessment need not read windows)."""
    return (
        tx.one("SELECT 1 FROM change_windows WHERE kind = 'freeze' AND ends_at > ? LIMIT 1", (after,))
        is not None
    )


def insert(tx: Tx, version: int, trained_at: str, card: str, params: str) -> None:
    tx.run(
        "INSERT INTO risk_models (version, trained_at, card, params) VALUES (?, ?, ?, ?)",
        (version, trained_at, card, params),
    )


def next_version(tx: Tx) -> int:
    row = tx.one("SELECT MAX(version) FROM risk_models")
    return int(row[0] or 0) + 1 if row is not None else 1


def outcomes(tx: Tx, created_from: float, created_to: float) -> list[Row]:
    """(created_at, closed_at, closure_status, doc) of changes filed in [from, to) and closed
    successful, failed or rolled back: what a model learns from or is judged on."""
    return tx.all(
        "SELECT created_at, closed_at, closure_status, doc FROM changes "
        "WHERE created_at >= ? AND created_at < ? AND state = ? AND closure_status IN (?, ?, ?) "
        "ORDER BY created_at, change_id",
        (
            created_from,
            created_to,
            State.CLOSED.value,
            ClosureStatus.SUCCESSFUL.value,
            ClosureStatus.FAILED.value,
            ClosureStatus.ROLLED_BACK.value,
        ),
    )


def service_outcomes(tx: Tx, services: list[str], since: float, exclude: str) -> tuple[int, int]:
    """(closed, failed or rolled back) of changes touching any of `services` closed since `since`."""
    if not services:
        return 0, 0
    marks = ",".join("?" * len(services))
    row = tx.one(
        "SELECT COUNT(*), SUM(CASE WHEN c.closure_status IN (?, ?) THEN 1 ELSE 0 END) FROM changes c "
        "WHERE c.change_id IN (SELECT s.change_id FROM change_services s WHERE s.service IN "
        f"({marks})) AND c.state = ? AND c.closure_status IN (?, ?, ?) AND c.closed_at >= ? "
        "AND c.change_id <> ?",
        (
            ClosureStatus.FAILED.value,
            ClosureStatus.ROLLED_BACK.value,
            *services,
            State.CLOSED.value,
            ClosureStatus.SUCCESSFUL.value,
            ClosureStatus.FAILED.value,
            ClosureStatus.ROLLED_BACK.value,
            since,
            exclude,
        ),
    )
    return (0, 0) if row is None else (int(row[0] or 0), int(row[1] or 0))
