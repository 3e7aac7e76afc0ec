"""The CMDB's use cases (docs/cmdb.md): import (all or nothing), export, show, list, impact, graph,
and the blast radius an assessment scores."""

from __future__ import annotations

from ..domain import cmdb
from ..domain import validation as v
from ..domain.errors import MissingPackage, NotFound, ValidationError
from ..domain.events import Event, EventKind
from ..domain.model import Change
from ..store import audit
from ..store import cmdb as store
from ..store.db import Tx
from .context import Context

# `assess` reads the blast radius through this module: what it imports is start-up time.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

FILE_MAX = 64 * 1024 * 1024  # bytes of an import file
FORMATS = ("json", "yaml", "kubernetes")


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(FILE_MAX + 1)
    except OSError as exc:
        raise ValidationError("FILE", f"cannot read {path!r}: {exc.strerror or exc}") from None
    if len(data) > FILE_MAX:
        raise ValidationError(
            "FILE", f"{path!r} is over {FILE_MAX // 2**20} MiB (split it into several imports)"
        )
    return data


def _yaml(text: str) -> Any:
    """YAML (safe: plain data only), refusing aliases: a YAML bomb multiplies one node by aliases."""
    try:
        import yaml
    except ImportError:
        raise MissingPackage("cmdb import of a YAML file", "pyyaml", "cmdb") from None
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise ValidationError("FILE", "YAML aliases (*name) are not allowed in a CMDB file")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError("FILE", f"is not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    except RecursionError:
        raise ValidationError("FILE", "is nested too deeply") from None


def read_document(path: str, data: bytes, fmt: str | None = None) -> dict[str, Any]:
    """The import document in a file's bytes: CMDB JSON or YAML, or a Kubernetes object list
    (kubectl -o json), by `fmt` or else by the file's extension and contents."""
    if fmt is not None and fmt not in FORMATS:
        raise ValidationError("--format", f"{fmt!r} is not allowed; allowed: {', '.join(FORMATS)}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("FILE", f"{path!r} is not UTF-8 text") from None
    from pathlib import Path

    yaml_file = fmt == "yaml" or (fmt is None and Path(path).suffix.lower() in (".yaml", ".yml"))
    doc = _yaml(text) if yaml_file else v.json_text("FILE", text)
    if fmt == "kubernetes" or (fmt is None and isinstance(doc, dict) and "apiVersion" in doc):
        from ..domain.kubernetes import cmdb_document

        converted: dict[str, Any] = cmdb_document(doc)
        return converted
    if not isinstance(doc, dict):
        raise ValidationError("FILE", 'must hold {"cis": [...]}')
    return doc


def import_file(
    ctx: Context, *, path: str, actor: str, dry_run: bool = False, prune: bool = False, fmt: str | None = None
) -> dict[str, Any]:
    """Compare the file with the CMDB and, unless `dry_run`, make the CMDB so in one transaction
    (audited as `cmdb_imported`); what it adds, changes and removes either way."""
    data = _read(path)
    incoming = cmdb.parse_document(read_document(path, data, fmt))
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    now = ctx.clock()
    with ctx.db.read() if dry_run else ctx.db.transaction() as tx:
        plan = cmdb.plan_import(store.everything(tx), incoming, prune)
        summary = {**plan.summary(), "dry_run": dry_run, "file_sha256": digest}
        if not dry_run and (plan.added or plan.changed or plan.removed):
            store.apply(tx, plan)
            counts = {k: len(summary[k]) for k in ("added", "changed", "removed")}
            details = {**counts, "prune": prune, "file_sha256": digest}
            audit.append(tx, None, [Event(EventKind.CMDB_IMPORTED, actor, details)], now)
    return summary


def export(ctx: Context) -> str:
    with ctx.db.read() as tx:
        return cmdb.as_json(store.everything(tx).values())


def _one(tx: Tx, name: str) -> cmdb.CI:
    found = store.get(tx, cmdb.ci_name("NAME", name))
    if found is None:
        raise NotFound(f"no CI {name!r} in the CMDB (cmdb list shows them)")
    return found


def show(ctx: Context, *, name: str) -> dict[str, Any]:
    """A CI with what it relies on and what relies on it directly."""
    with ctx.db.read() as tx:
        ci = _one(tx, name)
        dependents = store.dependents(tx, [ci.name])
    return {
        "name": ci.name,
        "type": ci.type,
        "tier": ci.tier,
        "owner": ci.owner,
        "environment": ci.environment,
        "data": ci.data,
        "attributes": ci.attributes,
        "dependencies": [{"kind": k, "name": t} for _, k, t in ci.edges()],
        "dependents": [{"kind": k, "name": s} for s, k, _ in sorted(dependents)],
    }


def listing(
    ctx: Context, *, type_: str | None = None, tier: int | None = None, owner: str | None = None
) -> list[dict[str, Any]]:
    filters: dict[str, object] = {}
    if type_ is not None:
        filters["type"] = cmdb.choice("--type", type_, cmdb.TYPES)
    if tier is not None:
        filters["tier"] = cmdb.choice("--tier", tier, cmdb.TIERS)
    if owner is not None:
        filters["owner"] = v.name("--owner", owner)
    with ctx.db.read() as tx:
        rows = store.listing(tx, filters)
    keys = ("name", "type", "tier", "owner", "environment", "data")
    return [dict(zip(keys, row[:6], strict=True)) for row in rows]


def radius(ctx: Context, tx: Tx, names: list[str]) -> list[tuple[cmdb.Reach, cmdb.CI]]:
    """The blast radius of `names` (known CIs only), each reach with its CI."""
    reaches = cmdb.blast_radius(
        names, lambda frontier: store.dependents(tx, frontier), ctx.settings["CMDB_MAX_DEPTH"]
    )
    cis = store.many(tx, [r.name for r in reaches])
    return [(r, cis[r.name]) for r in reaches if r.name in cis]


def impact(ctx: Context, *, names: list[str]) -> list[dict[str, Any]]:
    """`cmdb impact NAME…`: every CI that transitively relies on the given ones, with the path."""
    if not names:
        raise ValidationError("NAME", "name at least one CI")
    with ctx.db.read() as tx:
        wanted = [_one(tx, n).name for n in names]
        found = radius(ctx, tx, wanted)
    return [
        {
            "name": r.name,
            "depth": r.depth,
            "type": ci.type,
            "tier": ci.tier,
            "data": ci.data,
            "owner": ci.owner,
            "path": r.explain(),
        }
        for r, ci in found
    ]


def graph(ctx: Context, *, name: str, fmt: str = "dot") -> str:
    """The CI, what relies on it (its blast radius) and what it relies on, as Graphviz dot or
    Mermaid text, at most CMDB_MAX_DEPTH steps each way."""
    if fmt not in ("dot", "mermaid"):
        raise ValidationError("--format", f"{fmt!r} is not allowed; allowed: dot, mermaid")
    depth = ctx.settings["CMDB_MAX_DEPTH"]
    with ctx.db.read() as tx:
        root = _one(tx, name)
        edges = {
            r.path[0]
            for r in cmdb.blast_radius([root.name], lambda f: store.dependents(tx, f), depth)
            if r.path
        }
        frontier, seen = [root], {root.name}
        for _ in range(depth):
            following = []
            for ci in frontier:
                for edge in ci.edges():
                    edges.add(edge)
                    if edge[2] not in seen:
                        seen.add(edge[2])
                        found = store.get(tx, edge[2])
                        if found is not None:
                            following.append(found)
            frontier = following
    return cmdb.render_graph(root.name, sorted(edges), fmt)


def change_radius(ctx: Context, tx: Tx, change: Change) -> cmdb.Radius | None:
    """The blast radius of a change's services and CIs, when the CMDB is on and holds CIs
    (CMDB_ENABLED, AUTO_DEPENDENCY_ANALYSIS); names it does not know are warned about, or refused
    with CMDB_UNKNOWN_CI=refuse (nothing written)."""
    if not (ctx.settings["CMDB_ENABLED"] and ctx.settings["AUTO_DEPENDENCY_ANALYSIS"]):
        return None
    names = sorted({cmdb.normalise(n) for n in [*change.affected_services, *change.affected_cis]} - {""})
    if not names or store.empty(tx):
        return None
    known = store.many(tx, names)
    unknown = [n for n in names if n not in known]
    if unknown and ctx.settings["CMDB_UNKNOWN_CI"] == "refuse":
        raise ValidationError(
            "affected_services/affected_cis",
            f"not in the CMDB: {', '.join(unknown)} (CMDB_UNKNOWN_CI=refuse; cmdb list shows what is)",
        )
    return cmdb.Radius(radius(ctx, tx, sorted(known)), unknown)
