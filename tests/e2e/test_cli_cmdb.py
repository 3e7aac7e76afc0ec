"""`cortex-change cmdb ...` end to end, the real console script on both backends: imports from YAML,
JSON and Kubernetes listings, round trips through `cmdb export`, dry runs and prunes, the queries,
and bad files — each one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from cortex_change.domain import cmdb
from support import query

if TYPE_CHECKING:
    from conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
PLATFORM_YAML = FIXTURES / "cmdb" / "platform.yaml"
EXAMPLE = ROOT / "examples" / "cortex-platform-cmdb.json"
KUBERNETES = FIXTURES / "kubernetes" / "cortex-platform.json"
EXAMPLE_NAMES = sorted(c["name"] for c in json.loads(EXAMPLE.read_text(encoding="utf-8"))["cis"])


def rows(cli: Cli, table: str) -> int:
    db = cli.db
    if not str(db).startswith("postgresql://") and not Path(db).exists():
        return 0
    try:
        return int(query(db, f"SELECT count(*) FROM {table}")[0][0])
    except Exception as exc:  # the store exists but has no tables yet
        if "no such table" in str(exc) or "does not exist" in str(exc):
            return 0
        raise


def written(cli: Cli) -> tuple[int, int, int]:
    """(CIs, relationships, audit events) in the store."""
    return rows(cli, "cis"), rows(cli, "ci_relations"), rows(cli, "audit_events")


def imported(cli: Cli, *args: str | Path) -> str:
    return cli.ok("cmdb", "import", *(str(a) for a in args), user="importer")


def summary_line(out: str) -> str:
    return out.splitlines()[-1]


def same_cis(left: Any, right: Any) -> None:
    a = sorted(cmdb.parse_document(left), key=lambda c: c.name)
    b = sorted(cmdb.parse_document(right), key=lambda c: c.name)
    assert a == b


# --- imports and round trips ----------------------------------------------------------------------


def test_yaml_round_trips_through_export(cli: Cli) -> None:
    out = imported(cli, PLATFORM_YAML)
    assert summary_line(out) == "cmdb import did: 9 added, 0 changed, 0 removed, 0 unchanged"
    assert sorted(line[2:] for line in out.splitlines()[:-1]) == EXAMPLE_NAMES
    assert all(line.startswith("+ ") for line in out.splitlines()[:-1])

    exported = cli.ok("cmdb", "export")
    doc = json.loads(exported)
    assert [c["name"] for c in doc["cis"]] == EXAMPLE_NAMES
    same_cis(yaml.safe_load(PLATFORM_YAML.read_text(encoding="utf-8")), doc)

    again = cli.cwd / "export.json"
    again.write_bytes(exported.encode("utf-8"))
    out = imported(cli, again, "--prune")
    assert out == "cmdb import did: 0 added, 0 changed, 0 removed, 9 unchanged\n"
    assert cli.ok("cmdb", "export") == exported
    events = [e for e in cli.events() if e["action"] == "cmdb_imported"]
    assert len(events) == 1 and events[0]["actor"] == "importer" and events[0]["details"]["added"] == 9


def test_the_platform_yaml_and_the_example_json_are_the_same_cmdb_apart_from_attributes(cli: Cli) -> None:
    imported(cli, PLATFORM_YAML)
    out = cli.ok("cmdb", "import", str(EXAMPLE), "--dry-run", "--json")
    summary = json.loads(out)
    assert summary["added"] == [] and summary["removed"] == []
    assert {c["name"]: c["fields"] for c in summary["changed"]} == {
        "postgres-main": ["attributes"],
        "redis-cache": ["attributes"],
        "youtube-ingestion": ["attributes"],
        "youtube-data-api": ["attributes"],
    }


def test_the_kubernetes_listing_imports_and_impact_follows_selectors(cli: Cli) -> None:
    out = imported(cli, KUBERNETES)
    assert summary_line(out) == "cmdb import did: 17 added, 0 changed, 0 removed, 0 unchanged"
    again = imported(cli, KUBERNETES, "--format", "kubernetes")
    assert summary_line(again) == "cmdb import did: 0 added, 0 changed, 0 removed, 17 unchanged"
    copy = cli.cwd / "listing.txt"  # no telling extension: detected by its apiVersion
    copy.write_bytes(KUBERNETES.read_bytes())
    assert summary_line(imported(cli, copy)).endswith("17 unchanged")

    found = {
        r["name"]: r
        for r in json.loads(cli.ok("cmdb", "impact", "deploy/cortex/youtube-ingestion", "--json"))
    }
    # the cortex-workers service selects app.kubernetes.io/component=worker: both worker deployments
    assert set(found) == {
        "deploy/cortex/youtube-ingestion",
        "svc/cortex/youtube-ingestion",
        "svc/cortex/cortex-workers",
    }
    assert found["svc/cortex/cortex-workers"]["path"] == (
        "svc/cortex/cortex-workers → depends on deploy/cortex/youtube-ingestion"
    )
    found = {r["name"]: r for r in json.loads(cli.ok("cmdb", "impact", "svc/cortex/cortex-chat", "--json"))}
    assert (
        found["ing/cortex/cortex-public"]["path"]
        == "ing/cortex/cortex-public → depends on svc/cortex/cortex-chat"
    )
    chat = json.loads(cli.ok("cmdb", "impact", "deploy/cortex/cortex-chat", "--json"))
    assert [(r["depth"], r["name"]) for r in chat] == [
        (0, "deploy/cortex/cortex-chat"),
        (1, "svc/cortex/cortex-chat"),
        (2, "ing/cortex/cortex-public"),
    ]


def test_a_dry_run_says_what_it_would_do_and_writes_nothing(cli: Cli) -> None:
    res = cli("cmdb", "import", str(EXAMPLE), "--dry-run", user="importer")
    assert res.code == 0, res.err
    assert summary_line(res.out) == "cmdb import would: 9 added, 0 changed, 0 removed, 0 unchanged (dry run)"
    assert written(cli) == (0, 0, 0)
    summary = json.loads(cli.ok("cmdb", "import", str(EXAMPLE), "--dry-run", "--json"))
    assert summary["dry_run"] is True and sorted(summary["added"]) == EXAMPLE_NAMES
    assert written(cli) == (0, 0, 0)
    assert cli.ok("cmdb", "export") == '{"cis": []}\n'


def test_prune_removes_and_only_with_prune(cli: Cli) -> None:
    imported(cli, EXAMPLE)
    smaller = [
        c for c in json.loads(EXAMPLE.read_text(encoding="utf-8"))["cis"] if c["name"] != "public-ingress"
    ]
    path = cli.cwd / "smaller.json"
    path.write_text(json.dumps({"cis": smaller}), encoding="utf-8")

    assert summary_line(imported(cli, path)).endswith("0 added, 0 changed, 0 removed, 8 unchanged")
    assert written(cli)[0] == 9
    before = written(cli)
    out = imported(cli, path, "--prune", "--dry-run")
    assert out.splitlines() == [
        "- public-ingress",
        "cmdb import would: 0 added, 0 changed, 1 removed, 8 unchanged (dry run)",
    ]
    assert written(cli) == before

    out = imported(cli, path, "--prune")
    assert out.splitlines() == [
        "- public-ingress",
        "cmdb import did: 0 added, 0 changed, 1 removed, 8 unchanged",
    ]
    assert written(cli)[:2] == (8, before[1] - 2)
    assert cli("cmdb", "show", "public-ingress").code == 3
    last = cli.events()[-1]
    assert (
        last["action"] == "cmdb_imported"
        and last["details"]["removed"] == 1
        and last["details"]["prune"] is True
    )
    cli.ok("audit", "verify")


def test_a_changed_ci_is_listed_with_its_fields(cli: Cli) -> None:
    imported(cli, EXAMPLE)
    cis = json.loads(EXAMPLE.read_text(encoding="utf-8"))["cis"]
    cis = [{**c, "tier": 1, "owner": "cache-team"} if c["name"] == "redis-cache" else c for c in cis]
    path = cli.cwd / "changed.json"
    path.write_text(json.dumps({"cis": cis}), encoding="utf-8")
    assert imported(cli, path).splitlines() == [
        "~ redis-cache (tier, owner)",
        "cmdb import did: 0 added, 1 changed, 0 removed, 8 unchanged",
    ]


# --- queries -----------------------------------------------------------------------------------------


def test_show_list_impact_graph(cli: Cli) -> None:
    imported(cli, EXAMPLE)
    text = cli.ok("cmdb", "show", "redis-cache").splitlines()
    assert text[0] == "redis-cache: queue, tier 2, data none, owner platform-team, environment production"
    assert text[1:] == [
        "  runs on k8s-prod",
        "  cortex-chat depends on it",
        "  cortex-workers depends on it",
        "  youtube-ingestion depends on it",
    ]
    shown = json.loads(cli.ok("cmdb", "show", "Redis-Cache", "--json"))
    assert (shown["name"], shown["type"], shown["tier"]) == ("redis-cache", "queue", 2)
    assert shown["dependencies"] == [{"kind": "runs_on", "name": "k8s-prod"}]
    assert [d["name"] for d in shown["dependents"]] == ["cortex-chat", "cortex-workers", "youtube-ingestion"]

    assert cli.ok("cmdb", "list", "--type", "database", "--tier", "0") == (
        "postgres-main  database  tier 0  data-team  phi\n"
    )
    listed = json.loads(cli.ok("cmdb", "list", "--tier", "0", "--json"))
    assert [r["name"] for r in listed] == ["cortex-chat", "db-host-1", "postgres-main"]
    assert json.loads(cli.ok("cmdb", "list", "--owner", "nobody", "--json")) == []
    assert [r["name"] for r in json.loads(cli.ok("cmdb", "list", "--json"))] == EXAMPLE_NAMES

    out = cli.ok("cmdb", "impact", "redis-cache", "youtube-data-api").splitlines()
    assert out[-1] == "blast radius: 6 CI(s), CMDB_MAX_DEPTH 10"
    assert (
        "2  public-ingress  tier 1  none  public-ingress → depends on cortex-chat → depends on redis-cache"
        in out
    )
    both = json.loads(cli.ok("cmdb", "impact", "redis-cache", "youtube-data-api", "--json"))
    assert [(r["depth"], r["name"]) for r in both] == [
        (0, "redis-cache"),
        (0, "youtube-data-api"),
        (1, "cortex-chat"),
        (1, "cortex-workers"),
        (1, "youtube-ingestion"),
        (2, "public-ingress"),
    ]
    shallow = json.loads(cli.ok("cmdb", "impact", "redis-cache", "--json", env={"CMDB_MAX_DEPTH": "1"}))
    assert "public-ingress" not in {r["name"] for r in shallow}

    dot = cli.ok("cmdb", "graph", "redis-cache", "--format", "dot")
    assert dot.startswith("digraph cmdb {\n") and dot.endswith("}\n")
    assert '[label="redis-cache", penwidth=3];' in dot and '[label="public-ingress"];' in dot
    assert dot == cli.ok("cmdb", "graph", "redis-cache")  # dot is the default
    mermaid = cli.ok("cmdb", "graph", "redis-cache", "--format", "mermaid")
    assert mermaid.startswith("flowchart LR\n") and '["k8s-prod"]' in mermaid
    assert mermaid.count("-->|") == dot.count(" -> ")
    assert written(cli)[2] == 1  # reading wrote nothing


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["cmdb", "show", "nope"], 3, ["nope"]),
        (["cmdb", "impact", "redis-cache", "nope"], 3, ["nope"]),
        (["cmdb", "graph", "nope"], 3, ["nope"]),
        (["cmdb", "list", "--tier", "7"], 2, ["tier", "0, 1, 2, 3"]),
        (["cmdb", "list", "--type", "blob"], 2, ["type", "service"]),
        (["cmdb", "graph", "redis-cache", "--format", "svg"], 2, ["svg"]),
        (["cmdb", "import", str(EXAMPLE), "--format", "xml"], 2, ["xml"]),
    ],
)
def test_queries_refused(cli: Cli, args: list[str], code: int, words: list[str]) -> None:
    imported(cli, EXAMPLE)
    before = written(cli)
    res = cli(*args)
    assert res.code == code, res.err
    assert res.out == "" and len(res.err.splitlines()) == 1 and "Traceback" not in res.err
    for word in words:
        assert word in res.err
    assert written(cli) == before


# --- bad files: one line, exit 2, nothing written ------------------------------------------------------


def _big(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: no 65 MiB written to disk


BAD_FILES: list[tuple[str, str, bytes | Path | Callable[[Path], None], list[str]]] = [
    (
        "unknown type",
        "a.yaml",
        b"cis:\n  - {name: a, type: mainframe}\n",
        ["'mainframe'", "service, database"],
    ),
    ("tier 7", "a.yaml", b"cis:\n  - {name: a, type: queue, tier: 7}\n", ["tier", "7", "0, 1, 2, 3"]),
    (
        "missing CI",
        "a.json",
        b'{"cis": [{"name": "a", "type": "service", "depends_on": ["ghost"]}]}',
        ["'a'", "depends_on", "'ghost'"],
    ),
    (
        "duplicate by case",
        "a.yaml",
        b"cis:\n  - {name: Redis, type: queue}\n  - {name: redis, type: queue}\n",
        ["'Redis'", "'redis'"],
    ),
    ("YAML bomb", "bomb.yaml", FIXTURES / "cmdb" / "bomb.yaml", ["alias"]),
    ("YAML anchor", "anchored.yaml", FIXTURES / "cmdb" / "anchored.yaml", ["alias"]),
    ("deep YAML", "deep.yaml", b"cis: " + b"[" * 5000 + b"]" * 5000 + b"\n", ["nested"]),
    ("deep JSON", "deep.json", b'{"cis": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ["nested"]),
    ("over 64 MiB", "big.json", _big, ["64 MiB"]),
    ("not UTF-8", "a.json", b'{"cis": [{"name": "caf\xe9", "type": "service"}]}', ["UTF-8"]),
    ("invalid JSON", "a.json", b'{"cis": [', ["JSON"]),
    ("invalid YAML", "a.yaml", b"cis: [unclosed\n", ["YAML"]),
    ("cis not a list", "a.json", b'{"cis": 5}', ["cis"]),
    ("a list", "a.json", b"[]", ["cis"]),
    ("NaN", "a.json", b'{"cis": [{"name": "a", "type": "queue", "weight": NaN}]}', ["NaN"]),
    ("Infinity", "a.json", b'{"cis": [{"name": "a", "type": "queue", "weight": 1e999}]}', ["finite"]),
    ("unknown top-level key", "a.json", b'{"cis": [], "relations": []}', ["relations"]),
    ("nested attribute", "a.json", b'{"cis": [{"name": "a", "type": "queue", "meta": {"x": 1}}]}', ["meta"]),
    ("bad name", "a.json", b'{"cis": [{"name": "a;rm -rf", "type": "queue"}]}', ["name"]),
    ("owner a list", "a.yaml", b"cis:\n  - {name: a, type: queue, owner: [x, y]}\n", ["owner"]),
    (
        "bad Kubernetes",
        "k.json",
        b'{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Deployment"}]}',
        ["items[0]"],
    ),
    ("no such file", "missing.json", b"", ["missing.json"]),
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, cli_factory: Callable[[Path], Cli]) -> Cli:
    """One SQLite store holding the example CMDB (so a refused import has something to spoil)."""
    cli = cli_factory(tmp_path_factory.mktemp("cmdb-bad-input"))
    imported(cli, EXAMPLE)
    return cli


@pytest.mark.parametrize(
    ("name", "content", "words"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_a_bad_file_is_one_line_exit_2_and_nothing_written(
    seeded: Cli, tmp_path: Path, name: str, content: bytes | Path | Callable[[Path], None], words: list[str]
) -> None:
    cli = seeded
    path = tmp_path / name
    if isinstance(content, bytes):
        if name != "missing.json":
            path.write_bytes(content)
    elif isinstance(content, Path):
        path.write_bytes(content.read_bytes())
    else:
        content(path)
    before, exported = written(cli), cli.ok("cmdb", "export")
    for extra in ([], ["--prune"], ["--dry-run"]):
        res = cli("cmdb", "import", str(path), *extra, user="importer")
        assert res.code == 2, (res.code, res.err[-500:])
        assert res.out == ""
        assert len(res.err.splitlines()) == 1, res.err[-500:]
        assert res.err.startswith("cortex-change: ") and "Traceback" not in res.err
        for word in words:
            assert word in res.err, (word, res.err)
    assert written(cli) == before
    assert cli.ok("cmdb", "export") == exported
    if name == "big.json":
        assert os.stat(path).st_blocks * 512 < 1024 * 1024  # the file stayed sparse
