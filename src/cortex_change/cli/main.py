"""`cortex-change`: run one command; every error is one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..domain.errors import CortexError, StoreError
from .exits import EXIT_OK, EXIT_STORE, for_error
from .parser import build_parser, command_word
from .registry import LOCAL_ONLY, needs_no_store, reads_only

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..services.context import Context


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error is one line on stderr and an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(command_word(argv)).parse_args(argv)
    env = dict(os.environ)
    if args.db is not None:  # given empty, it is refused as the empty variable is
        env["CORTEX_CHANGE_DB"] = args.db
    args.env = env
    ctx: Context | None = None
    try:
        target, ctx = _target(args, env)
        if ctx is not None and not ctx.settings["CHANGE_MGMT_ENABLED"]:
            from .render import unmanaged

            unmanaged()  # before the command runs: said even when it fails
        code: int = args.handler(target, args)
        return code
    except CortexError as exc:
        from ..redaction import redact
        from .render import escape

        message = redact(" ".join(str(exc).split("\n")), env.get("CORTEX_CHANGE_DB", ""))  # no password
        message = escape(message)  # it may echo the input
        print(f"cortex-change: {message}", file=sys.stderr)
        if ctx is not None and not isinstance(exc, StoreError):
            ctx.db.discard()  # a store this command created and wrote nothing to is taken back
        return for_error(exc)
    except BrokenPipeError:  # e.g. `list | head`
        sys.stderr.close()  # nothing more can be written; keep Python from complaining at exit
        return EXIT_OK
    except OSError as exc:  # e.g. stdout is a full disk
        print(f"cortex-change: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_STORE
    finally:
        if ctx is not None:
            ctx.close()


def _target(args: argparse.Namespace, env: dict[str, str]) -> tuple[Any, Context | None]:
    """What the handler works on: nothing, the local store, or a gateway (local or the server).

    `config show`, `serve` and offline `audit verify --export` need no store; tokens and the
    trail's files stay local. Every other command goes to the server when CORTEX_CHANGE_URL is
    set, unless `--db` names a local store on the command line.
    """
    if needs_no_store(args):
        return None, None
    if args.handler not in LOCAL_ONLY:
        from .gateway import from_environment

        remote = None if args.db is not None else from_environment(env)
        if remote is not None:
            return remote, None
    from ..services.context import open_context

    ctx = open_context(env, create=not reads_only(args))
    if args.handler in LOCAL_ONLY:
        return ctx, ctx
    from .gateway import Local

    return Local(ctx), ctx


if __name__ == "__main__":
    sys.exit(main())
