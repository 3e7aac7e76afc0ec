"""`cortex-change risk train|status|explain|backtest`: the learned risk model (on the local store;
docs/risk-model.md)."""

from __future__ import annotations

import sys

from .exits import EXIT_OK
from .render import as_json, escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from ..services.context import Context


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _scores(name: str, s: dict[str, Any], width: int = 6) -> str:
    return (
        f"{name:<{width}} n={s['count']:<5} failures={s['failures']:<4} accuracy={_pct(s['accuracy'])} "
        f"FPR={_pct(s['false_positive_rate'])} precision={_pct(s['precision'])} "
        f"recall={_pct(s['recall'])} Brier={_num(s['brier'])} AUC={_num(s['auc'])}"
    )


def _candidates(chosen: str | None, candidates: dict[str, Any]) -> list[str]:
    """Each candidate's line on the newest fifth, the chosen one marked."""
    width = max((len(n) for n in candidates), default=0) + 2
    return [_scores(("* " if n == chosen else "  ") + n, s, width) for n, s in candidates.items()]


def _reliability(s: dict[str, Any]) -> list[str]:
    lines = ["  P(failure)   changes  predicted  observed"]
    for b in s["reliability"]:
        span = f"{b['from']:.1f}–{b['to']:.1f}"
        lines.append(f"  {span}    {b['count']:>7}  {_pct(b['predicted']):>9}  {_pct(b['observed']):>8}")
    return lines


def cmd_risk_train(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.risk_model import train

    card = train(ctx, days=a.days)
    if a.json:
        print(as_json(card))
        return EXIT_OK
    print(
        f"model v{card['version']}: {card['samples']} closed changes "
        f"({card['window']['from']} to {card['window']['to']}), {card['failures']} failed"
    )
    held = card["holdout"]
    print(f"chosen: {card['chosen']}, by {escape(card['choice'])}")
    print(f"candidates on the newest {held['samples']} (trained on the {held['trained_on']} before them):")
    for line in _candidates(card["chosen"], card["candidates"]):
        print(line)
    return EXIT_OK


def cmd_risk_status(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.risk_model import status

    state = status(ctx)
    if a.json:
        print(as_json(state))
    elif state["model"] is None:
        print(escape(state["reason"]))
    else:
        card = state["model"]
        print(
            f"model v{card['version']} trained {card['trained_at']} on {card['samples']} changes "
            f"({card['window']['from']} to {card['window']['to']}; {card['failure_share']:.1%} failed); "
            f"RISK_MODEL={state['mode']}, ML_PREDICTION={'true' if state['shown'] else 'false'}"
        )
        print(_scores("newest", card["holdout"]))
        print(escape(card["algorithm"]))
        for line in _candidates(card.get("chosen"), card.get("candidates", {})):
            print(line)
    return EXIT_OK


def cmd_risk_explain(ctx: Context, a: argparse.Namespace) -> int:
    from ..services.risk_model import explain

    out = explain(ctx, change_id=a.change_id)
    if a.json:
        print(as_json(out))
        return EXIT_OK
    predicted = out["prediction"]
    if predicted is None:
        print(f"{out['change_id']}: rules score {out['rules_score']}; no prediction was recorded")
    else:
        print(
            f"{out['change_id']}: rules score {out['rules_score']}; P(failure) "
            f"{predicted['probability']:.1%} (model v{predicted['model_version']})"
        )
    for part in out.get("contributions", [])[: a.top]:
        print(escape(f"  {part['log_odds']:+.3f}  {part['feature']} = {part['value']:g}"))
    if "contributions" not in out:
        print("no model trained: risk train", file=sys.stderr)
    return EXIT_OK


def cmd_risk_backtest(ctx: Context, a: argparse.Namespace) -> int:
    from ..domain.schedule import instant
    from ..services.risk_model import backtest

    out = backtest(ctx, start=instant("from", a.from_), end=instant("to", a.to))
    if a.json:
        print(as_json(out))
        return EXIT_OK
    trained, tested = out["trained_on"], out["tested_on"]
    print(f"trained on {trained} changes closed before --from; tested on {tested} filed in the period")
    chosen, picked = out["chosen"], out["selection"]
    n, before = picked["samples"], picked["trained_on"]
    print(f"chosen: {chosen}, on the newest {n} of them (trained on the {before} before)")
    for line in _candidates(chosen, picked["candidates"]):
        print(line)
    print(_scores("model", out["model"]))
    print(_scores("rules", out["rules"]) + " (score / 100 as the probability)")
    print("reliability (model):")
    for line in _reliability(out["model"]):
        print(line)
    return EXIT_OK
