"""`cortex-change mcp`: the Model Context Protocol server for AI agents (docs/mcp.md).

Only this module is loaded when the command is named (cli/registry.py); the SDK (the `agents`
extra: `pip install 'cortex-change[agents]'`) and the server (`server.py`) when it runs.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import argparse

TOKEN = "CORTEX_CHANGE_TOKEN"


def cmd_mcp(_: None, a: argparse.Namespace) -> int:
    """Serve MCP on stdio as the identity of CORTEX_CHANGE_TOKEN, on the local store."""
    from ..domain.errors import MissingPackage, ValidationError

    token = a.env.get(TOKEN, "").strip()
    if not token:
        raise ValidationError(
            TOKEN, "is not set: the MCP server acts as that token's identity (token create NAME --agent)"
        )
    try:
        from .server import serve
    except ImportError as exc:
        if (exc.name or "").startswith("cortex_change"):
            raise
        raise MissingPackage("mcp", (exc.name or "mcp").partition(".")[0], "agents") from None
    return serve(a.env, token)
