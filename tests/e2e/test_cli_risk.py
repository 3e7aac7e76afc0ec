"""`cortex-change risk …` as a user runs it, on a generated history (tests/risk_history.py):
status before and after training, explain, a backtest, and bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from cortex_change.services.context import open_context
from risk_history import generate
from support import TEST_IMPLEMENTERS, FakeClock

if TYPE_CHECKING:
    from conftest import Cli

pytest.importorskip("sklearn", reason="the `ml` extra (scikit-learn) trains the model")


def test_train_status_explain_and_backtest_from_the_cli(cli: Cli, clock: FakeClock) -> None:
    ctx = open_context(env={"CORTEX_CHANGE_DB": str(cli.db), "IMPLEMENTERS": TEST_IMPLEMENTERS}, clock=clock)
    try:
        ids = generate(ctx, clock, 260)
    finally:
        ctx.close()
    before = cli.ok("risk", "status")
    assert before.startswith("no model trained: the rules alone assess (260 closed change(s)")
    trained = cli.ok("risk", "train")
    assert trained.startswith("model v1: 260 closed changes")
    card = json.loads(cli.ok("risk", "status", "--json"))["model"]
    assert (card["version"], card["samples"]) == (1, 260) and card["holdout"]["auc"] is not None
    lines = trained.splitlines()
    assert lines[1] == f"chosen: {card['chosen']}, by {card['choice']}"
    assert lines[2] == "candidates on the newest 52 (trained on the 208 before them):"
    marked = [line.split()[1] for line in lines[3:] if line.startswith("* ")]
    assert marked == [card["chosen"]] and len(lines) == 6  # one line per candidate, the winner marked
    status = cli.ok("risk", "status").splitlines()
    assert status[1].startswith("newest n=52") and status[2] == card["algorithm"]
    assert [line.split()[-1] for line in status[3:]] == [line.split()[-1] for line in lines[3:]]  # AUCs

    explained = cli.ok("risk", "explain", ids[-1], "--top", "3").splitlines()
    assert explained[0].startswith(f"{ids[-1]}: rules score ")
    assert len(explained) == 4 and all(line.startswith("  ") for line in explained[1:])

    a, b = (clock().date() - timedelta(days=8)).isoformat(), clock().date().isoformat()
    refused = cli("risk", "backtest", "--from", a, "--to", b)
    assert refused.code == 2 and "ML_MIN_SAMPLES=200" in refused.err  # too little before A
    low = {"ML_MIN_SAMPLES": "100"}
    out = json.loads(cli.ok("risk", "backtest", "--from", a, "--to", b, "--json", env=low))
    assert out["trained_on"] > 100 and out["tested_on"] > 0
    assert set(out["model"]) >= {"accuracy", "false_positive_rate", "brier", "auc", "reliability"}
    text = cli.ok("risk", "backtest", "--from", a, "--to", b, env=low)
    assert "model  n=" in text and "rules  n=" in text and "reliability (model):" in text
    assert f"chosen: {out['chosen']}, on the newest {out['selection']['samples']} of them" in text
    assert {line.split()[1] for line in text.splitlines() if line.startswith("* ")} == {out["chosen"]}

    bad = cli("risk", "backtest", "--from", "last tuesday", "--to", b)
    assert bad.code == 2 and bad.err.startswith("cortex-change: from: 'last tuesday' is not an ISO 8601 time")
    assert cli("risk", "backtest", "--from", b, "--to", a).code == 2
    assert cli("risk", "explain", "RFC-20260101000000-abcdef").code == 3
