"""`metrics push` to a real Prometheus Pushgateway (the Debian binary, started per module)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cortex_change.services import telemetry
from cortex_change.services.context import open_context
from support import free_port

if TYPE_CHECKING:
    from conftest import Cli

BINARY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


class Gateway(NamedTuple):
    url: str

    def ours(self) -> Samples:
        """The gateway's samples pushed by job cortex-change from this host, without those labels."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        out: Samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = dict(s.labels)
                group = (labels.pop("job", None), labels.pop("instance", None))
                if group == ("cortex-change", socket.gethostname()) and s.name.startswith("cortex_change_"):
                    out.setdefault(s.name, {})[tuple(sorted(labels.items()))] = s.value
        return out


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A real Pushgateway on a free port (skips, saying why, when the binary is not installed)."""
    if not os.access(BINARY, os.X_OK):
        pytest.skip(
            "prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway; "
            "`make unit` installs it when apt is available): the push tests cannot run"
        )
    port = free_port()
    log = tmp_path_factory.mktemp("pushgateway") / "pushgateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [BINARY, f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus-pushgateway exited {proc.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus-pushgateway did not get ready in 30 s: {log.read_text()}")
            time.sleep(0.05)
        yield Gateway(url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def by(samples: dict[tuple[tuple[str, str], ...], float], label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in samples.items()}


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cortex-change: "), err
    return lines[0]


def test_push_delivers_the_store_figures_and_todays_kpis(cli: Cli, gateway: Gateway) -> None:
    closed = cli.create("normal", "documentation", "Docs", "--impact", "low")
    cli.ok("assess", closed)
    cli.ok("implement", closed, "--as", "ops")
    cli.ok("close", closed, "successful", "--as", "ops")
    cli.create("normal", "deployment", "Still pending")

    res = cli("metrics", "push", env={"PROMETHEUS_PUSHGATEWAY": gateway.url})
    assert res.code == 0, res.err
    assert res.out.strip() == (
        f"pushed metrics to {gateway.url} (job cortex-change, instance {socket.gethostname()})"
    )

    m = gateway.ours()
    states = by(m["cortex_change_changes"], "state")
    assert states["closed"] == 1 and states["pending_assessment"] == 1 and states["rejected"] == 0
    events = cli.events()
    actions = by(m["cortex_change_transitions_total"], "action")
    assert actions == {a: float(sum(e["action"] == a for e in events)) for a in {e["action"] for e in events}}
    assert m["cortex_change_audit_chain_length"][()] == len(events)
    assert m["cortex_change_approval_latency_seconds_count"][()] == 1
    assert by(m["cortex_change_approval_latency_seconds_bucket"], "le")["+Inf"] == 1
    assert m["cortex_change_incidents_open"][()] == 0

    report = cli.ok("metrics", "today", "--json")
    kpis = by(m["cortex_change_kpi"], "kpi")
    assert kpis["change_success_rate"] == 100.0
    assert "unauthorized_changes" not in kpis  # no observation source: no value (issue 15)
    assert kpis["emergency_change_rate"] == 0
    assert kpis["deployment_frequency"] == 1.0
    assert "mtta" in kpis and "risk_prediction_accuracy" not in kpis  # no value: no sample
    assert '"change_success_rate"' in report


def test_a_second_push_replaces_the_first(cli: Cli, gateway: Gateway) -> None:
    env = {"PROMETHEUS_PUSHGATEWAY": gateway.url}
    cli.create("normal", "deployment", "One")
    cli.ok("metrics", "push", env=env)
    assert by(gateway.ours()["cortex_change_changes"], "state")["pending_assessment"] == 1
    cli.create("normal", "deployment", "Two")
    cli.ok("metrics", "push", env=env)
    assert by(gateway.ours()["cortex_change_changes"], "state")["pending_assessment"] == 2


def test_the_worker_entry_point_pushes_in_process(
    cli: Cli, gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli.create("emergency", "security", "Patch")
    ctx = open_context({"CORTEX_CHANGE_DB": str(cli.db), "PROMETHEUS_PUSHGATEWAY": gateway.url})
    try:
        assert telemetry.push(ctx).startswith(f"pushed metrics to {gateway.url}")
    finally:
        ctx.close()
    assert by(gateway.ours()["cortex_change_kpi"], "kpi")["emergency_change_rate"] == 100.0


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"METRICS_BACKEND": "none"}, "METRICS_BACKEND"),
        ({"METRICS_ENABLED": "false"}, "METRICS_ENABLED"),
        ({"PROMETHEUS_PUSHGATEWAY": ""}, "PROMETHEUS_PUSHGATEWAY"),
        ({"CORTEX_CHANGE_URL": "http://127.0.0.1:9", "CORTEX_CHANGE_TOKEN": "cc_x"}, "CORTEX_CHANGE_URL"),
    ],
)
def test_a_configuration_that_forbids_pushing_exits_2_naming_the_key(
    cli: Cli, env: dict[str, str], key: str
) -> None:
    cli.create("normal", "deployment", "Deploy")  # metrics only read: the store must exist
    res = cli("metrics", "push", env=env)
    assert res.code == 2, res
    assert key in one_error_line(res.err)
    assert res.out == ""


def test_an_unreachable_gateway_exits_5(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cli.create("normal", "deployment", "Deploy")  # metrics only read: the store must exist
    res = cli("metrics", "push", env={"PROMETHEUS_PUSHGATEWAY": url})
    assert res.code == 5, res
    line = one_error_line(res.err)
    assert "Pushgateway" in line and url in line
    assert res.out == ""


def test_periods_are_still_periods(cli: Cli) -> None:
    """`push` is the only special word: the report commands keep working."""
    cli.create("normal", "deployment", "Deploy")  # metrics only read: the store must exist
    assert '"label": "today"' in cli.ok("metrics", "--json")
    assert "Change metrics: week" in cli.ok("metrics", "week")
    res = cli("metrics", "pushed")
    assert res.code == 2 and "period" in one_error_line(res.err).lower()
