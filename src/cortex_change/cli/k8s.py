"""`cortex-change k8s watch`: cluster events as observations; crash loops propose a restart
(docs/self-healing.md). On the local store."""

from __future__ import annotations

import sys

from .exits import EXIT_OK
from .operations import _who
from .render import escape

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse

    from ..services.context import Context


def _say(line: str) -> None:
    print(escape(line), flush=True)


def _warn(line: str) -> None:
    print(escape(line), file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the watch as Ctrl-C does: kubectl stopped, exit 0


def cmd_k8s_watch(ctx: Context, a: argparse.Namespace) -> int:
    """Watch until the stream ends or Ctrl-C (exit 0); kubectl failing is one line, exit 5."""
    import signal
    from datetime import timedelta

    from ..domain.plan import duration
    from ..services.k8s_watch import watch

    since = timedelta(seconds=duration("--since", a.since)) if a.since else timedelta(0)
    signal.signal(signal.SIGTERM, _interrupt)
    watch(ctx, kubectl=a.kubectl, context=a.context, actor=_who(a), since=since, say=_say, warn=_warn)
    return EXIT_OK
