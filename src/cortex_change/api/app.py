"""The ASGI application: `create_app()` (uvicorn's factory) wires routes, auth and errors."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException

from .. import __version__
from ..config import load
from ..domain.errors import CortexError
from ..services.context import Context, open_context
from . import accesslog, problems, ratelimit, routes
from .limits import Limits

lock = threading.Lock()


class Contexts(threading.local):
    """One store connection per worker thread (SQLite connections stay in their thread)."""

    ctx: Context | None = None


def create_app(env: Mapping[str, str] | None = None) -> FastAPI:
    """The API on the store CORTEX_CHANGE_DB names; configuration is validated at start-up."""
    settings = load(env)  # a bad key stops the server before it listens
    accesslog.install()  # uvicorn's access log masks credential-like query parameters
    app = FastAPI(
        title="cortex-change",
        version=__version__,
        description="ITIL 4 change management: requests for change, risk, approvals, audit.",
    )
    local = Contexts()
    shared: list[Context] = []

    def context() -> Context:
        """PostgreSQL: one connection pool for every thread; SQLite: a connection per thread."""
        if shared:
            return shared[0]
        if local.ctx is None:
            ctx = open_context(env, pooled=True)
            if not ctx.db.thread_safe:
                local.ctx = ctx
                return ctx
            with lock:
                if shared:
                    ctx.close()
                else:
                    shared.append(ctx)
            return shared[0]
        return local.ctx

    app.state.context = context
    app.state.limiter = ratelimit.Limiter()  # requests a minute per identity, this process's count
    app.state.store_location = settings.database()  # problems.py masks its credentials in answers
    app.add_exception_handler(CortexError, problems.domain_error)
    app.add_exception_handler(RequestValidationError, problems.request_invalid)
    app.add_exception_handler(HTTPException, problems.http_error)
    app.add_middleware(Limits)  # headers ≤ 16 KiB (431), bodies ≤ 1 MiB (413)
    if not settings["CHANGE_MGMT_ENABLED"]:
        from .unmanaged import Unmanaged

        app.add_middleware(Unmanaged)  # every answer says change management is disabled (outermost)
    app.include_router(routes.health)
    from .k8s import k8s

    app.include_router(k8s)  # POST /k8s/admission (docs/admission.md)
    from .hooks import hooks

    app.include_router(hooks)  # POST /hooks/github, /hooks/gitlab (docs/devops.md)
    from .alerts import alerts, check

    check(settings)  # a bad [remediations.*] table stops the server before it listens
    app.include_router(alerts)  # POST /hooks/alertmanager (docs/self-healing.md)
    app.include_router(routes.api, prefix="/api/v1")
    from ..portal import mount

    mount(app)  # the web portal: /, /changes/..., /static/...

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _problem_media_type(
                get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """Error responses are served as application/problem+json: document them so.

    An optional query or header parameter is absent or a string, never JSON null: its schema is
    the string's alone (`anyOf: [string, null]` would contradict an `enum` beside it).
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                p = parameter.get("schema", {})
                others = [s for s in p.get("anyOf", []) if s != {"type": "null"}]
                if "anyOf" in p and len(others) == 1:
                    del p["anyOf"]
                    p.update(others[0])
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code.isdigit() and int(code) >= 400 and "application/json" in content:
                    response["content"] = {problems.PROBLEM: content["application/json"]}
                if code == "401":
                    response["headers"] = {
                        "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
                    }
                if code == "429":
                    response["headers"] = {
                        "Retry-After": {
                            "description": "whole seconds until a request would be allowed again",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    }
    return schema
