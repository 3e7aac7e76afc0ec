"""`cortex-change`: run one command; every error is one line on stderr and an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..domain.errors import CortexError
from ..services.context import Context, open_context
from .commands import cmd_audit_verify, cmd_config_show, cmd_serve
from .exits import EXIT_OK, EXIT_STORE, for_error
from .parser import build_parser, command_word


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every error is one line on stderr and an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(command_word(argv)).parse_args(argv)
    env = dict(os.environ)
    if args.db:
        env["CORTEX_CHANGE_DB"] = args.db
    args.env = env
    ctx: Context | None = None
    try:
        # `config show` and offline `audit verify --export` must work without a reachable store
        no_store = args.handler in (cmd_config_show, cmd_serve) or (
            args.handler is cmd_audit_verify and args.export
        )
        if not no_store:
            ctx = open_context(env)
        code: int = args.handler(ctx, args)
        return code
    except CortexError as exc:
        message = " ".join(str(exc).split("\n"))
        print(f"cortex-change: {message}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
