"""The ASGI application: `create_app()` (uvicorn's factory) wires routes, auth and errors."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from .. import __version__
from ..config import load
from ..domain.errors import CortexError
from ..services.context import Context, open_context
from . import problems, routes


class Contexts(threading.local):
    """One store connection per worker thread (SQLite connections stay in their thread)."""

    ctx: Context | None = None


def create_app(env: Mapping[str, str] | None = None) -> FastAPI:
    """The API on the store CORTEX_CHANGE_DB names; configuration is validated at start-up."""
    load(env)  # a bad key stops the server before it listens
    app = FastAPI(
        title="cortex-change",
        version=__version__,
        description="ITIL 4 change management: requests for change, risk, approvals, audit.",
    )
    local = Contexts()

    def context() -> Context:
        if local.ctx is None:
            local.ctx = open_context(env)
        return local.ctx

    app.state.context = context
    app.add_exception_handler(CortexError, problems.domain_error)
    app.add_exception_handler(RequestValidationError, problems.request_invalid)
    app.include_router(routes.health)
    app.include_router(routes.api, prefix="/api/v1")
    return app


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.context()
    return ctx
