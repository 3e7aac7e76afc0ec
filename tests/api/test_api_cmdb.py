"""The CMDB over the API: /cis, /cis/{name}, /cis/{name}/impact, on both backends."""

from __future__ import annotations

from pathlib import Path

from api.conftest import Api

ROOT = Path(__file__).resolve().parents[2]


def _imported(api: Api) -> None:
    for source in (
        ROOT / "examples" / "cortex-platform-cmdb.json",
        ROOT / "tests/fixtures/kubernetes/cortex-platform.json",
    ):
        ran = api.cli("cmdb", "import", str(source), "--as", "ops-lead")
        assert ran.code == 0, ran.err


def test_cis_list_show_and_impact(shared_api: Api) -> None:
    _imported(shared_api)
    c = shared_api.as_("alice")
    tier0 = c.get("/cis", params={"tier": 0}).json()
    assert [ci["name"] for ci in tier0] == [
        "cortex-chat",
        "db-host-1",
        "postgres-main",
        "sts/cortex/postgres-main",
        "svc/cortex/postgres-main",
    ]
    assert [ci["data"] for ci in c.get("/cis", params={"type": "database", "tier": 0}).json()] == ["phi"]
    shown = c.get("/cis/cortex-chat").json()
    assert shown["dependencies"] == [
        {"kind": "depends_on", "name": "postgres-main"},
        {"kind": "depends_on", "name": "redis-cache"},
        {"kind": "runs_on", "name": "k8s-prod"},
    ]
    assert shown["dependents"] == [{"kind": "depends_on", "name": "public-ingress"}]
    assert shown["attributes"] == {"slo": "99.95%"}
    radius = c.get("/cis/redis-cache/impact").json()
    assert [(r["name"], r["depth"]) for r in radius] == [
        ("redis-cache", 0),
        ("cortex-chat", 1),
        ("cortex-workers", 1),
        ("youtube-ingestion", 1),
        ("public-ingress", 2),
    ]
    assert radius[-1]["path"] == "public-ingress → depends on cortex-chat → depends on redis-cache"
    k8s = c.get("/cis/deploy/cortex/cortex-chat/impact").json()  # names with slashes
    assert {r["name"] for r in k8s} >= {"deploy/cortex/cortex-chat", "svc/cortex/cortex-chat"}
    assert c.get("/cis/svc/cortex/cortex-chat").json()["type"] == "network"


def test_cis_refusals(shared_api: Api) -> None:
    c = shared_api.as_("alice")
    missing = c.get("/cis/no-such-ci")
    assert missing.status_code == 404 and "no CI 'no-such-ci'" in missing.json()["detail"]
    assert c.get("/cis/no-such-ci/impact").status_code == 404
    bad = c.get("/cis", params={"type": "mainframe"})
    assert bad.status_code == 422 and "mainframe" in bad.json()["detail"]
    assert c.get("/cis", params={"tier": 7}).status_code == 422
    assert c.get("/cis", params={"colour": "red"}).status_code == 422
    anonymous = shared_api.server.url + "/api/v1/cis"
    import httpx

    assert httpx.get(anonymous).status_code == 401
