"""The CMDB's use cases on both backends (services/cmdb.py): imports all or nothing, dry runs and
prunes, the `cmdb_imported` audit event, and assessments scored on the example CMDB's blast radius
(CMDB_ENABLED, AUTO_DEPENDENCY_ANALYSIS, CMDB_UNKNOWN_CI)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cortex_change.domain import routing
from cortex_change.domain.errors import NotFound, ValidationError
from cortex_change.domain.model import Change
from cortex_change.services import audit as audit_service
from cortex_change.services import cmdb
from cortex_change.services.changes import assess_change
from cortex_change.services.context import Context
from support import file_change, query

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cortex-platform-cmdb.json"
EXAMPLE_CIS = json.loads(EXAMPLE.read_text(encoding="utf-8"))["cis"]
EXAMPLE_EDGES = sum(len(c.get(k, [])) for c in EXAMPLE_CIS for k in ("depends_on", "runs_on", "part_of"))
REDIS_RADIUS = {"redis-cache", "cortex-chat", "cortex-workers", "youtube-ingestion", "public-ingress"}
POSTGRES_RADIUS = {"postgres-main", "cortex-chat", "cortex-workers", "youtube-ingestion", "public-ingress"}


def counts(store_url: str) -> tuple[int, int, int]:
    """(CIs, relationships, audit events) straight from the store."""
    return tuple(  # type: ignore[return-value]
        int(query(store_url, f"SELECT count(*) FROM {t}")[0][0])
        for t in ("cis", "ci_relations", "audit_events")
    )


def events(store_url: str) -> list[tuple[Any, ...]]:
    rows = query(store_url, "SELECT change_id, action, actor, details FROM audit_events ORDER BY seq")
    return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


def write(tmp_path: Path, name: str, cis: list[dict[str, Any]]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"cis": cis}), encoding="utf-8")
    return str(path)


def stored_doc(store_url: str, change_id: str) -> dict[str, Any]:
    rows = query(store_url, "SELECT doc FROM changes WHERE change_id = ?", (change_id,))
    doc: dict[str, Any] = json.loads(rows[0][0])
    return doc


def filed(ctx: Context, **fields: Any) -> Change:
    base = {
        "type": "normal",
        "category": "configuration",
        "title": "Tune the cache",
        "requested_by": "alice",
        "impact": "low",
    }
    return file_change(ctx, **{**base, **fields})


# --- import ------------------------------------------------------------------------------------


def test_an_import_writes_every_ci_and_one_audited_event(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx()
    summary = cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    assert sorted(summary["added"]) == sorted(c["name"] for c in EXAMPLE_CIS)
    assert (summary["changed"], summary["removed"], summary["unchanged"], summary["dry_run"]) == (
        [],
        [],
        0,
        False,
    )
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert summary["file_sha256"] == digest
    assert counts(store_url) == (len(EXAMPLE_CIS), EXAMPLE_EDGES, 1)
    assert events(store_url) == [
        (
            None,
            "cmdb_imported",
            "importer",
            {"added": len(EXAMPLE_CIS), "changed": 0, "removed": 0, "prune": False, "file_sha256": digest},
        )
    ]
    verdict = audit_service.verify(ctx)
    assert verdict.ok and verdict.checked == 1
    assert json.loads(cmdb.export(ctx))["cis"] == sorted(
        json.loads(cmdb.export(ctx))["cis"], key=lambda c: c["name"]
    )


def test_the_same_file_again_changes_nothing_and_writes_no_event(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx()
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    before, exported = counts(store_url), cmdb.export(ctx)
    for prune in (False, True):
        again = cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer", prune=prune)
        assert (again["added"], again["changed"], again["removed"]) == ([], [], [])
        assert again["unchanged"] == len(EXAMPLE_CIS)
    assert counts(store_url) == before
    assert cmdb.export(ctx) == exported
    assert audit_service.verify(ctx).ok


def test_the_export_imported_again_changes_nothing(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    ctx = make_ctx()
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    exported = tmp_path / "export.json"
    exported.write_text(cmdb.export(ctx), encoding="utf-8")
    again = cmdb.import_file(ctx, path=str(exported), actor="importer", prune=True)
    assert again["unchanged"] == len(EXAMPLE_CIS) and not (
        again["added"] or again["changed"] or again["removed"]
    )


BAD_CIS: list[tuple[str, dict[str, Any]]] = [
    ("tier 7", {"name": "bad", "type": "service", "tier": 7}),
    ("unknown type", {"name": "bad", "type": "mainframe"}),
    ("missing target", {"name": "bad", "type": "service", "depends_on": ["ghost"]}),
    ("duplicate by case", {"name": "Redis-Cache", "type": "queue"}),
    ("nested attribute", {"name": "bad", "type": "service", "meta": {"a": 1}}),
]


@pytest.mark.parametrize("bad", [b for _, b in BAD_CIS], ids=[i for i, _ in BAD_CIS])
def test_an_import_is_all_or_nothing(
    make_ctx: Callable[..., Context], store_url: str, tmp_path: Path, bad: dict[str, Any]
) -> None:
    ctx = make_ctx()
    good = [
        {"name": "redis-cache", "type": "queue", "tier": 1},
        {"name": "fresh", "type": "service", "depends_on": ["redis-cache"]},
    ]
    with pytest.raises(ValidationError):
        cmdb.import_file(ctx, path=write(tmp_path, "bad.json", [*good, bad]), actor="importer")
    assert counts(store_url) == (0, 0, 0)

    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    before, exported = counts(store_url), cmdb.export(ctx)
    with pytest.raises(ValidationError):
        cmdb.import_file(ctx, path=write(tmp_path, "bad.json", [*good, bad]), actor="importer", prune=True)
    assert counts(store_url) == before
    assert cmdb.export(ctx) == exported


def test_a_dry_run_writes_nothing(make_ctx: Callable[..., Context], store_url: str, tmp_path: Path) -> None:
    ctx = make_ctx()
    summary = cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer", dry_run=True)
    assert len(summary["added"]) == len(EXAMPLE_CIS) and summary["dry_run"] is True
    assert counts(store_url) == (0, 0, 0)

    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    before, exported = counts(store_url), cmdb.export(ctx)
    smaller = [c for c in EXAMPLE_CIS if c["name"] != "public-ingress"]
    smaller = [{**c, "tier": 3} if c["name"] == "redis-cache" else c for c in smaller]
    summary = cmdb.import_file(
        ctx, path=write(tmp_path, "smaller.json", smaller), actor="importer", dry_run=True, prune=True
    )
    assert summary["removed"] == ["public-ingress"]
    assert summary["changed"] == [{"name": "redis-cache", "fields": ["tier"]}]
    assert counts(store_url) == before
    assert cmdb.export(ctx) == exported


def test_prune_removes_what_the_file_no_longer_has(
    make_ctx: Callable[..., Context], store_url: str, tmp_path: Path
) -> None:
    ctx = make_ctx()
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    smaller = [c for c in EXAMPLE_CIS if c["name"] not in ("public-ingress", "youtube-data-api")]
    smaller = [
        {**c, "depends_on": ["postgres-main", "redis-cache"]} if c["name"] == "youtube-ingestion" else c
        for c in smaller
    ]
    path = write(tmp_path, "smaller.json", smaller)

    kept = cmdb.import_file(ctx, path=path, actor="importer")  # without --prune: kept
    assert kept["removed"] == [] and kept["changed"] == [
        {"name": "youtube-ingestion", "fields": ["relations"]}
    ]
    assert counts(store_url)[0] == len(EXAMPLE_CIS)

    pruned = cmdb.import_file(ctx, path=path, actor="pruner", prune=True)
    assert pruned["removed"] == ["public-ingress", "youtube-data-api"] and pruned["changed"] == []
    names = {c["name"] for c in json.loads(cmdb.export(ctx))["cis"]}
    assert names == {c["name"] for c in smaller}
    edges = {(r[0], r[1], r[2]) for r in query(store_url, "SELECT source, kind, target FROM ci_relations")}
    assert not {e for e in edges if {e[0], e[2]} & {"public-ingress", "youtube-data-api"}}
    last = events(store_url)[-1]
    assert last[1:3] == ("cmdb_imported", "pruner")
    assert {k: last[3][k] for k in ("added", "changed", "removed", "prune")} == {
        "added": 0,
        "changed": 0,
        "removed": 2,
        "prune": True,
    }
    assert audit_service.verify(ctx).ok


def test_changing_a_ci_keeps_what_relies_on_it(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    ctx = make_ctx()
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    raised = [{**c, "tier": 0, "data": "pci"} if c["name"] == "redis-cache" else c for c in EXAMPLE_CIS]
    summary = cmdb.import_file(ctx, path=write(tmp_path, "raised.json", raised), actor="importer")
    assert summary["changed"] == [{"name": "redis-cache", "fields": ["tier", "data"]}]
    assert {r["name"] for r in cmdb.impact(ctx, names=["redis-cache"])} == REDIS_RADIUS
    shown = cmdb.show(ctx, name="redis-cache")
    assert (shown["tier"], shown["data"]) == (0, "pci")
    assert {d["name"] for d in shown["dependents"]} == {"cortex-chat", "cortex-workers", "youtube-ingestion"}


# --- queries ------------------------------------------------------------------------------------


def test_show_list_impact_graph(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx()
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    shown = cmdb.show(ctx, name="Cortex-Chat")
    assert shown["name"] == "cortex-chat" and shown["tier"] == 0
    assert shown["dependencies"] == [
        {"kind": "depends_on", "name": "postgres-main"},
        {"kind": "depends_on", "name": "redis-cache"},
        {"kind": "runs_on", "name": "k8s-prod"},
    ]
    assert shown["dependents"] == [{"kind": "depends_on", "name": "public-ingress"}]
    assert [r["name"] for r in cmdb.listing(ctx, type_="database", tier=0)] == ["postgres-main"]
    assert [r["name"] for r in cmdb.listing(ctx, owner="data-team")] == ["db-host-1", "postgres-main"]
    found = {r["name"]: r for r in cmdb.impact(ctx, names=["redis-cache", "youtube-data-api"])}
    assert set(found) == REDIS_RADIUS | {"youtube-data-api"}
    assert (
        found["public-ingress"]["path"] == "public-ingress → depends on cortex-chat → depends on redis-cache"
    )
    assert found["public-ingress"]["depth"] == 2
    assert "penwidth=3" in cmdb.graph(ctx, name="redis-cache", fmt="dot")
    with pytest.raises(NotFound):
        cmdb.show(ctx, name="nope")
    with pytest.raises(NotFound):
        cmdb.impact(ctx, names=["redis-cache", "nope"])


def test_the_depth_bound_applies_to_impact(make_ctx: Callable[..., Context]) -> None:
    ctx = make_ctx(CMDB_MAX_DEPTH="1")
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    found = {r["name"] for r in cmdb.impact(ctx, names=["redis-cache"])}
    assert found == REDIS_RADIUS - {"public-ingress"}


# --- assessment -------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["redis-cache", "Redis-Cache"])
def test_a_change_touching_redis_is_raised_to_critical_naming_the_path(
    make_ctx: Callable[..., Context], store_url: str, spelling: str
) -> None:
    ctx = make_ctx()
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    change = filed(ctx, affected_services=[spelling])
    assessed = assess_change(ctx, change_id=change.change_id)
    a = assessed.assessment
    assert a is not None
    impact = a.components["impact"]
    assert impact.points == 40
    assert "impact low raised to critical" in impact.reason
    assert "cortex-chat → depends on redis-cache (tier 0)" in impact.reason
    complexity = a.components["complexity"]
    assert complexity.points == 25
    assert "5 in the blast radius (1 touched, 4 relying on them)" in complexity.reason
    assert not a.ciso  # no PHI or PCI reached from redis-cache

    blast = stored_doc(store_url, change.change_id)["assessment"]["blast_radius"]
    assert blast["size"] == 5
    assert {c["name"] for c in blast["cis"]} == REDIS_RADIUS
    assert blast["cis"][0] == {
        "name": "redis-cache",
        "depth": 0,
        "tier": 2,
        "data": "none",
        "path": "redis-cache",
    }
    assert blast["most_critical"] == "cortex-chat → depends on redis-cache (tier 0)"
    assert blast["sensitive"] == [] and blast["unknown"] == []
    assessed_event = next(e for e in events(store_url) if e[1] == "assessed")
    assert assessed_event[3]["blast_radius"] == blast
    (requested,) = [e for e in events(store_url) if e[1] == "approval_requested"]
    assert requested[3]["needs"] == routing.outstanding(a.route, [], ctx.policy)  # its own route only


def test_a_change_touching_phi_needs_the_ciso(make_ctx: Callable[..., Context], store_url: str) -> None:
    ctx = make_ctx()
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    change = filed(ctx, affected_cis=["postgres-main"])
    assessed = assess_change(ctx, change_id=change.change_id)
    a = assessed.assessment
    assert a is not None and a.ciso
    assert a.components["impact"].points == 40
    assert "postgres-main (tier 0)" in a.components["impact"].reason
    assert "ciso" in [r.role for r in routing.needs(assessed, ctx.policy)]
    assert "PHI in postgres-main" in a.route_reason
    blast = stored_doc(store_url, change.change_id)["assessment"]["blast_radius"]
    assert {c["name"] for c in blast["cis"]} == POSTGRES_RADIUS
    assert blast["sensitive"] == [{"name": "postgres-main", "data": "phi", "path": "postgres-main"}]
    (requested,) = [e for e in events(store_url) if e[1] == "approval_requested"]
    assert "ciso 0/1" in requested[3]["needs"]


def test_unknown_cis_are_refused_with_refuse_and_nothing_is_written(
    make_ctx: Callable[..., Context], store_url: str
) -> None:
    ctx = make_ctx(CMDB_UNKNOWN_CI="refuse")
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    change = filed(ctx, affected_services=["redis-cache", "ghost-svc"])
    version = int(query(store_url, "SELECT version FROM changes")[0][0])
    before = counts(store_url)
    with pytest.raises(ValidationError) as exc:
        assess_change(ctx, change_id=change.change_id)
    assert "ghost-svc" in str(exc.value) and "redis-cache" not in str(exc.value)
    assert counts(store_url) == before
    assert int(query(store_url, "SELECT version FROM changes")[0][0]) == version
    assert stored_doc(store_url, change.change_id)["state"] == "pending_assessment"


def test_unknown_cis_are_recorded_with_warn(make_ctx: Callable[..., Context], store_url: str) -> None:
    ctx = make_ctx(CMDB_UNKNOWN_CI="warn")
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    change = filed(ctx, affected_services=["redis-cache", "ghost-svc"])
    assessed = assess_change(ctx, change_id=change.change_id)
    assert assessed.assessment is not None
    complexity = assessed.assessment.components["complexity"]
    assert complexity.points == 30 and "1 not in the CMDB" in complexity.reason
    blast = stored_doc(store_url, change.change_id)["assessment"]["blast_radius"]
    assert blast["unknown"] == ["ghost-svc"] and blast["size"] == 5


OLD_RULES = [
    ({"CMDB_ENABLED": "false"}, True),
    ({"AUTO_DEPENDENCY_ANALYSIS": "false"}, True),
    ({"CMDB_ENABLED": "false", "CMDB_UNKNOWN_CI": "refuse"}, True),
    ({}, False),  # an empty CMDB
    ({"CMDB_UNKNOWN_CI": "refuse"}, False),  # an empty CMDB refuses nothing
]


@pytest.mark.parametrize(("settings", "imported"), OLD_RULES)
def test_without_the_cmdb_the_old_scoring_holds(
    make_ctx: Callable[..., Context], store_url: str, settings: dict[str, str], imported: bool
) -> None:
    ctx = make_ctx(**settings)
    if imported:
        cmdb.import_file(ctx, path=str(EXAMPLE), actor="importer")
    change = filed(ctx, affected_services=["redis-cache", "ghost-svc"], affected_cis=["postgres-main"])
    assessed = assess_change(ctx, change_id=change.change_id)
    a = assessed.assessment
    assert a is not None
    assert (a.components["impact"].points, a.components["impact"].reason) == (10, "impact low: 10")
    assert (a.components["complexity"].points, a.components["complexity"].reason) == (
        10,
        "2 affected service(s) × 5: 10",
    )
    assert a.blast_radius is None and not a.ciso
    assert stored_doc(store_url, change.change_id)["assessment"]["blast_radius"] is None
    assert all("blast_radius" not in e[3] for e in events(store_url))


def test_pci_in_the_radius_puts_the_ciso_on_a_technical_lead_route(
    make_ctx: Callable[..., Context], store_url: str, tmp_path: Path
) -> None:
    ctx = make_ctx()
    small = [
        {"name": "ledger", "type": "database", "tier": 3, "data": "pci"},
        {"name": "billing", "type": "service", "tier": 3, "depends_on": ["ledger"]},
    ]
    cmdb.import_file(ctx, path=write(tmp_path, "small.json", small), actor="importer")
    change = filed(ctx, category="documentation", affected_cis=["ledger"])
    assessed = assess_change(ctx, change_id=change.change_id)
    a = assessed.assessment
    assert a is not None and a.route.value == "technical-lead"
    assert [r.role for r in routing.needs(assessed, ctx.policy)] == ["technical-lead", "ciso"]
    (requested,) = [e for e in events(store_url) if e[1] == "approval_requested"]
    assert requested[3]["needs"] == ["technical-lead 0/1", "ciso 0/1"]
    assert "PCI in ledger" in a.route_reason

    billing_only = filed(ctx, category="documentation", affected_cis=["billing"])  # ledger not reached
    other = assess_change(ctx, change_id=billing_only.change_id)
    assert other.assessment is not None and not other.assessment.ciso
    assert [r.role for r in routing.needs(other, ctx.policy)] == ["technical-lead"]


def test_an_update_re_assesses_with_the_blast_radius_of_the_updated_services(
    make_ctx: Callable[..., Context], tmp_path: Path
) -> None:
    from cortex_change.services.changes import update_change

    ctx = make_ctx()
    cmdb.import_file(ctx, path=str(EXAMPLE), actor="ops")
    change = file_change(
        ctx,
        type="normal",
        category="configuration",
        title="Tune",
        requested_by="dev",
        impact="low",
        rollback_plan={"steps": ["undo"]},
        affected_services=["youtube-data-api"],
    )
    assess_change(ctx, change_id=change.change_id)
    updated = update_change(
        ctx, change_id=change.change_id, actor="dev", fields={"affected_services": ["redis-cache"]}
    )
    assert updated.assessment is not None and updated.assessment.blast_radius is not None
    assert updated.assessment.blast_radius["size"] == 5
    assert "cortex-chat → depends on redis-cache (tier 0)" in updated.assessment.components["impact"].reason
