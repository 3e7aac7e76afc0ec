"""Pages as HTML: the template environment (autoescaped), security headers, refusals as pages.

Templates only lay out what a view gives them: every decision (what is offered, what a rule
refused) is made before, by the services and the domain.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..api.problems import STATUS
from ..domain.agents import describe
from ..domain.errors import CortexError
from ..redaction import redact
from .session import CsrfRefused, SignInRequired, Throttled, Viewer
from .views import compact

HERE = Path(__file__).parent
# No inline script or style anywhere (htmx is told not to add its indicator style).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
NAV = (
    ("/", "Dashboard"),
    ("/changes?mine=1", "My changes"),
    ("/changes", "All changes"),
    ("/changes/new", "New change"),
    ("/inbox", "Approvals"),
    ("/cab", "CAB"),
    ("/calendar", "Calendar"),
    ("/audit", "Audit"),
    ("/compliance", "Compliance"),
    ("/risk", "Risk model"),
    ("/incidents", "Incidents"),
    ("/cis", "CMDB"),
    ("/tokens", "Tokens"),
)


def _when(value: str | datetime | None) -> str:
    """ISO times as the record keeps them, shown without the T (UTC)."""
    if value is None:
        return "—"
    text = value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else str(value)
    return text.replace("T", " ").replace("Z", " UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def _pct(rate: float | None) -> str:
    """A rate or probability as a percentage (as `cortex-change risk` prints it); n/a for none."""
    return "n/a" if rate is None else f"{rate:.1%}"


def _num(value: float | None) -> str:
    """A score such as Brier or AUC to three places; n/a for none."""
    return "n/a" if value is None else f"{value:.3f}"


def _svg(text: str) -> Markup:
    """A chart the server drew (portal/charts.py escapes every label it holds)."""
    return Markup(text)


ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(
    when=_when, duration=_duration, pct=_pct, num=_num, svg=_svg, compact=compact, scopes=describe
)


def page(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A whole page, or only its `fragment` block when htmx asks for one (`HX-Request`)."""
    values.setdefault("error", None)
    values.setdefault("notice", None)
    values.setdefault("halted", None)
    values.setdefault("unmanaged", None)
    if viewer is not None:  # the kill switch's banner on every page a person sees
        from ..services import automation

        ctx = request.app.state.context()
        state = automation.status(ctx)
        values["halted"] = state if state["halted"] else None
        if not ctx.settings["CHANGE_MGMT_ENABLED"]:  # and CHANGE_MGMT_ENABLED=false's (docs/devops.md)
            from ..domain.policy import UNMANAGED

            values["unmanaged"] = UNMANAGED
    html = ENV.get_template(template).render(
        request_path=request.url.path,
        viewer=viewer,
        nav=NAV,
        title=values.pop("title", "cortex-change"),
        **values,
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def fragment(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A piece of a page (an htmx swap)."""
    return HTMLResponse(ENV.get_template(template).render(**values), status_code=status, headers=HEADERS)


def status_of(exc: CortexError) -> int:
    for kind, status, _ in STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def see(location: str, request: Request | None = None) -> Response:
    """Go to `location` after a POST (303), or tell htmx to."""
    if request is not None and request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": location, **HEADERS})
    return RedirectResponse(location, status_code=303, headers=HEADERS)


class PortalRoute(APIRoute):
    """Portal routes answer errors with pages: no session → the sign-in page; a refusal, bad
    input or an unknown change → the error page with the rule's message and its status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.method == "GET":
                    return see(f"/signin?next={request.url.path}", request)
                return see("/signin", request)
            except (CsrfRefused, Throttled) as exc:
                status = 429 if isinstance(exc, Throttled) else 403
                return page(request, "error.html", None, status, title="Refused", error=str(exc))
            except CortexError as exc:
                location = getattr(request.app.state, "store_location", "")
                message = redact(" ".join(str(exc).split()), location)
                return page(request, "error.html", None, status_of(exc), title="Refused", error=message)

        return guarded
