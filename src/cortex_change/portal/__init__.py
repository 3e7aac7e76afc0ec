"""The web portal (docs/portal.md): server-rendered pages in the API's process, on its services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


class Static(StaticFiles):
    """The portal's own CSS and the vendored htmx (no CDN: it works on an air-gapped network)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def mount(app: FastAPI) -> None:
    from .pages import portal

    app.include_router(portal)
    app.mount("/static", Static(directory=STATIC), name="static")
