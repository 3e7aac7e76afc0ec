"""A write under different rules than the previous write leaves a `config_changed` event."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortex_change.services import audit as audit_service
from cortex_change.services.changes import assess_change
from cortex_change.services.context import open_context
from cortex_change.store import audit
from support import file_change


def _events(db: str) -> list[tuple[str, dict[str, object]]]:
    ctx = open_context(env={"CORTEX_CHANGE_DB": db})
    try:
        with ctx.db.read() as tx:
            return [(e["action"], e["details"]) for e in (audit.as_dict(r) for r in audit.rows(tx))]
    finally:
        ctx.close()


def test_config_change_between_writes_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    db = store_url
    first = open_context(env={"CORTEX_CHANGE_DB": db})
    change = file_change(first, type="normal", category="deployment", title="t", requested_by="alice")
    first.close()
    assert [a for a, _ in _events(db)] == ["created"]

    second = open_context(env={"CORTEX_CHANGE_DB": db, "CAB_MIN_APPROVALS": "3", "TECH_LEADS": "zoe"})
    assess_change(second, change_id=change.change_id)
    assess_change_again = [a for a, _ in _events(db)]
    assert assess_change_again == ["created", "config_changed", "assessed", "approval_requested"]
    details = dict(_events(db))["config_changed"]
    assert details == {
        "changes": {
            "CAB_MIN_APPROVALS": {"old": 2, "new": 3},
            "TECH_LEADS": {"old": ["tech-lead", "coordinator-master"], "new": ["zoe"]},
        }
    }
    assert audit_service.verify(second).ok
    second.close()


def test_unchanged_config_writes_no_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    ctx = open_context(env={"CORTEX_CHANGE_DB": store_url})
    change = file_change(ctx, type="normal", category="deployment", title="t", requested_by="alice")
    assess_change(ctx, change_id=change.change_id)
    ctx.close()
    assert "config_changed" not in [a for a, _ in _events(store_url)]
