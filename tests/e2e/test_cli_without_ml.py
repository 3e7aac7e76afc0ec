"""Without the `ml` extra (no scikit-learn; `make without-ml` runs this in such an environment):
assessments still record features, the model's doors say what to install, and everything that
needs no training — status, explain, policy simulation, metrics — works."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cortex_change.services.context import open_context
from risk_history import generate
from support import TEST_IMPLEMENTERS, FakeClock

if TYPE_CHECKING:
    from conftest import Cli

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is not None,
    reason="scikit-learn is installed: `make without-ml` runs this where it is not",
)
INSTALL = "needs the sklearn package: pip install 'cortex-change[ml]'"


def test_the_rules_assess_and_the_model_says_what_to_install(
    cli: Cli, clock: FakeClock, tmp_path: Path
) -> None:
    cli.env.update({"IMPLEMENTERS": TEST_IMPLEMENTERS, "ML_MIN_SAMPLES": "20"})
    ctx = open_context(env={"CORTEX_CHANGE_DB": str(cli.db), "IMPLEMENTERS": TEST_IMPLEMENTERS}, clock=clock)
    try:
        ids = generate(ctx, clock, 60, seed=7)
    finally:
        ctx.close()
    shown = cli.show(ids[-1])["assessment"]
    assert shown["features"]["rules_score"] == shown["score"] and shown["prediction"] is None

    assert cli.ok("risk", "status").startswith(
        "no model trained: the rules alone assess (60 closed change(s)"
    )
    middle = cli.show(ids[40])["metrics"]["created_at"][:10]  # about 40 changes before it, 20 after
    for args in (("risk", "train"), ("risk", "backtest", "--from", middle, "--to", "2026-04-01")):
        r = cli(*args)
        assert r.code == 5 and r.err.count("\n") == 1 and INSTALL in r.err, r.err
    explained = cli.ok("risk", "explain", ids[-1])
    assert explained.startswith(f"{ids[-1]}: rules score ")

    candidate = tmp_path / "c.toml"
    candidate.write_text("auto_approve_threshold = 45\nrisk_threshold_low = 46\n")
    out = json.loads(
        cli.ok("policy", "simulate", "--config", str(candidate), "--period", "2026-Q1", "--json")
    )
    assert out["replayed"] == 60 and out["unlike_recorded"] == 0
