"""A production deploy may cite a successful staging deploy of the same service (docs/catalog.md)."""

from __future__ import annotations

import json
import re

import pytest

from cortex_change.domain.errors import ValidationError
from cortex_change.services.changes import approve_change, close_change
from cortex_change.services.context import Context
from cortex_change.services.implementation import implement_change
from cortex_change.services.integrations import integrate
from cortex_change.services.queries import get_change


def _deploy(ctx: Context, **details: str) -> str:
    return integrate(ctx, component="cicd-master", action="deploy", args=[json.dumps(details)]).change_id


def _count(ctx: Context) -> int:
    with ctx.db.read() as tx:
        row = tx.one("SELECT count(*) FROM changes")
    assert row is not None
    return int(row[0])


def _finish(ctx: Context, change_id: str, status: str = "successful") -> None:
    approve_change(ctx, change_id=change_id, approver="tech-lead", reason="ok")
    implement_change(ctx, change_id=change_id, actor="cicd-master")
    close_change(ctx, change_id=change_id, status=status, notes="done", actor="cicd-master")


def test_successful_staging_deploy_is_recorded_as_evidence(ctx: Context) -> None:
    staging = _deploy(ctx, environment="staging", service="my-service")
    _finish(ctx, staging)
    prod = get_change(
        ctx, change_id=_deploy(ctx, environment="production", service="my-service", tested_in_staging=staging)
    )
    assert prod["tested_in_staging"] == staging
    assert prod["assessment"]["staging_evidence"].startswith(f"{staging}: staging deployment of my-service")
    # Evidence lowers nothing: the score equals an uncited production deploy's.
    plain = get_change(ctx, change_id=_deploy(ctx, environment="production", service="my-service"))
    assert prod["risk_score"] == plain["risk_score"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("pending", "did not close successful (it is pending_approval)"),
        ("failed", "did not close successful (it is failed)"),
        ("other-service", "touched other-service, none of this change's services"),
        ("production", "was not a staging change (environment production)"),
        ("missing", "no change 'RFC-20200101000000-000000'"),
    ],
)
def test_unusable_citations_are_refused_and_write_nothing(ctx: Context, setup: str, message: str) -> None:
    if setup == "missing":
        cited = "RFC-20200101000000-000000"
    else:
        service = "other-service" if setup == "other-service" else "my-service"
        environment = "production" if setup == "production" else "staging"
        cited = _deploy(ctx, environment=environment, service=service)
        if setup != "pending":
            _finish(ctx, cited, "failed" if setup == "failed" else "successful")
    listed_before = _count(ctx)
    with pytest.raises(ValidationError, match=re.escape(message)):
        _deploy(ctx, environment="production", service="my-service", tested_in_staging=cited)
    assert _count(ctx) == listed_before
