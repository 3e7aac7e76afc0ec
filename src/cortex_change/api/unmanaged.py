"""CHANGE_MGMT_ENABLED=false on every answer (docs/devops.md): ASGI middleware adding the header
`X-Cortex-Change-Management: disabled; …` to every response of the server — API, hooks, admission
webhook, portal, and the size limits' refusals. Installed only while the setting is false."""

from __future__ import annotations

from .limits import App, Message, Receive, Send

HEADER = b"x-cortex-change-management"


class Unmanaged:
    """Adds HEADER, saying change management is disabled, to every HTTP response."""

    def __init__(self, app: App) -> None:
        from ..domain.policy import UNMANAGED

        self.app = app
        self.value = f"disabled; {UNMANAGED}".encode("latin-1")

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def said(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (HEADER, self.value)]}
            await send(message)

        await self.app(scope, receive, said)
