"""`cortex-change k8s watch` with a fake `kubectl` (a small script this test writes) as a real
subprocess, on both backends: the recorded-shape event stream — concatenated pretty-printed JSON,
written in odd-sized pieces — becomes observations (a rollout matched to the change being carried
out, a scaling nobody filed: unauthorized) and one proposed worker-restart change for a crash loop;
EOF ends cleanly, Ctrl-C too, a kubectl that dies is one line and exit 5, the switch off exit 1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support import query

if TYPE_CHECKING:
    from conftest import Cli


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def event(
    kind: str,
    name: str,
    reason: str,
    message: str,
    *,
    ns: str = "shop",
    at: datetime | None = None,
    count: int = 1,
) -> dict[str, Any]:
    """A core/v1 Event as `kubectl get events -o json` prints it."""
    at = at or _now()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.17a", "namespace": ns, "uid": f"uid-{name}-{reason}-{count}"},
        "involvedObject": {"apiVersion": "apps/v1", "kind": kind, "name": name, "namespace": ns},
        "reason": reason,
        "message": message,
        "source": {"component": "deployment-controller"},
        "firstTimestamp": _stamp(at),
        "lastTimestamp": _stamp(at),
        "count": count,
        "type": "Normal" if reason != "BackOff" else "Warning",
    }


def stream() -> list[dict[str, Any]]:
    """The recorded shape, stamped now (after the change being carried out started)."""
    return [
        event("Deployment", "web", "ScalingReplicaSet", "Scaled up replica set web-5d9c6b8f7 to 1 from 0"),
        event("Pod", "web-5d9c6b8f7-x2k4q", "Killing", "Stopping container web"),  # the rollout's own
        event("Deployment", "api", "ScalingReplicaSet", "Scaled up replica set api-6f7d84c9b to 5 from 3"),
        event(
            "Pod", "worker-7c9f6d5b8-x2k4q", "BackOff", "Back-off restarting failed container worker in pod x"
        ),
        event(
            "Pod",
            "worker-7c9f6d5b8-x2k4q",
            "BackOff",
            "Back-off restarting failed container worker in pod x",
            count=2,
        ),
        event(
            "Pod", "worker-7c9f6d5b8-q9z8w", "BackOff", "Back-off restarting failed container worker in pod y"
        ),
        event(
            "Deployment",
            "old",
            "ScalingReplicaSet",
            "Scaled up replica set old-5d9c6b8f7 to 1 from 0",
            at=_now() - timedelta(hours=2),
        ),
        event("Pod", "db-0", "Pulled", "Container image already present on machine"),
    ]


def fake_kubectl(
    folder: Path, events: list[dict[str, Any]], *, code: int = 0, err: str = "", hang: bool = False
) -> Path:
    """An executable `kubectl`: records its argv, prints the events (pretty JSON, one after the
    other, in 7-byte pieces), then exits `code` after writing `err` — or, `hang`, waits forever."""
    text = "".join(json.dumps(e, indent=4) + "\n" for e in events)
    (folder / "stream.json").write_text(text, "utf-8")
    script = folder / "kubectl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys, time\n"
        f"open({str(folder / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"text = open({str(folder / 'stream.json')!r}).read()\n"
        "for i in range(0, len(text), 7):\n"
        "    sys.stdout.write(text[i:i + 7]); sys.stdout.flush()\n"
        f"sys.stderr.write({err!r})\n"
        f"if {hang!r}:\n"
        "    time.sleep(600)\n"
        f"sys.exit({code})\n",
        "utf-8",
    )
    script.chmod(0o755)
    return script


def _carried_out_web(cli: Cli) -> str:
    change_id = cli.create("normal", "deployment", "Deploy web", "--service", "web")
    cli.ok("assess", change_id)
    cli.ok("approve", change_id, "tech-lead", "ok")
    cli.ok("implement", change_id, user="ops")  # a text plan: it waits in implemented
    return change_id


def test_events_become_observations_and_a_crash_loop_proposes_a_restart(cli: Cli, tmp_path: Path) -> None:
    web = _carried_out_web(cli)
    kubectl = fake_kubectl(tmp_path, stream())
    res = cli("k8s", "watch", "--kubectl", str(kubectl), "--context", "prod", "--since", "10m", "--as", "ops")
    assert res.code == 0, (res.out, res.err)
    assert json.loads((tmp_path / "argv.json").read_text()) == [
        "--context",
        "prod",
        "get",
        "events",
        "-A",
        "-w",
        "-o",
        "json",
    ]
    lines = res.out.splitlines()
    assert any(f"rollout of web in shop authorized by {web}" in line for line in lines), res.out
    assert any("UNAUTHORIZED scaling of api in shop" in line for line in lines), res.out
    proposed = [line for line in lines if "proposed restart of deployment worker in shop" in line]
    assert len(proposed) == 1, res.out  # once per workload per the model's window
    assert lines[-1] == "k8s watch: the event stream ended"
    assert res.err == ""

    observed = json.loads(cli.ok("observations", "list", "--json"))
    assert sorted((o["service"], o["change_id"]) for o in observed) == [("api", None), ("web", web)]
    assert all(o["source"] == "kubernetes" for o in observed)
    change_id = proposed[0].split(":")[0]
    doc = cli.show(change_id)
    assert (doc["state"], doc["type"], doc["standard_model"]) == (
        "pending_assessment",
        "standard",
        "worker-restart",
    )
    assert doc["parameters"]["target"] == "worker" and doc["requested_by"] == "ops"
    assert doc["implementation_plan"]["steps"][0]["runbook"] == "kubectl-rollout-restart"

    # Watching again (the same events kept by the cluster): the proposal is not made twice.
    again = cli("k8s", "watch", "--kubectl", str(kubectl), "--since", "10m", "--as", "ops")
    assert again.code == 0 and "proposed" not in again.out
    rows = query(cli.db, "SELECT count(*) FROM changes WHERE standard_model = 'worker-restart'")
    assert rows[0][0] == 1


def test_a_kubectl_that_dies_is_one_line_and_exit_5(cli: Cli, tmp_path: Path) -> None:
    cli.create("normal", "deployment", "Make the store")
    kubectl = fake_kubectl(
        tmp_path, [], code=1, err="error: You must be logged in to the server (Unauthorized)\n"
    )
    res = cli("k8s", "watch", "--kubectl", str(kubectl), "--as", "ops")
    assert res.code == 5, (res.out, res.err)
    assert res.err.count("\n") == 1 and "Unauthorized" in res.err and "exited 1" in res.err
    missing = cli("k8s", "watch", "--kubectl", str(tmp_path / "no-such-kubectl"), "--as", "ops")
    assert missing.code == 5 and missing.err.count("\n") == 1 and "cannot run" in missing.err


def test_switched_off_or_not_an_implementer_is_refused_with_one_line(cli: Cli, tmp_path: Path) -> None:
    kubectl = fake_kubectl(tmp_path, stream())
    off = cli(
        "k8s", "watch", "--kubectl", str(kubectl), "--as", "ops", env={"K8S_EVENT_INTEGRATION": "false"}
    )
    assert off.code == 1 and off.err.count("\n") == 1 and "K8S_EVENT_INTEGRATION=false" in off.err
    nobody = cli("k8s", "watch", "--kubectl", str(kubectl), "--as", "mallory")
    assert nobody.code == 1 and nobody.err.count("\n") == 1
    assert not (tmp_path / "argv.json").exists()  # kubectl never ran


def test_ctrl_c_ends_the_watch_cleanly(cli: Cli, tmp_path: Path) -> None:
    kubectl = fake_kubectl(tmp_path, stream()[2:3], hang=True)
    proc = subprocess.Popen(
        cli.command("k8s", "watch", "--kubectl", str(kubectl), "--since", "1h", "--as", "ops"),
        env=cli.environment(),
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the scaling of api: the watch is running
    assert "UNAUTHORIZED scaling of api" in first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip().endswith("k8s watch: stopped") and err == ""
